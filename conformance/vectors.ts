/**
 * The QANS 1.2 conformance vectors, built deterministically in memory.
 *
 * Valid vectors (valid-vectors.ts, set-vectors.ts) are written with the SDK writer, which follows
 * the reference encoder profile of spec §15, so the bytes are reproducible. Invalid vectors
 * (invalid-container-vectors.ts, invalid-frame-vectors.ts, set-vectors.ts) are each derived from a
 * valid one by one targeted change, with the checksums of changed structures re-sealed so that
 * exactly the intended check fails.
 *
 * `buildVectors()` also checks everything it produces: every valid vector must verify and decode
 * to values computed here independently of the reader, the valid vectors together must cover every
 * feature coverage.ts lists, and every invalid vector must be rejected by the full verifier with
 * exactly its declared code, and by the random-access reader exactly when it is declared
 * `detected_by_random_access`. It throws otherwise.
 */
import {
  MemorySink,
  MemorySource,
  QansError,
  QansReader,
  QansWriter,
  encodeTensorFrameAsync,
  fromFloat32,
  openModelSource,
  quantizeRtn,
  toFloat32,
  verifyModelSource,
  verifySource,
  type DType,
  type ModelMetadata,
  type ModelReader,
  type QansErrorCode,
  type TensorData,
  type TensorEncoding,
} from "../sdk/index.js";
import { float32Bytes } from "../sdk/conformance/hash.js";
import type { Manifest, ManifestInvalid, ManifestTensor, ManifestValid } from "../sdk/conformance/manifest.js";
import { sha256 } from "../sdk/testing/fixtures.js";
import { fileLayout } from "../sdk/testing/patch.js";
import { referenceDequantize } from "../sdk/testing/reference-dequantize.js";
import { checkCoverage, featuresOf, type Features } from "./coverage.js";
import { fail, view, type InvalidDef } from "./file-surgery.js";
import { containerDefs } from "./invalid-container-vectors.js";
import { frameDefs } from "./invalid-frame-vectors.js";
import { folder, invalidSetDefs, setDefs, writeSet, type SetBody, type SetDef } from "./set-vectors.js";
import { elementCount, fileWithoutTensors, validDefs, type ValidDef, type VectorTensor } from "./valid-vectors.js";

export { mapTensorHeader } from "./file-surgery.js";
export { float32Bytes } from "../sdk/conformance/hash.js";

// ---------------------------------------------------------------------------------------------
// Manifest schema: sdk/conformance/manifest.ts, which the runner reads it with

export type { Manifest, ManifestInvalid, ManifestTensor, ManifestValid } from "../sdk/conformance/manifest.js";

export interface VectorFile {
  /** Path under vectors/valid/ or vectors/invalid/: a file name, or `<set>/<file name>` for the files of a set. */
  file: string;
  bytes: Uint8Array;
}

export interface VectorSet {
  valid: VectorFile[];
  invalid: VectorFile[];
  manifest: Manifest;
  /** The manifest as written to disk: 2-space JSON and a final newline. */
  manifestText: string;
}

/** Upper bound on the total size of all vectors: well under the 2 MB the package may spend on them. */
export const SIZE_BUDGET = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Independent expectations (spec §8): what a reader must decode, computed without the reader

function matrix(shape: number[]): { rows: number; cols: number } {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  return { rows: cols === 0 ? 0 : elementCount(shape) / cols, cols };
}

/** Spec §8.2's plane table, applied value by value. */
function referencePlanes(dtype: DType, data: Uint8Array): Uint8Array[] {
  const dv = view(data);
  if (dtype === "F32") {
    const n = data.length / 4;
    const p = [0, 1, 2, 3].map(() => new Uint8Array(n));
    for (let i = 0; i < n; i++) {
      const v = dv.getUint32(4 * i, true);
      p[0][i] = (v >>> 23) & 0xff;
      p[1][i] = v & 0xff;
      p[2][i] = (v >>> 8) & 0xff;
      p[3][i] = ((v >>> 24) & 0x80) | ((v >>> 16) & 0x7f);
    }
    return p;
  }
  const n = data.length / 2;
  if (dtype === "F16") {
    const p = [0, 1, 2].map(() => new Uint8Array(n));
    for (let i = 0; i < n; i++) {
      const v = dv.getUint16(2 * i, true);
      p[0][i] = (v >>> 10) & 0x1f;
      p[1][i] = v & 0xff;
      p[2][i] = ((v >>> 13) & 0x4) | ((v >>> 8) & 0x3);
    }
    return p;
  }
  if (dtype === "BF16") {
    const p = [0, 1].map(() => new Uint8Array(n));
    for (let i = 0; i < n; i++) {
      const v = dv.getUint16(2 * i, true);
      p[0][i] = (v >>> 7) & 0xff;
      p[1][i] = ((v >>> 8) & 0x80) | (v & 0x7f);
    }
    return p;
  }
  throw new Error(`float-planes does not accept ${dtype}`);
}

export function hasFloat32View(dtype: DType): boolean {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}

interface Expected {
  data: Uint8Array;
  streams: Uint8Array[];
  f32?: Uint8Array;
}

function expectedDecode(tensor: TensorData, encoding: TensorEncoding): Expected {
  const f32 = (data: Uint8Array) => (hasFloat32View(tensor.dtype) ? float32Bytes(toFloat32(tensor.dtype, data)) : undefined);
  switch (encoding.encoding) {
    case "raw":
      return { data: tensor.data, streams: [tensor.data], f32: f32(tensor.data) };
    case "float-planes":
      return { data: tensor.data, streams: referencePlanes(tensor.dtype, tensor.data), f32: f32(tensor.data) };
    case "int-quant": {
      const { rows, cols } = matrix(tensor.shape);
      const { encoding: _, ...options } = encoding;
      // The quantiser is informative (§15 step 6): the symbols are what the reference encoder chose.
      const { params, symbols } = quantizeRtn(toFloat32(tensor.dtype, tensor.data), rows, cols, options);
      const values = referenceDequantize(params, symbols, rows, cols);
      return { data: fromFloat32(tensor.dtype, values), streams: [symbols], f32: float32Bytes(values) };
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Valid vectors

/** Writes a vector's tensors as the reference writer does, each with its own block size when it has one. */
async function writeVector(def: ValidDef): Promise<Uint8Array> {
  const sink = new MemorySink();
  const writer = new QansWriter(sink, { log2Block: def.log2Block });
  await writer.begin(def.metadata);
  for (const { tensor, encoding, log2Block } of def.tensors) await writer.addFrame(await encodeTensorFrameAsync(tensor, encoding, log2Block ?? def.log2Block));
  await writer.finish();
  const bytes = sink.bytes();
  return def.derive ? def.derive(bytes) : bytes;
}

async function buildValid(def: ValidDef): Promise<{ bytes: Uint8Array; entry: ManifestValid; features: Features }> {
  const bytes = await writeVector(def);
  const source = new MemorySource(bytes);
  const report = await verifySource(source);
  const tensors = await checkModel(def.file, await QansReader.open(source), report.tensors.map((t) => t.name), def);
  return { bytes, entry: { file: def.file, spec: def.spec, exercises: def.exercises, tensors }, features: await featuresOf(bytes, report) };
}

/**
 * Reads a model (one file or a set) back and checks it against its definition: metadata, names
 * (`verified` are those the full verifier reported), index entries, and every tensor's data,
 * symbols and binary32 values against values computed without the reader. Returns the manifest's
 * tensor records.
 */
async function checkModel(
  file: string,
  reader: ModelReader,
  verified: string[],
  def: { metadata: ModelMetadata; tensors: VectorTensor[] },
): Promise<ManifestTensor[]> {
  const modelMetadata = (m: ModelMetadata) => JSON.stringify({ metadata: m.metadata, architecture: m.architecture });
  if (modelMetadata(await reader.metadata()) !== modelMetadata(def.metadata)) fail(`${file}: metadata does not read back`);
  const names = def.tensors.map((t) => t.tensor.name);
  if (JSON.stringify(verified) !== JSON.stringify(names)) fail(`${file}: the verifier reports tensors ${verified.join(", ")}`);
  if (JSON.stringify(reader.names) !== JSON.stringify(names)) fail(`${file}: the reader lists tensors ${reader.names.join(", ")}`);
  const entries = await reader.tensorEntries();

  const tensors: ManifestTensor[] = [];
  for (const [t, { tensor, encoding }] of def.tensors.entries()) {
    const entry = entries[t];
    const where = `${file} tensor "${tensor.name}"`;
    if (entry.name !== tensor.name || entry.dtype !== tensor.dtype || entry.encoding !== encoding.encoding) fail(`${where}: index entry differs`);
    if (JSON.stringify(entry.shape) !== JSON.stringify(tensor.shape)) fail(`${where}: shape differs`);
    const expected = expectedDecode(tensor, encoding);
    const decoded = await reader.readTensor(tensor.name);
    if (!sameBytes(decoded.data, expected.data)) fail(`${where}: decoded data differs from the expected values`);
    const { streams } = await reader.readStreams(tensor.name);
    if (streams.length !== expected.streams.length || streams.some((s, i) => !sameBytes(s, expected.streams[i]))) {
      fail(`${where}: decoded symbol streams differ from the expected planes or symbols`);
    }
    const record: ManifestTensor = {
      name: tensor.name,
      dtype: tensor.dtype,
      shape: [...tensor.shape],
      encoding: encoding.encoding,
      sha256: sha256(expected.data),
      symbols_sha256: expected.streams.map(sha256),
    };
    if (expected.f32) {
      const f32 = float32Bytes(await reader.readFloat32(tensor.name));
      if (!sameBytes(f32, expected.f32)) fail(`${where}: binary32 values differ from the expected ones`);
      record.f32_sha256 = sha256(expected.f32);
    }
    tensors.push(record);
  }
  await reader.close();
  return tensors;
}


interface BuiltSet {
  name: string;
  set: Uint8Array;
  shards: { file: string; bytes: Uint8Array }[];
  entry: ManifestValid;
  features: Features;
}

async function buildSet(def: SetDef): Promise<BuiltSet> {
  const { set, shards } = await writeSet(def);
  const file = `${def.name}/${def.name}.qans`;
  if (shards.length !== def.shardCount) fail(`${file}: ${shards.length} shards, expected ${def.shardCount}`);
  const features: Features = new Set(["set"]);
  for (const shard of shards) {
    if (shard.bytes.length > def.shardBytes) fail(`${file}: shard ${shard.file} has ${shard.bytes.length} bytes, over ${def.shardBytes}`);
    const report = await verifySource(new MemorySource(shard.bytes, shard.file));
    for (const feature of await featuresOf(shard.bytes, report)) features.add(feature);
  }
  const files = new Map(shards.map((shard) => [shard.file, shard.bytes]));
  const report = await verifyModelSource(new MemorySource(set, file), folder(files));
  const reader = await openModelSource(new MemorySource(set, file), folder(files));
  if (!("shards" in reader)) fail(`${file}: does not open as a set`);
  const tensors = await checkModel(file, reader, report.tensors.map((t) => t.name), def);
  return {
    name: def.name,
    set,
    shards,
    entry: { file, spec: def.spec, exercises: def.exercises, shards: shards.map((shard) => `${def.name}/${shard.file}`), tensors },
    features,
  };
}

// ---------------------------------------------------------------------------------------------
// Invalid vectors

async function rejectionCode(action: () => Promise<unknown>): Promise<QansErrorCode | "accepted" | "other"> {
  try {
    await action();
    return "accepted";
  } catch (error) {
    return error instanceof QansError ? error.code : "other";
  }
}

/** Opens a file for random access and reads its metadata and every tensor. */
export async function readEverything(bytes: Uint8Array): Promise<void> {
  await readEverythingModel(await QansReader.open(new MemorySource(bytes)));
}

/** Reads a model's metadata and every tensor, then closes it. */
export async function readEverythingModel(reader: ModelReader): Promise<void> {
  try {
    await reader.metadata();
    for (const name of reader.names) await reader.readTensor(name);
  } finally {
    await reader.close();
  }
}

/** Checks the random-access reader rejects `file` (with a QansError) exactly when `detected` says it must. */
function checkRandomAccess(file: string, outcome: QansErrorCode | "accepted" | "other", detected: boolean): void {
  if (outcome === "other") fail(`${file}: the random-access reader throws an error that is not a QansError`);
  if (detected && outcome === "accepted") fail(`${file}: declared detected_by_random_access, but the random-access reader accepts it`);
  if (!detected && outcome !== "accepted") fail(`${file}: the random-access reader rejects it (${outcome}), so it is detected_by_random_access`);
}

/** The vector `def` derives from `base`; a derivation that cannot find what it changes names the vector. */
async function derived(def: InvalidDef, base: Uint8Array): Promise<Uint8Array> {
  try {
    return await def.derive(base.slice(), await fileLayout(base));
  } catch (error) {
    throw new Error(`${def.file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

async function buildInvalidFiles(byFile: ReadonlyMap<string, Uint8Array>, invalid: VectorFile[], manifest: ManifestInvalid[]): Promise<void> {
  for (const def of [...containerDefs(), ...frameDefs()]) {
    const base = byFile.get(def.from) ?? fail(`${def.file}: unknown base ${def.from}`);
    const bytes = await derived(def, base);
    const code = await rejectionCode(() => verifySource(new MemorySource(bytes)));
    if (code !== def.code) fail(`${def.file}: verifySource gives ${code}, declared ${def.code}`);
    checkRandomAccess(def.file, await rejectionCode(() => readEverything(bytes)), def.detectedByRandomAccess);
    invalid.push({ file: def.file, bytes });
    manifest.push({
      file: def.file,
      code: def.code,
      spec: def.spec,
      exercises: `derived from ${def.from}: ${def.exercises}`,
      detected_by_random_access: def.detectedByRandomAccess,
    });
  }
}

/**
 * The invalid sets derived from `built`: each a set file with one defect, in a folder with copies of
 * the valid shards, which every invalid set of the folder shares.
 */
async function buildInvalidSets(built: BuiltSet, invalid: VectorFile[], manifest: ManifestInvalid[]): Promise<void> {
  const from = built.entry.file;
  const length = view(built.set).getUint32(64 + 4, true);
  const bodyText = new TextDecoder().decode(built.set.subarray(64 + 8, 64 + 8 + length));
  if (!sameBytes(fileWithoutTensors(bodyText, true), built.set)) fail(`${from}: the set file does not rebuild from its metadata body`);
  const files = new Map(built.shards.map((shard) => [shard.file, shard.bytes]));
  const shards = built.shards.map((shard) => `${built.name}/${shard.file}`);
  invalid.push(...built.shards.map((shard) => ({ file: `${built.name}/${shard.file}`, bytes: shard.bytes })));
  for (const def of invalidSetDefs()) {
    const body = JSON.parse(bodyText) as SetBody;
    const set = def.derive(body);
    const json = JSON.stringify(body);
    const bytes = fileWithoutTensors(def.rewrite ? def.rewrite(json) : json, set);
    const file = `${built.name}/${def.file}`;
    const code = await rejectionCode(() => verifyModelSource(new MemorySource(bytes, file), folder(files)));
    if (code !== def.code) fail(`${file}: verifyModelSource gives ${code}, declared ${def.code}`);
    const randomAccess = await rejectionCode(async () => readEverythingModel(await openModelSource(new MemorySource(bytes, file), folder(files))));
    checkRandomAccess(file, randomAccess, true);
    invalid.push({ file, bytes });
    manifest.push({ file, code: def.code, spec: def.spec, exercises: `derived from ${from}: ${def.exercises}`, shards, detected_by_random_access: true });
  }
}

// ---------------------------------------------------------------------------------------------

/** The set the invalid set files are derived from. */
const INVALID_SET_BASE = "set-llama";

/** Builds and checks every vector and the manifest, in memory. */
export async function buildVectors(): Promise<VectorSet> {
  const valid: VectorFile[] = [];
  const manifestValid: ManifestValid[] = [];
  const byFile = new Map<string, Uint8Array>();
  const features: Features = new Set();
  for (const def of validDefs()) {
    const built = await buildValid(def);
    valid.push({ file: def.file, bytes: built.bytes });
    manifestValid.push(built.entry);
    byFile.set(def.file, built.bytes);
    for (const feature of built.features) features.add(feature);
  }
  const builtSets: BuiltSet[] = [];
  for (const def of setDefs()) {
    const built = await buildSet(def);
    builtSets.push(built);
    valid.push({ file: built.entry.file, bytes: built.set }, ...built.shards.map((shard) => ({ file: `${def.name}/${shard.file}`, bytes: shard.bytes })));
    manifestValid.push(built.entry);
    for (const feature of built.features) features.add(feature);
  }
  checkCoverage(features);

  const invalid: VectorFile[] = [];
  const manifestInvalid: ManifestInvalid[] = [];
  await buildInvalidFiles(byFile, invalid, manifestInvalid);
  await buildInvalidSets(builtSets.find((built) => built.name === INVALID_SET_BASE) ?? fail(`no set ${INVALID_SET_BASE}`), invalid, manifestInvalid);

  const names = [...valid.map((v) => `valid/${v.file}`), ...invalid.map((v) => `invalid/${v.file}`)];
  if (new Set(names).size !== names.length) fail("two vectors share a file name");
  const total = [...valid, ...invalid].reduce((sum, v) => sum + v.bytes.length, 0);
  if (total > SIZE_BUDGET) fail(`vectors total ${total} bytes, over the budget of ${SIZE_BUDGET}`);

  const manifest: Manifest = { format: "qans", version: "1.2", valid: manifestValid, invalid: manifestInvalid };
  return { valid, invalid, manifest, manifestText: `${JSON.stringify(manifest, null, 2)}\n` };
}
