import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TRAILER_SIZE } from "../format/constants.js";
import { QansReader } from "../reader.js";
import type { TensorEncoding } from "../tensor/frame-encode.js";
import type { DType } from "../tensor/dtype.js";
import { gaussianTensor, sameBytes, sha256, writeToMemory } from "../testing/fixtures.js";
import { startNginx, type NginxLogEntry, type NginxServer } from "../testing/nginx.js";
import { codeOfAsync } from "../testing/outcome.js";
import { HttpSource } from "./http-source.js";
import { MemorySource } from "./source.js";

const TAIL = 64 * 1024;
/** Tensors in the file; the ones at LARGE are 64 Ki elements, the rest 128. */
const COUNT = 206;
const LARGE = new Set([0, 40, 90, 150, 205]);
const TARGET = "layers.40.weight";

let nginx: NginxServer;
let file: Uint8Array;
let memory: QansReader;

/** The access log's lines for one file. */
async function logFor(name: string): Promise<NginxLogEntry[]> {
  return (await nginx.accessLog()).filter((entry) => entry.uri === `/${name}`);
}

beforeAll(async () => {
  // Fails, with what to install, when nginx is missing: this suite is not skipped.
  nginx = await startNginx();
  const encodings: TensorEncoding[] = [{ encoding: "float-planes" }, { encoding: "raw" }, { encoding: "int-quant", bits: 4 }, { encoding: "int-quant", bits: 8, groupSize: 32 }];
  const dtypes: DType[] = ["F32", "F16", "BF16"];
  const tensors = Array.from({ length: COUNT }, (_, i) => ({
    tensor: gaussianTensor(`layers.${i}.weight`, LARGE.has(i) ? [128, 512] : [8, 16], i + 1, LARGE.has(i) ? "F32" : dtypes[i % 3]),
    encoding: LARGE.has(i) ? { encoding: "float-planes" as const } : encodings[i % encodings.length],
  }));
  file = await writeToMemory(tensors, { log2Block: 14 });
  await writeFile(join(nginx.root, "model.qans"), file);
  memory = await QansReader.open(new MemorySource(file));
});

afterAll(async () => {
  await nginx?.stop();
});

describe("HttpSource against nginx", () => {
  it("opens a 200-tensor file and reads one tensor in at most 3 requests and few bytes", async () => {
    const source = await HttpSource.open(nginx.url("model.qans"));
    const reader = await QansReader.open(source);
    expect(reader.entries).toHaveLength(COUNT);
    const tensor = await reader.readTensor(TARGET);
    expect(sameBytes(tensor.data, (await memory.readTensor(TARGET)).data)).toBe(true);

    const entry = memory.entry(TARGET);
    const log = await logFor("model.qans");
    const bodyBytes = log.reduce((sum, line) => sum + line.bodyBytes, 0);
    expect(log.length).toBeLessThanOrEqual(3);
    expect(bodyBytes).toBeLessThanOrEqual(entry.frameLength + memory.trailer.indexLength + TRAILER_SIZE + TAIL);
    // The index fits in the tail read at open, so: the tail, then the frame.
    expect(log.map((line) => [line.range, line.status, line.bodyBytes])).toEqual([
      [`bytes=-${TAIL}`, 206, TAIL],
      [`bytes=${entry.frameOffset}-${entry.frameOffset + entry.frameLength - 1}`, 206, entry.frameLength],
    ]);
    expect(log[1].ifMatch).toBe(source.etag);
    // The client's counters agree with the server's log.
    expect(source.requests).toBe(log.length);
    expect(source.bytesReceived).toBe(bodyBytes);
    await reader.close();
  });

  it("reads every tensor with the same bytes as a MemorySource", async () => {
    const source = await HttpSource.open(nginx.url("model.qans"));
    const reader = await QansReader.open(source);
    for (const entry of memory.entries) {
      const remote = await reader.readTensor(entry.name);
      const local = await memory.readTensor(entry.name);
      expect(remote.shape).toEqual(local.shape);
      expect(sha256(remote.data), entry.name).toBe(sha256(local.data));
    }
    await reader.close();
  });

  it("readRanges fetches all frames in one coalesced request, byte-identical", async () => {
    const before = (await logFor("model.qans")).length;
    const source = await HttpSource.open(nginx.url("model.qans"), { concurrency: 2 });
    const ranges = memory.entries.map((entry) => ({ offset: entry.frameOffset, length: entry.frameLength, what: entry.name }));
    const frames = await source.readRanges(ranges);
    for (let i = 0; i < ranges.length; i++) {
      expect(sameBytes(frames[i], await new MemorySource(file).read(ranges[i].offset, ranges[i].length)), ranges[i].what).toBe(true);
    }
    const log = (await logFor("model.qans")).slice(before);
    // The open, then one request for every frame before the kept tail (frames are contiguous).
    expect(log).toHaveLength(2);
    expect(log[1].range).toBe(`bytes=${ranges[0].offset}-${file.length - TAIL - 1}`);
    await source.close();
  });

  it("fails with IO_ERROR, through nginx's If-Match, when the file is replaced mid-read", async () => {
    await writeFile(join(nginx.root, "changing.qans"), file);
    const source = await HttpSource.open(nginx.url("changing.qans"));
    const reader = await QansReader.open(source);
    await reader.readTensor("layers.0.weight");
    const changed = new Uint8Array(file);
    changed[100] ^= 1;
    await writeFile(join(nginx.root, "changing.qans"), changed);
    // nginx's ETag is mtime and size: make sure the mtime moves.
    const later = new Date(Date.now() + 10_000);
    await utimes(join(nginx.root, "changing.qans"), later, later);
    const error = await reader.readTensor("layers.0.weight").catch((e: unknown) => e as Error & { code: string });
    expect(error).toBeInstanceOf(Error);
    expect((error as { code: string }).code).toBe("IO_ERROR");
    expect((error as Error).message).toMatch(/changed.*412/);
    expect((await logFor("changing.qans")).map((line) => line.status)).toEqual([206, 206, 412]);
    await reader.close();
  });

  it("reports a missing file as IO_ERROR with the status", async () => {
    expect(await codeOfAsync(HttpSource.open(nginx.url("missing.qans")))).toBe("IO_ERROR");
    await expect(HttpSource.open(nginx.url("missing.qans"))).rejects.toThrow(/HTTP 404/);
  });
});
