import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { QansError } from "../errors.js";
import { codeOfAsync } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { ChunkForwardReader, readableStreamChunks } from "./chunk-reader.js";

/** `bytes` cut into chunks whose sizes `size()` picks. */
function* chunked(bytes: Uint8Array, size: () => number): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; ) {
    const end = Math.min(bytes.length, at + Math.max(1, size()));
    yield bytes.subarray(at, end);
    at = end;
  }
}

async function* asyncChunked(bytes: Uint8Array, size: () => number): AsyncGenerator<Uint8Array> {
  for (const chunk of chunked(bytes, size)) yield chunk;
}

/** Bytes 1..255 repeating: never zero, so a read that lands on the wrong offset shows. */
function pattern(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i % 255) + 1);
}

describe("ChunkForwardReader", () => {
  it("returns the same bytes however the input is cut, for reads of any length", async () => {
    const bytes = pattern(10_000);
    const random = new Random(7);
    for (const size of [() => 1, () => 7, () => 4096, () => 1 + random.int(300), () => 1 << 20]) {
      const reader = new ChunkForwardReader(asyncChunked(bytes, size));
      let at = 0;
      const reads = new Random(3);
      while (at < bytes.length) {
        const length = Math.min(bytes.length - at, reads.int(700));
        const got = await reader.read(at, length, "structure");
        expect(got.length).toBe(length);
        expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(at, at + length)))).toBe(true);
        at += length;
        expect(reader.position).toBe(at);
      }
      expect(await reader.atEnd()).toBe(true);
    }
  });

  it("keeps returned bytes valid after later reads", async () => {
    const bytes = pattern(1000);
    const reader = new ChunkForwardReader(chunked(bytes, () => 10));
    const first = await reader.read(0, 25, "a");
    const second = await reader.read(25, 5, "b");
    await reader.read(30, 500, "c");
    expect([...first]).toEqual([...bytes.subarray(0, 25)]);
    expect([...second]).toEqual([...bytes.subarray(25, 30)]);
  });

  it("skips zero padding between reads and rejects non-zero padding", async () => {
    const bytes = new Uint8Array(256);
    bytes.set([1, 2, 3, 4], 0);
    bytes.set([5, 6], 128);
    const reader = new ChunkForwardReader(chunked(bytes, () => 3));
    expect([...(await reader.read(0, 4, "a"))]).toEqual([1, 2, 3, 4]);
    expect([...(await reader.read(128, 2, "b"))]).toEqual([5, 6]);

    bytes[200] = 9;
    const dirty = new ChunkForwardReader(chunked(bytes, () => 64));
    await dirty.read(0, 4, "a");
    await dirty.read(128, 2, "b");
    await expect(dirty.read(250, 4, "c")).rejects.toMatchObject({ code: "NONZERO_PADDING", message: expect.stringContaining("padding before c") });
  });

  it("refuses to go backwards", async () => {
    const reader = new ChunkForwardReader([pattern(100)]);
    await reader.read(0, 30, "a");
    expect(await codeOfAsync(reader.read(29, 1, "b"))).toBe("OFFSET_OUT_OF_RANGE");
  });

  it("reports the end of input inside a structure as TRUNCATED, naming it and its offset", async () => {
    const reader = new ChunkForwardReader(chunked(new Uint8Array(100), () => 30));
    await reader.read(0, 64, "file header");
    const error = await reader.read(64, 40, "metadata frame").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QansError);
    expect(error).toMatchObject({ code: "TRUNCATED" });
    expect((error as Error).message).toMatch(/^metadata frame: 40 bytes at 64 run past the end of the input \(100 bytes\)/);
    // Padding that runs past the end is the structure's truncation too.
    const short = new ChunkForwardReader([new Uint8Array(10)]);
    await expect(short.read(64, 4, "index")).rejects.toMatchObject({ code: "TRUNCATED", message: expect.stringContaining("index") });
  });

  it("readAtMost returns what is left at the end of input", async () => {
    const reader = new ChunkForwardReader(chunked(pattern(50), () => 8));
    expect((await reader.readAtMost(0, 64, "file header")).length).toBe(50);
    expect((await new ChunkForwardReader([]).readAtMost(0, 64, "file header")).length).toBe(0);
  });

  it("peek leaves the bytes to be read again", async () => {
    const bytes = new Uint8Array(200);
    bytes.set([7, 8, 9, 10, 11], 64);
    const reader = new ChunkForwardReader(chunked(bytes, () => 3));
    await reader.read(0, 5, "a");
    expect([...(await reader.peek(64, 4, "tag"))]).toEqual([7, 8, 9, 10]);
    expect(reader.position).toBe(64);
    expect([...(await reader.read(64, 5, "frame"))]).toEqual([7, 8, 9, 10, 11]);
    await expect(reader.peek(196, 8, "tag")).rejects.toMatchObject({ code: "TRUNCATED" });
  });

  it("tells whether the input has ended", async () => {
    const reader = new ChunkForwardReader(chunked(pattern(20), () => 5));
    await reader.read(0, 19, "a");
    expect(await reader.atEnd()).toBe(false);
    await reader.read(19, 1, "b");
    expect(await reader.atEnd()).toBe(true);
  });

  it("keeps at most the largest read plus one chunk, and under one chunk between reads", async () => {
    const random = new Random(11);
    const bytes = new Uint8Array(1 << 20);
    for (const chunkSize of [1, 7, 1000, 65536]) {
      const reader = new ChunkForwardReader(asyncChunked(bytes, () => 1 + random.int(chunkSize)));
      let largestRead = 0;
      let at = 0;
      while (at < bytes.length) {
        // Mostly small reads, sometimes a large one, sometimes a gap of padding.
        const length = Math.min(bytes.length - at, random.next() < 0.05 ? random.int(200_000) : random.int(100));
        at += random.int(64);
        if (at + length > bytes.length) break;
        await reader.read(at, length, "structure");
        at += length;
        largestRead = Math.max(largestRead, length);
        expect(reader.retainedBytes).toBeLessThan(Math.max(1, reader.largestChunkBytes));
      }
      expect(reader.largestChunkBytes).toBeLessThanOrEqual(chunkSize);
      expect(reader.peakRetainedBytes).toBeLessThanOrEqual(largestRead + reader.largestChunkBytes);
      expect(reader.peakRetainedBytes).toBeLessThan(bytes.length / 4);
    }
  });

  it("reads a Node Readable and a WHATWG ReadableStream", async () => {
    const bytes = pattern(5000);
    const node = new ChunkForwardReader(Readable.from(chunked(bytes, () => 333), { objectMode: true }));
    expect(Buffer.from(await node.read(0, 5000, "all")).equals(Buffer.from(bytes))).toBe(true);
    expect(await node.atEnd()).toBe(true);

    const chunks = [...chunked(bytes, () => 777)];
    const web = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const reader = new ChunkForwardReader(web);
    expect(Buffer.from(await reader.read(0, 5000, "all")).equals(Buffer.from(bytes))).toBe(true);
    expect(await reader.atEnd()).toBe(true);
  });

  it("cancels a ReadableStream and finishes a generator when closed early", async () => {
    let cancelled = false;
    const web = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(10));
      },
      cancel() {
        cancelled = true;
      },
    });
    const reader = new ChunkForwardReader(readableStreamChunks(web));
    await reader.read(0, 25, "a");
    await reader.close();
    expect(cancelled).toBe(true);

    let finished = false;
    async function* source() {
      try {
        for (;;) yield new Uint8Array(8);
      } finally {
        finished = true;
      }
    }
    const generatorReader = new ChunkForwardReader(source());
    await generatorReader.read(0, 20, "a");
    await generatorReader.close();
    expect(finished).toBe(true);
  });

  it("rejects chunks that are not bytes, and turns a failing source into IO_ERROR", async () => {
    const strings = new ChunkForwardReader(["abc"] as unknown as Uint8Array[]);
    expect(await codeOfAsync(strings.read(0, 2, "a"))).toBe("INVALID_ARGUMENT");
    async function* failing() {
      yield new Uint8Array(4);
      throw new Error("connection reset");
    }
    const reader = new ChunkForwardReader(failing());
    await expect(reader.read(0, 8, "a")).rejects.toMatchObject({ code: "IO_ERROR", message: expect.stringContaining("connection reset") });
    expect(() => new ChunkForwardReader(42 as unknown as Uint8Array[])).toThrow(QansError);
  });
});
