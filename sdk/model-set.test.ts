import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importModel } from "./import/detect.js";
import { shardLocation } from "./io/shard-location.js";
import { MemorySource } from "./io/source.js";
import { QansModelSet, openModel, openModelSource } from "./model-set.js";
import { packModelSharded, packStreamSharded, shardFileName, type ShardedPackResult } from "./pack-set.js";
import { packToFile, type PackMode } from "./pack.js";
import { QansReader, type ModelReader } from "./reader.js";
import { align64 } from "./format/bytes.js";
import { encodeFileHeader } from "./format/file-header.js";
import { encodeIndexFrame } from "./format/index-frame.js";
import { encodeMetadataFrame } from "./format/metadata-frame.js";
import type { ShardEntry } from "./format/set-metadata.js";
import { encodeTrailer } from "./format/trailer.js";
import { decodeStream, type StreamEvent } from "./stream-decoder.js";
import { encodeTensorFrame } from "./tensor/frame-encode.js";
import type { ImportedModel } from "./tensor/tensor.js";
import { DEMO_MODEL_PATH, STORIES_PATH, gaussianTensor, sameBytes } from "./testing/fixtures.js";
import { startNginx, type NginxServer } from "./testing/nginx.js";
import { codeOfAsync } from "./testing/outcome.js";
import { useTempDir } from "./testing/temp-dir.js";
import { verifyModel, verifySource } from "./verify.js";

const dir = useTempDir("qans-set-");

/** Every tensor of `model` reads back from both readers with the same bytes, dtype and shape. */
async function expectSameTensors(set: ModelReader, plain: QansReader): Promise<void> {
  expect(set.names).toEqual(plain.names);
  for (const name of plain.names) {
    const [a, b] = [await set.readTensor(name), await plain.readTensor(name)];
    expect({ dtype: a.dtype, shape: a.shape }, name).toEqual({ dtype: b.dtype, shape: b.shape });
    expect(sameBytes(a.data, b.data), name).toBe(true);
  }
}

interface Packed {
  model: ImportedModel;
  setPath: string;
  plainPath: string;
  result: ShardedPackResult;
}

async function packBoth(model: ImportedModel, name: string, mode: PackMode, shardBytes: number): Promise<Packed> {
  const setPath = join(dir(), `${name}.qans`);
  const plainPath = join(dir(), `${name}.plain.qans`);
  const result = await packModelSharded(model, setPath, { mode, shardBytes });
  await packToFile(model, plainPath, { mode });
  return { model, setPath, plainPath, result };
}

describe.each([
  { label: "stories260K, lossless", path: STORIES_PATH, mode: "lossless" as PackMode, shardBytes: 300_000, minShards: 3 },
  { label: "the demo model, int8", path: DEMO_MODEL_PATH, mode: "int8" as PackMode, shardBytes: 2_000_000, minShards: 3 },
])("a sharded model round trip: $label", ({ path, mode, shardBytes, minShards }) => {
  let packed: Packed;
  const name = mode === "lossless" ? "stories" : "demo";
  beforeAll(async () => {
    packed = await packBoth(await importModel(path), name, mode, shardBytes);
  });

  it(`writes at least ${minShards} shards of at most the shard size and the set file, named as spec §16.3 says`, async () => {
    const { result, setPath, model } = packed;
    expect(result.shards.length).toBeGreaterThanOrEqual(minShards);
    expect(result.shards.map((shard) => shard.file)).toEqual(result.shards.map((_, s) => `${name}-${String(s + 1).padStart(5, "0")}.qans`));
    for (const shard of result.shards) {
      expect((await stat(shard.path)).size).toBe(shard.bytes);
      if (shard.tensors.length > 1) expect(shard.bytes).toBeLessThanOrEqual(shardBytes);
      // Every shard is a valid QANS file on its own, with the model's metadata.
      const report = await verifyModel(shard.path);
      expect(report.tensors.map((t) => t.name)).toEqual(shard.tensors);
      expect(report.metadata).toEqual({ metadata: model.metadata, ...(model.architecture ? { architecture: model.architecture } : {}) });
    }
    expect(result.shards.flatMap((shard) => shard.tensors)).toEqual(model.tensors.map((t) => t.name));
    expect((await stat(setPath)).size).toBe(result.setBytes);
    expect(result.bytes).toBe(result.setBytes + result.shards.reduce((sum, shard) => sum + shard.bytes, 0));
    // Nothing but the set, its shards and the plain file: no temporary files left.
    const files = (await readdir(dir())).filter((file) => file.startsWith(name) || file.startsWith(`.${name}`)).sort();
    expect(files).toEqual([...result.shards.map((shard) => shard.file), `${name}.plain.qans`, `${name}.qans`].sort());
  });

  it("reads as one model with every tensor's bytes equal to the unsharded file's", async () => {
    const set = await openModel(packed.setPath);
    const plain = await QansReader.openLocation(packed.plainPath);
    expect(set).toBeInstanceOf(QansModelSet);
    expect(await set.metadata()).toMatchObject(await plain.metadata());
    expect((await set.metadata()).shards).toHaveLength(packed.result.shards.length);
    await expectSameTensors(set, plain);
    const [a, b] = [await set.tensorEntries(), await plain.tensorEntries()];
    expect(a.map(({ name, dtype, shape, encoding, payloadLengths }) => ({ name, dtype, shape, encoding, payloadLengths }))).toEqual(
      b.map(({ name, dtype, shape, encoding, payloadLengths }) => ({ name, dtype, shape, encoding, payloadLengths })),
    );
    const last = plain.names.at(-1)!;
    const { streams } = await set.readStreams(last);
    expect(streams.map((s, i) => sameBytes(s, streams[i]))).not.toContain(false);
    expect(sameBytes(new Uint8Array((await set.readFloat32(last)).buffer), new Uint8Array((await plain.readFloat32(last)).buffer))).toBe(true);
    await set.close();
    await plain.close();
  });

  it("verifies as a whole: the set file, every shard, and each shard against the set", async () => {
    const report = await verifyModel(packed.setPath);
    expect(report.tensors.map((t) => t.name)).toEqual(packed.model.tensors.map((t) => t.name));
    expect(report.shards).toEqual(packed.result.shards.map((shard) => ({ file: shard.file, bytes: shard.bytes })));
    expect(report.fileBytes).toBe(packed.result.bytes);
    expect(report.version).toEqual({ major: 1, minor: 2 });
    expect(report.metadata.shards?.map((shard) => shard.tensors.length)).toEqual(packed.result.shards.map((shard) => shard.tensors.length));
  });
});

describe("sharded packing", () => {
  const model: ImportedModel = {
    metadata: { name: "tiny" },
    tensors: Array.from({ length: 8 }, (_, i) => gaussianTensor(`layers.${i}.weight`, [32, 64 * (1 + (i % 3))], i + 1, "BF16")),
  };

  it("streams: packStreamSharded over an async iterable writes the same files as packModelSharded", async () => {
    const a = await packModelSharded(model, join(dir(), "a.qans"), { shardBytes: 12_000 });
    async function* one() {
      yield* model.tensors;
    }
    const b = await packStreamSharded(one(), model, join(dir(), "b.qans"), { shardBytes: 12_000 });
    expect(a.shards.length).toBeGreaterThan(2);
    expect(b.shards.map(({ path: _, file, ...rest }) => rest)).toEqual(a.shards.map(({ path: _, file, ...rest }) => rest));
    for (const [s, shard] of a.shards.entries()) expect(sameBytes(await readFile(shard.path), await readFile(b.shards[s].path))).toBe(true);
  });

  it("gives a tensor larger than the shard size a shard of its own", async () => {
    const result = await packModelSharded(model, join(dir(), "one.qans"), { shardBytes: 1 });
    expect(result.shards.map((shard) => shard.tensors)).toEqual(model.tensors.map((t) => [t.name]));
    expect((await verifyModel(join(dir(), "one.qans"))).tensors).toHaveLength(8);
  });

  it("fails with LIMIT_EXCEEDED as soon as the names alone would overflow the set file's metadata", async () => {
    let made = 0;
    function* tensors() {
      for (;;) yield { name: `${"x".repeat(4000)}${made++}`, dtype: "U8" as const, shape: [1], data: Uint8Array.of(made & 0xff) };
    }
    expect(await codeOfAsync(packStreamSharded(tensors(), { metadata: {} }, join(dir(), "long.qans"), { shardBytes: 10 ** 9 }))).toBe("LIMIT_EXCEEDED");
    expect(made).toBeGreaterThan(4000);
    expect(made).toBeLessThan(4300);
    expect((await readdir(dir())).filter((f) => f.includes("long"))).toEqual([]);
  });

  it("refuses bad paths, sizes and models; a failed write leaves no set file", async () => {
    const before = (await readdir(dir())).sort();
    expect(await codeOfAsync(packModelSharded(model, join(dir(), "x.bin"), { shardBytes: 1000 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(packModelSharded(model, join(dir(), "a b.qans"), { shardBytes: 1000 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(packModelSharded(model, join(dir(), "x.qans"), { shardBytes: 0 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(packModelSharded(model, join(dir(), "x.qans"), { shardBytes: 1.5 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(packModelSharded({ metadata: {}, tensors: [] }, join(dir(), "x.qans"), { shardBytes: 1000 }))).toBe("INVALID_ARGUMENT");
    const twice = { metadata: {}, tensors: [model.tensors[0], model.tensors[1], model.tensors[0]] };
    expect(await codeOfAsync(packModelSharded(twice, join(dir(), "x.qans"), { shardBytes: 1 }))).toBe("DUPLICATE_NAME");
    // The failed write left the shard it completed, but not the one in progress, no set file and no temporary file.
    const after = (await readdir(dir())).sort();
    expect(after.filter((f) => !before.includes(f))).toEqual(["x-00001.qans"]);
    expect(shardFileName("dir/model.qans", 12)).toBe("model-00012.qans");
  });
});

describe("a set whose shards changed", () => {
  let base: Packed;
  beforeAll(async () => {
    base = await packBoth(await importModel(STORIES_PATH), "changed", "lossless", 300_000);
  });

  /** A copy of the set and its shards under a new base name in a folder of its own. */
  async function copySet(folder: string): Promise<string> {
    await rm(join(dir(), folder), { recursive: true, force: true });
    await mkdir(join(dir(), folder));
    for (const shard of base.result.shards) await copyFile(shard.path, join(dir(), folder, shard.file));
    await copyFile(base.setPath, join(dir(), folder, "changed.qans"));
    return join(dir(), folder, "changed.qans");
  }

  it("is INDEX_MISMATCH when a shard of another write replaced one (its length differs)", async () => {
    const setPath = await copySet("replaced");
    const other = await packModelSharded(base.model, join(dir(), "other.qans"), { mode: "int8", shardBytes: 100_000 });
    await copyFile(other.shards[1].path, join(dir(), "replaced", base.result.shards[1].file));
    const set = await openModel(setPath);
    const inFirst = base.result.shards[0].tensors[0];
    const inSecond = base.result.shards[1].tensors[0];
    expect((await set.readTensor(inFirst)).name).toBe(inFirst);
    expect(await codeOfAsync(set.readTensor(inSecond))).toBe("INDEX_MISMATCH");
    await expect(set.readTensor(inSecond)).rejects.toThrow(/bytes, the set file says/);
    await set.close();
    expect(await codeOfAsync(verifyModel(setPath))).toBe("INDEX_MISMATCH");
  });

  it("is INDEX_MISMATCH when a shard holds the same tensors in another order, though length and trailer are the same", async () => {
    const setPath = await copySet("reordered");
    const shard = base.result.shards[0];
    const tensors = shard.tensors.map((name) => base.model.tensors.find((t) => t.name === name)!);
    [tensors[0], tensors[1]] = [tensors[1], tensors[0]];
    const swapped = await packModelSharded({ ...base.model, tensors }, join(dir(), "swapped.qans"), { shardBytes: 10 ** 9 });
    expect(swapped.shards[0].bytes).toBe(shard.bytes);
    // The trailer checksum pins the index's place and the file's length, which a reordering keeps.
    expect(swapped.shards[0].trailer_crc32c).toBe(shard.trailer_crc32c);
    await copyFile(swapped.shards[0].path, join(dir(), "reordered", shard.file));
    const set = await openModel(setPath);
    expect(await codeOfAsync(set.readTensor(shard.tensors[0]))).toBe("INDEX_MISMATCH");
    await expect(set.readTensor(shard.tensors[0])).rejects.toThrow(/index lists/);
    await set.close();
    expect(await codeOfAsync(verifyModel(setPath))).toBe("INDEX_MISMATCH");
  });

  it("is INDEX_MISMATCH when only the trailer checksum differs", async () => {
    const setPath = await copySet("trailer");
    const path = join(dir(), "trailer", base.result.shards[2].file);
    const bytes = await readFile(path);
    // The trailer's minor version, changed alike in the file header: a valid file of the same length.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    view.setUint16(bytes.length - 40 + 26, 3, true);
    const { resealFileHeader, resealTrailer } = await import("./testing/patch.js");
    resealTrailer(bytes);
    view.setUint16(10, 3, true);
    resealFileHeader(bytes);
    await writeFile(path, bytes);
    const reader = await QansReader.openLocation(path);
    expect((await verifySource(reader.source)).version.minor).toBe(3);
    await reader.close();
    const set = await openModel(setPath);
    expect(await codeOfAsync(set.readTensor(base.result.shards[2].tensors[0]))).toBe("INDEX_MISMATCH");
    await expect(set.readTensor(base.result.shards[2].tensors[0])).rejects.toThrow(/trailer checksum/);
    await set.close();
    expect(await codeOfAsync(verifyModel(setPath))).toBe("INDEX_MISMATCH");
  });

  it("is IO_ERROR when a shard is missing; the other shards still read", async () => {
    const setPath = await copySet("missing");
    await rm(join(dir(), "missing", base.result.shards[1].file));
    const set = await openModel(setPath);
    expect(await codeOfAsync(set.readTensor(base.result.shards[1].tensors[0]))).toBe("IO_ERROR");
    expect((await set.readTensor(base.result.shards[2].tensors[0])).name).toBe(base.result.shards[2].tensors[0]);
    expect(await codeOfAsync(set.tensorEntries())).toBe("IO_ERROR");
    await set.close();
    expect(await codeOfAsync(verifyModel(setPath))).toBe("IO_ERROR");
  });
});

describe("opening sets and plain files", () => {
  let packed: Packed;
  beforeAll(async () => {
    packed = await packBoth(await importModel(STORIES_PATH), "open", "int8", 40_000);
  });

  it("openModel gives a QansReader for a plain file and a QansModelSet for a set file; QansReader sees a set file as a file with no tensors", async () => {
    const plain = await openModel(packed.plainPath);
    expect(plain).toBeInstanceOf(QansReader);
    await plain.close();
    const asFile = await QansReader.openLocation(packed.setPath);
    expect(asFile.entries).toEqual([]);
    expect((await asFile.metadata()).shards).toHaveLength(packed.result.shards.length);
    await asFile.close();
    expect(await codeOfAsync(QansModelSet.open(packed.plainPath))).toBe("INVALID_ARGUMENT");
    const set = await QansModelSet.open(packed.setPath);
    expect(set.shards.map((shard) => shard.file)).toEqual(packed.result.shards.map((shard) => shard.file));
    expect(await codeOfAsync(set.readTensor("no.such.tensor"))).toBe("NOT_FOUND");
    expect(await codeOfAsync(set.tensorEntry("no.such.tensor"))).toBe("NOT_FOUND");
    await set.close();
    expect(await codeOfAsync(set.readTensor(set.names[0]))).toBe("IO_ERROR");
    // A set file needs its location to find its shards.
    const bytes = new Uint8Array(await readFile(packed.setPath));
    expect(await codeOfAsync(openModelSource(new MemorySource(bytes)))).toBe("INVALID_ARGUMENT");
  });

  it("readMatching reads the matches in model order, opening only the shards that hold them", async () => {
    const set = (await openModel(packed.setPath)) as QansModelSet;
    const plain = await QansReader.openLocation(packed.plainPath);
    const names: string[] = [];
    for await (const tensor of set.readMatching("model.layers.3.")) {
      expect(sameBytes(tensor.data, (await plain.readTensor(tensor.name)).data), tensor.name).toBe(true);
      names.push(tensor.name);
    }
    expect(names).toEqual(plain.names.filter((name) => name.startsWith("model.layers.3.")));
    const holding = set.shards.flatMap((shard, s) => (shard.tensors.some((name) => name.startsWith("model.layers.3.")) ? [s] : []));
    expect(holding.length).toBeLessThan(set.shards.length);
    const opened = (set as unknown as { readers: unknown[] }).readers.flatMap((reader, s) => (reader ? [s] : []));
    expect(opened).toEqual(holding);
    const all: string[] = [];
    for await (const tensor of set.readMatching(/./, { batchBytes: 1 })) all.push(tensor.name);
    expect(all).toEqual(plain.names);
    expect(await codeOfAsync(set.readMatching("x", { batchBytes: 0 }).next())).toBe("INVALID_ARGUMENT");
    await set.close();
    await plain.close();
  });

  it("resolves shard names beside the set file only", () => {
    expect(shardLocation("/data/models/m.qans", "m-00001.qans")).toBe("/data/models/m-00001.qans");
    expect(shardLocation("m.qans", "m-00001.qans")).toBe("m-00001.qans");
    expect(shardLocation("https://host/a/b/m.qans", "m-00001.qans")).toBe("https://host/a/b/m-00001.qans");
    expect(shardLocation("http://u:p@host:8080/m.qans?token=1#x", "m-00002.qans")).toBe("http://u:p@host:8080/m-00002.qans?token=1");
    for (const name of ["../m.qans", "/etc/passwd", "a/b.qans", "..", "https://evil/x.qans", "%2e%2e"]) {
      expect(() => shardLocation("https://host/a/m.qans", name), name).toThrow(/plain file name/);
      expect(() => shardLocation("/data/m.qans", name), name).toThrow(/plain file name/);
    }
  });
});

describe("a set over HTTP from nginx", () => {
  let nginx: NginxServer;
  let packed: Packed;
  beforeAll(async () => {
    nginx = await startNginx();
    packed = await packBoth(await importModel(STORIES_PATH), "web", "lossless", 300_000);
    for (const shard of packed.result.shards) await copyFile(shard.path, join(nginx.root, shard.file));
    await copyFile(packed.setPath, join(nginx.root, "web.qans"));
  });
  afterAll(async () => {
    await nginx?.stop();
  });

  it("opens with requests for the set file only, and reads a tensor with requests for its shard only", async () => {
    const before = (await nginx.accessLog()).length;
    const set = await openModel(nginx.url("web.qans"));
    expect(set).toBeInstanceOf(QansModelSet);
    let log = (await nginx.accessLog()).slice(before);
    // The set file is small: one suffix request brings all of it.
    expect(log.map((line) => line.uri)).toEqual(["/web.qans"]);

    const shard = packed.result.shards[1];
    const name = shard.tensors.at(-1)!;
    const plain = await QansReader.openLocation(packed.plainPath);
    expect(sameBytes((await set.readTensor(name)).data, (await plain.readTensor(name)).data)).toBe(true);
    log = (await nginx.accessLog()).slice(before + 1);
    expect(log.length).toBeGreaterThanOrEqual(1);
    expect(log.length).toBeLessThanOrEqual(2);
    expect(new Set(log.map((line) => line.uri))).toEqual(new Set([`/${shard.file}`]));
    expect(log.every((line) => line.status === 206)).toBe(true);

    // A second tensor of the same shard costs at most its frame: the shard stays open.
    await set.readTensor(shard.tensors[0]);
    log = (await nginx.accessLog()).slice(before + 1);
    expect(new Set(log.map((line) => line.uri))).toEqual(new Set([`/${shard.file}`]));
    expect(log.filter((line) => line.range.startsWith("bytes=-"))).toHaveLength(1);
    await set.close();
    await plain.close();
  });

  it("reads every tensor with the bytes of the local unsharded file, and verifies over HTTP", async () => {
    const set = await openModel(nginx.url("web.qans"));
    const plain = await QansReader.openLocation(packed.plainPath);
    await expectSameTensors(set, plain);
    await set.close();
    await plain.close();
    const report = await verifyModel(nginx.url("web.qans"));
    expect(report.fileBytes).toBe(packed.result.bytes);
    expect(report.tensors).toHaveLength(47);
  });

  it("is IO_ERROR when a shard is missing on the server", async () => {
    await mkdir(join(nginx.root, "sub"), { mode: 0o755 });
    await copyFile(packed.setPath, join(nginx.root, "sub", "web.qans"));
    const set = await openModel(nginx.url("sub/web.qans"));
    // The shards are looked for beside the set file, in sub/, and nowhere else.
    expect(await codeOfAsync(set.readTensor(set.names[0]))).toBe("IO_ERROR");
    await expect(set.readTensor(set.names[0])).rejects.toThrow(/404/);
    await set.close();
  });
});

/** A file of one tensor, with the flag SET as given and, when given, a shards member: assembled by hand, since writers refuse it. */
function fileWithTensor(set: boolean, shards?: ShardEntry[]): Uint8Array {
  const frame = encodeTensorFrame(gaussianTensor("t", [4, 4], 1), { encoding: "raw" }, 12);
  const metadata = encodeMetadataFrame({ metadata: {} }, shards);
  const frameOffset = align64(64 + metadata.length);
  const entry = { ...frame.header, frameOffset, headerLength: frame.headerLength, frameLength: frame.frameLength, payloadLengths: frame.payloadLengths };
  const indexOffset = align64(frameOffset + frame.frameLength);
  const index = encodeIndexFrame({ metadataLength: metadata.length, entries: [entry], set });
  const bytes = new Uint8Array(indexOffset + index.length + 40);
  bytes.set(encodeFileHeader({ set }));
  bytes.set(metadata, 64);
  let at = frameOffset;
  for (const chunk of frame.chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  bytes.set(index, indexOffset);
  bytes.set(encodeTrailer(indexOffset, index.length), indexOffset + index.length);
  return bytes;
}

async function streamed(bytes: Uint8Array): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of decodeStream([bytes])) events.push(event);
  return events;
}

describe("set files on their own", () => {
  const SHARD: ShardEntry = { file: "m-00001.qans", bytes: 1000, trailer_crc32c: 1, tensors: ["t"] };
  let setPath: string;
  beforeAll(async () => {
    setPath = join(dir(), "alone.qans");
    const tensors = [0, 1, 2].map((i) => gaussianTensor(`t${i}`, [16, 16], i));
    await packModelSharded({ metadata: {}, tensors }, setPath, { shardBytes: 1 });
  });

  it("stream as QANS files with no tensors, the flag and the shards reported", async () => {
    const events = await streamed(await readFile(setPath));
    expect(events.map((e) => e.type)).toEqual(["start", "end"]);
    expect(events[0]).toMatchObject({ type: "start", set: true, version: { major: 1, minor: 2 } });
    expect((events[0] as { metadata: { shards: unknown[] } }).metadata.shards).toHaveLength(3);
  });

  it("hold no tensors: BAD_METADATA for the verifier, the streaming reader and the model opener", async () => {
    const bytes = fileWithTensor(true, [SHARD]);
    for (const opener of [undefined, async () => new MemorySource(new Uint8Array(0))]) {
      expect(await codeOfAsync(openModelSource(new MemorySource(bytes), opener))).toBe("BAD_METADATA");
      await expect(openModelSource(new MemorySource(bytes), opener)).rejects.toThrow(/holds no tensors/);
    }
    expect(await codeOfAsync(verifySource(new MemorySource(bytes)))).toBe("BAD_METADATA");
    await expect(verifySource(new MemorySource(bytes))).rejects.toThrow(/holds no tensors/);
    expect(await codeOfAsync(streamed(bytes))).toBe("BAD_METADATA");
    await expect(streamed(bytes)).rejects.toThrow(/holds no tensors/);
    // The same file without the flag and the member is valid.
    expect((await verifySource(new MemorySource(fileWithTensor(false)))).tensors).toHaveLength(1);
  });

  it("are BAD_METADATA with the flag but no shards, or shards without the flag, for every reader that reads the header", async () => {
    for (const bytes of [fileWithTensor(true), fileWithTensor(false, [SHARD])]) {
      expect(await codeOfAsync(verifySource(new MemorySource(bytes)))).toBe("BAD_METADATA");
      expect(await codeOfAsync(streamed(bytes))).toBe("BAD_METADATA");
    }
    const empty = new Uint8Array(await readFile(setPath));
    const view = new DataView(empty.buffer);
    view.setUint32(12, 0, true);
    const { resealFileHeader } = await import("./testing/patch.js");
    resealFileHeader(empty);
    expect(await codeOfAsync(verifySource(new MemorySource(empty)))).toBe("BAD_METADATA");
    expect(await codeOfAsync(openModelSource(new MemorySource(empty)))).toBe("BAD_METADATA");
    expect(await codeOfAsync(streamed(empty))).toBe("BAD_METADATA");
  });
});

describe("the index flag SET", () => {
  /** A set file of one shard entry, with the header and index flags given separately. */
  function setFile(headerSet: boolean, indexSet: boolean): Uint8Array {
    const shards: ShardEntry[] = [{ file: "m-00001.qans", bytes: 4096, trailer_crc32c: 1, tensors: ["w"] }];
    const metadata = encodeMetadataFrame({ metadata: {} }, headerSet ? shards : undefined);
    const indexOffset = align64(64 + metadata.length);
    const index = encodeIndexFrame({ metadataLength: metadata.length, entries: [], set: indexSet });
    const padding = new Uint8Array(indexOffset - 64 - metadata.length);
    const parts = [encodeFileHeader({ set: headerSet }), metadata, padding, index, encodeTrailer(indexOffset, index.length)];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
    return out;
  }
  const code = (action: Promise<unknown>) => action.then(() => "ok", (e: { code?: string }) => e.code);

  it("round-trips through the index frame, and a reader that reads only the index sees it", async () => {
    const reader = await QansReader.open(new MemorySource(setFile(true, true)));
    expect(reader.index.set).toBe(true);
    const plain = await QansReader.open(new MemorySource(setFile(false, false)));
    expect(plain.index.set).toBe(false);
  });

  it("must equal the file header's flag: INDEX_MISMATCH otherwise, for the model opener, the verifier and the streaming reader", async () => {
    for (const [headerSet, indexSet] of [
      [true, false],
      [false, true],
    ] as const) {
      const bytes = setFile(headerSet, indexSet);
      expect(await code(openModelSource(new MemorySource(bytes), async () => new MemorySource(new Uint8Array(0)))), `header ${headerSet}, index ${indexSet}`).toBe("INDEX_MISMATCH");
      const { verifySource } = await import("./verify.js");
      expect(await code(verifySource(new MemorySource(bytes)))).toBe("INDEX_MISMATCH");
      const events = async () => {
        for await (const _ of decodeStream([bytes])) void _;
      };
      expect(await code(events())).toBe("INDEX_MISMATCH");
    }
  });

  it("rejects other index flag bits as RESERVED_BITS", async () => {
    const bytes = setFile(false, false);
    const indexAt = Number(new DataView(bytes.buffer).getBigUint64(bytes.length - 40, true));
    bytes[indexAt + 4] = 2;
    // The flags are checked before the index checksum (spec §11 order), so no re-sealing is needed.
    expect(await code(QansReader.open(new MemorySource(bytes)))).toBe("RESERVED_BITS");
  });
});
