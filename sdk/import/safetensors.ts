import { basename, dirname, isAbsolute, join } from "node:path";
import { asQansError, QansError } from "../errors.js";
import { decodeUtf8Strict, isJsonObject, parseStrictJson, stringifyJson, type JsonValue } from "../json/strict-json.js";
import { FileSource, readSmallFile, withFile } from "../io/source.js";
import { dtypeSize, type DType } from "../tensor/dtype.js";
import type { ImportedModel, TensorData, TensorInput } from "../tensor/tensor.js";
import { checkShape } from "./shape.js";

/** The official reader's limit on the JSON header length N. */
export const SAFETENSORS_MAX_HEADER_LENGTH = 100_000_000;

/** safetensors dtype strings this importer accepts; they coincide with our DType names. */
export const SAFETENSORS_DTYPES: readonly DType[] = [
  "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2",
];

const MAX_INDEX_BYTES = 64 * 1024 * 1024;
const ENTRY_KEYS = ["data_offsets", "dtype", "shape"];

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header's byte length. */
  headerLength: number;
  /** 8 + N, where the data section starts. */
  dataStart: number;
  /** In data-offset order. */
  tensors: SafetensorsEntry[];
  metadata: Record<string, string>;
}

function toBigSize(fileSize: bigint | number, where: string): bigint {
  if (typeof fileSize === "number" ? !Number.isSafeInteger(fileSize) || fileSize < 0 : fileSize < 0n) {
    throw new QansError("INVALID_ARGUMENT", `${where}: bad file size ${fileSize}`);
  }
  return BigInt(fileSize);
}

/**
 * Reads N from the first 8 bytes and checks it against the header length limit. Needs no file
 * size, so streaming readers use it as well.
 */
export function decodeSafetensorsHeaderLength(prefix: Uint8Array, where: string): number {
  if (prefix.byteLength < 8) throw new QansError("INVALID_ARGUMENT", `${where}: prefix of ${prefix.byteLength} bytes lacks the header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER_LENGTH)) {
    throw new QansError("LIMIT_EXCEEDED", `${where}: header length ${n} at offset 0 exceeds ${SAFETENSORS_MAX_HEADER_LENGTH} bytes`);
  }
  return Number(n);
}

/** Reads and checks N from the first 8 bytes: the length limit, then that 8 + N fits in the file. */
export function safetensorsHeaderLength(prefix: Uint8Array, fileSize: bigint | number, where: string): number {
  const size = toBigSize(fileSize, where);
  if (size < 8n) throw new QansError("TRUNCATED", `${where}: ${size} bytes, too short for the 8-byte header length`);
  const n = decodeSafetensorsHeaderLength(prefix, where);
  if (8n + BigInt(n) > size) {
    throw new QansError("TRUNCATED", `${where}: header of ${n} bytes at offset 8 runs past the end of the ${size}-byte file`);
  }
  return n;
}

/** A parsed header before the data section is seen: what both the file and the stream importer check first. */
export interface SafetensorsLayout {
  /** In data-offset order, back to back from data offset 0. */
  tensors: SafetensorsEntry[];
  /** Exact end of each tensor's bytes, relative to the data section, parallel to `tensors`. */
  ends: bigint[];
  metadata: Record<string, string>;
  /** Where the last tensor ends: the length the data section must have. */
  dataLength: bigint;
}

/**
 * Parses and validates the JSON header text (the N bytes at offset 8) as strictly as the official
 * reader: UTF-8, strict JSON object, entries, `__metadata__`, and a layout with no gap or overlap
 * starting at data offset 0. These checks need no file size; the caller then checks the data
 * section's real length against `dataLength`.
 */
export function parseSafetensorsLayout(json: Uint8Array, where: string): SafetensorsLayout {
  const text = decodeUtf8Strict(json, `${where}: header at offset 8`);
  const value = parseStrictJson(text, `${where}: header at offset 8`, "BAD_INPUT");
  if (!isJsonObject(value)) throw new QansError("BAD_INPUT", `${where}: header at offset 8 is not a JSON object`);

  let metadata: Record<string, string> = {};
  const parsed: { entry: SafetensorsEntry; begin: bigint; end: bigint; order: number }[] = [];
  for (const [name, entry] of Object.entries(value)) {
    if (name === "__metadata__") metadata = stringMap(entry, `${where}: __metadata__`);
    else parsed.push({ ...parseEntry(name, entry, where), order: parsed.length });
  }

  parsed.sort((a, b) => (a.begin !== b.begin ? (a.begin < b.begin ? -1 : 1) : a.end !== b.end ? (a.end < b.end ? -1 : 1) : a.order - b.order));
  let expected = 0n;
  for (const { entry, begin, end } of parsed) {
    if (begin !== expected) {
      throw new QansError(
        "OFFSET_OUT_OF_RANGE",
        `${where}: tensor "${entry.name}" starts at data offset ${begin} but the previous tensor ends at ${expected} (${begin > expected ? "gap" : "overlap"})`,
      );
    }
    expected = end;
  }
  return { tensors: parsed.map((p) => p.entry), ends: parsed.map((p) => p.end), metadata, dataLength: expected };
}

/**
 * Parses and validates a safetensors header as strictly as the official reader. `prefix` holds the
 * file's first 8 + N bytes (or more); `fileSize` is the whole file's size. The checks run in the
 * order a streaming reader meets them: header length, header, then the data section's length
 * (a tensor past the end is TRUNCATED, bytes after the last tensor OFFSET_OUT_OF_RANGE).
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileSize: bigint | number, where: string): SafetensorsHeader {
  const headerLength = safetensorsHeaderLength(prefix, fileSize, where);
  const dataStart = 8 + headerLength;
  if (prefix.byteLength < dataStart) {
    throw new QansError("INVALID_ARGUMENT", `${where}: prefix holds ${prefix.byteLength} bytes but the header ends at ${dataStart}`);
  }
  const layout = parseSafetensorsLayout(prefix.subarray(8, dataStart), where);
  const dataLength = toBigSize(fileSize, where) - BigInt(dataStart);
  if (layout.dataLength > dataLength) {
    const past = layout.ends.findIndex((end) => end > dataLength);
    throw new QansError(
      "TRUNCATED",
      `${where}: tensor "${layout.tensors[past].name}" ends at byte ${BigInt(dataStart) + layout.ends[past]}, past the end of the file (${fileSize} bytes)`,
    );
  }
  if (layout.dataLength !== dataLength) {
    throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: tensors end at data offset ${layout.dataLength} but the data section holds ${dataLength} bytes`);
  }
  return { headerLength, dataStart, tensors: layout.tensors, metadata: layout.metadata };
}

function parseEntry(name: string, value: JsonValue, where: string): { entry: SafetensorsEntry; begin: bigint; end: bigint } {
  const at = `${where}: tensor "${name}"`;
  if (!isJsonObject(value)) throw new QansError("BAD_INPUT", `${at}: entry is not an object`);
  const keys = Object.keys(value).sort();
  if (keys.length !== ENTRY_KEYS.length || keys.some((key, i) => key !== ENTRY_KEYS[i])) {
    throw new QansError("BAD_INPUT", `${at}: entry must have exactly dtype, shape and data_offsets, not ${keys.join(", ") || "nothing"}`);
  }
  const dtype = value.dtype;
  if (typeof dtype !== "string") throw new QansError("BAD_INPUT", `${at}: dtype is not a string`);
  if (!(SAFETENSORS_DTYPES as readonly string[]).includes(dtype)) throw new QansError("BAD_DTYPE", `${at}: unsupported dtype ${JSON.stringify(dtype)}`);
  const { shape, elements } = checkShape(value.shape, at);
  const offsets = value.data_offsets;
  const isOffset = (v: JsonValue) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) || (typeof v === "bigint" && v >= 0n);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isOffset)) {
    throw new QansError("BAD_INPUT", `${at}: data_offsets must be two non-negative integers`);
  }
  const begin = BigInt(offsets[0] as number | bigint);
  const end = BigInt(offsets[1] as number | bigint);
  if (begin > end) throw new QansError("OFFSET_OUT_OF_RANGE", `${at}: data_offsets [${begin}, ${end}] end before they begin`);
  const bytes = elements * BigInt(dtypeSize(dtype as DType));
  if (end - begin !== bytes) {
    throw new QansError("BAD_SHAPE", `${at}: data_offsets span ${end - begin} bytes but ${dtype} [${shape.join(", ")}] needs ${bytes}`);
  }
  // Numbers are exact up to 2^53: parseSafetensorsHeader rejects any end beyond the file before use,
  // and streaming readers work from the exact `ends` of the layout.
  return { entry: { name, dtype: dtype as DType, shape, begin: Number(begin), end: Number(end) }, begin, end };
}

function stringMap(value: JsonValue, where: string): Record<string, string> {
  if (!isJsonObject(value)) throw new QansError("BAD_METADATA", `${where} is not an object`);
  const entries = Object.entries(value);
  for (const [key, v] of entries) {
    if (typeof v !== "string") throw new QansError("BAD_METADATA", `${where}: value of ${JSON.stringify(key)} is not a string`);
  }
  // fromEntries defines own properties, so a "__proto__" key stays data.
  return Object.fromEntries(entries) as Record<string, string>;
}

async function readHeader(file: FileSource): Promise<SafetensorsHeader> {
  const first = await file.read(0, Math.min(8, file.size), "header length");
  const headerLength = safetensorsHeaderLength(first, file.size, file.name);
  return parseSafetensorsHeader(await file.read(0, 8 + headerLength, "header"), file.size, file.name);
}

/** Imports one `.safetensors` file; tensors come in data-offset order. */
export async function importSafetensors(path: string): Promise<ImportedModel> {
  return readWholeModel(await openSafetensorsFile(path));
}

/** Every tensor of an opened file or index, read whole (it was opened without `wholeBytes`), then the file closed. */
export async function readWholeModel(file: { metadata: Record<string, string>; tensors(): AsyncIterable<TensorInput>; close(): Promise<void> }): Promise<ImportedModel> {
  try {
    const tensors: TensorData[] = [];
    for await (const tensor of file.tensors()) tensors.push(tensor as TensorData);
    return { metadata: file.metadata, tensors };
  } finally {
    await file.close();
  }
}

/** An open `.safetensors` file whose tensors are read as they are asked for. */
export interface SafetensorsFile {
  metadata: Record<string, string>;
  /** The number of tensors. */
  count: number;
  /** Each tensor's shape by name, from the header(s), known before any tensor is read. */
  shapes: Map<string, number[]>;
  /**
   * The tensors in data-offset order, each read when it is asked for: whole up to `wholeBytes`,
   * larger ones as `TensorReader`s over the open file, read a range at a time when encoded.
   */
  tensors(): AsyncGenerator<TensorInput>;
  close(): Promise<void>;
}

/**
 * Opens a `.safetensors` file and checks its header; the tensors' bytes are read later, one tensor
 * at a time, with positional reads. With `wholeBytes` (default: no limit), a tensor of more bytes is
 * given as a reader over the file instead, so packing holds none of it: the file is a two-pass
 * source for the windowed encoder. The readers read the file while it is open.
 */
export async function openSafetensorsFile(path: string, options: { wholeBytes?: number } = {}): Promise<SafetensorsFile> {
  const file = await FileSource.open(path);
  try {
    const header = await readHeader(file);
    const wholeBytes = options.wholeBytes ?? Number.POSITIVE_INFINITY;
    async function* tensors(): AsyncGenerator<TensorInput> {
      for (const { name, dtype, shape, begin, end } of header.tensors) {
        const start = header.dataStart + begin;
        const what = `tensor "${name}" at offset ${start}`;
        if (end - begin <= wholeBytes) {
          yield { name, dtype, shape, data: await file.read(start, end - begin, what) };
        } else {
          const readBytes = async (offset: number, length: number) => {
            if (offset < 0 || length < 0 || offset + length > end - begin) {
              throw new QansError("INVALID_ARGUMENT", `${file.name}: bytes ${offset} to ${offset + length} of ${what}, which has ${end - begin}`);
            }
            return file.read(start + offset, length, what);
          };
          yield { name, dtype, shape, readBytes };
        }
      }
    }
    const shapes = new Map(header.tensors.map((t) => [t.name, t.shape]));
    return { metadata: header.metadata, count: header.tensors.length, shapes, tensors, close: () => file.close() };
  } catch (error) {
    await file.close().catch(() => undefined);
    throw asQansError(error, `reading ${path}`);
  }
}

/** Shard names come from the index file, so they must not be able to name files elsewhere. */
function checkShardName(name: string, where: string): void {
  const bad =
    name === "" || name === "." || name === ".." || /[/\\:\u0000-\u001f\u007f]/.test(name) || isAbsolute(name) || basename(name) !== name;
  if (bad) throw new QansError("BAD_INPUT", `${where}: shard file name ${JSON.stringify(name)} is not a plain file name in the index's folder`);
}

/**
 * Imports a sharded model from its `model.safetensors.index.json`. All shard headers are checked
 * against the weight map before any tensor data is read.
 */
export async function importSafetensorsIndex(indexJsonPath: string): Promise<ImportedModel> {
  return readWholeModel(await openSafetensorsIndex(indexJsonPath));
}

/**
 * As `openSafetensorsFile`, for a sharded model from its `model.safetensors.index.json`: every
 * shard's header is checked against the weight map first; then the tensors come shard by shard
 * (shards in name order), each shard's file open while its tensors are read.
 */
export async function openSafetensorsIndex(indexJsonPath: string, options: { wholeBytes?: number } = {}): Promise<SafetensorsFile> {
  const where = indexJsonPath;
  const text = decodeUtf8Strict(await readSmallFile(indexJsonPath, MAX_INDEX_BYTES, "safetensors index"), where);
  const index = parseStrictJson(text, where, "BAD_INPUT");
  if (!isJsonObject(index)) throw new QansError("BAD_INPUT", `${where}: index is not a JSON object`);
  const weightMap = index.weight_map;
  if (!isJsonObject(weightMap)) throw new QansError("BAD_INPUT", `${where}: weight_map is missing or not an object`);
  const shardOf = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string") throw new QansError("BAD_INPUT", `${where}: weight_map entry for "${tensor}" is not a string`);
    checkShardName(shard, where);
    shardOf.set(tensor, shard);
  }
  const rawMetadata = index.metadata ?? Object.create(null);
  if (!isJsonObject(rawMetadata)) throw new QansError("BAD_METADATA", `${where}: metadata is not an object`);
  const metadata: Record<string, string> = Object.fromEntries(
    Object.entries(rawMetadata).map(([key, value]) => [key, typeof value === "string" ? value : stringifyJson(value)]),
  );

  const shards = [...new Set(shardOf.values())].sort();
  const folder = dirname(indexJsonPath);
  const foundIn = new Map<string, string>();
  const shapes = new Map<string, number[]>();
  for (const shard of shards) {
    const header = await withFile(join(folder, shard), readHeader);
    for (const { name, shape } of header.tensors) {
      const other = foundIn.get(name);
      if (other !== undefined) throw new QansError("DUPLICATE_NAME", `${where}: tensor "${name}" is in both ${other} and ${shard}`);
      foundIn.set(name, shard);
      shapes.set(name, shape);
    }
  }
  for (const [name, shard] of foundIn) {
    const listed = shardOf.get(name);
    if (listed === undefined) throw new QansError("BAD_INPUT", `${where}: tensor "${name}" in ${shard} is not listed in weight_map`);
    if (listed !== shard) throw new QansError("BAD_INPUT", `${where}: weight_map places "${name}" in ${listed} but it is in ${shard}`);
  }
  for (const [name, shard] of shardOf) {
    if (!foundIn.has(name)) throw new QansError("BAD_INPUT", `${where}: tensor "${name}" is not in its shard ${shard}`);
  }

  const wholeBytes = options.wholeBytes;
  async function* tensors(): AsyncGenerator<TensorInput> {
    for (const shard of shards) {
      const file = await openSafetensorsFile(join(folder, shard), { wholeBytes });
      try {
        yield* file.tensors();
      } finally {
        await file.close();
      }
    }
  }
  return { metadata, count: shardOf.size, shapes, tensors, close: async () => undefined };
}
