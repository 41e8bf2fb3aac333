import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { codeOfAsync } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { useTempDir } from "../testing/temp-dir.js";
import { StreamSink } from "./stream-sink.js";

const dir = useTempDir("qans-stream-sink-");

const seq = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A Writable that takes `delayMs` per chunk and records what it got and how full its buffer ever was. */
class SlowWritable extends Writable {
  readonly received: Uint8Array[] = [];
  maxBuffered = 0;

  constructor(
    highWaterMark: number,
    private readonly delayMs: number,
  ) {
    super({ highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Everything the stream holds: this chunk and those queued behind it.
    this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
    this.received.push(Uint8Array.from(chunk));
    setTimeout(callback, this.delayMs);
  }

  bytes(): Buffer {
    return Buffer.concat(this.received);
  }
}

/** A Writable whose writes finish only when the test says so. */
class GatedWritable extends Writable {
  readonly received: Uint8Array[] = [];
  private readonly waiting: ((error?: Error | null) => void)[] = [];

  constructor(highWaterMark: number) {
    super({ highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.received.push(Uint8Array.from(chunk));
    this.waiting.push(callback);
  }

  release(error?: Error): void {
    for (const callback of this.waiting.splice(0)) callback(error);
  }
}

describe("StreamSink: order and backpressure", () => {
  it("writes every byte in order to a slow stream, never buffering much over its high-water mark", async () => {
    const stream = new SlowWritable(1024, 1);
    const sink = new StreamSink(stream, { bufferSize: 0 });
    const random = new Random(3);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 60; i++) {
      const part = seq(1 + random.int(3000), i);
      parts.push(part);
      await sink.write(part);
      // A resolved write means the stream wants more: its buffer is below the mark.
      expect(stream.writableLength).toBeLessThan(1024);
    }
    await sink.end();
    expect(stream.maxBuffered).toBeLessThanOrEqual(1024 + 3000);
    expect(stream.writableFinished).toBe(true);
    expect(sink.bytesWritten).toBe(parts.reduce((sum, p) => sum + p.length, 0));
    expect(stream.bytes().equals(Buffer.concat(parts))).toBe(true);
  });

  it("does not resolve a write until the stream drains", async () => {
    const stream = new GatedWritable(100);
    const sink = new StreamSink(stream, { bufferSize: 0 });
    let resolved = false;
    const pending = sink.write(seq(500)).then(() => {
      resolved = true;
    });
    for (let i = 0; i < 5; i++) await tick();
    expect(resolved).toBe(false);
    expect(stream.received.length).toBe(1);
    stream.release();
    await pending;
    expect(resolved).toBe(true);
  });

  it("gathers small writes into one stream write and copies them, so callers may reuse buffers", async () => {
    const stream = new SlowWritable(1 << 20, 0);
    const sink = new StreamSink(stream, { bufferSize: 4096 });
    const scratch = new Uint8Array(100);
    const expected: number[] = [];
    for (let i = 0; i < 100; i++) {
      scratch.fill(i);
      await sink.write(scratch);
      expected.push(...scratch);
    }
    const big = seq(10_000);
    await sink.write(big);
    big.fill(0);
    await sink.end();
    // 10,000 small bytes: two full gathering buffers and one partial, then the big write on its own.
    expect(stream.received.map((c) => c.length)).toEqual([4096, 4096, 1808, 10_000]);
    expect(stream.bytes().equals(Buffer.concat([Uint8Array.from(expected), seq(10_000)]))).toBe(true);
  });

  it("keeps overlapping writes in call order", async () => {
    const stream = new SlowWritable(64, 1);
    const sink = new StreamSink(stream, { bufferSize: 16 });
    const parts = Array.from({ length: 40 }, (_, i) => seq(1 + ((i * 7) % 40), i));
    await Promise.all(parts.map((part) => sink.write(part)));
    await sink.end();
    expect(stream.bytes().equals(Buffer.concat(parts))).toBe(true);
  });

  it("with end: false, waits until everything is written and leaves the stream open", async () => {
    const stream = new SlowWritable(16, 2);
    const sink = new StreamSink(stream, { end: false });
    await sink.write(seq(10));
    await sink.write(seq(20_000));
    await sink.write(seq(5));
    await sink.end();
    expect(stream.writableLength).toBe(0);
    expect(stream.writableEnded).toBe(false);
    expect(stream.bytes().equals(Buffer.concat([seq(10), seq(20_000), seq(5)]))).toBe(true);
    await sink.end();
    expect(await codeOfAsync(() => sink.write(seq(1)))).toBe("INVALID_ARGUMENT");
  });

  it("writes to a file stream and through a pipe", async () => {
    const path = join(dir(), "out.bin");
    const file = createWriteStream(path);
    const sink = new StreamSink(file);
    const data = seq(300_000);
    for (let at = 0; at < data.length; at += 7777) await sink.write(data.subarray(at, at + 7777));
    await sink.end();
    expect((await readFile(path)).equals(data)).toBe(true);

    const pipe = new PassThrough({ highWaterMark: 1024 });
    const collected: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of pipe) {
        collected.push(chunk as Buffer);
        await tick();
      }
    })();
    const pipeSink = new StreamSink(pipe, { bufferSize: 512 });
    for (let at = 0; at < data.length; at += 3000) await pipeSink.write(data.subarray(at, at + 3000));
    await pipeSink.end();
    await reading;
    expect(Buffer.concat(collected).equals(data)).toBe(true);
  });
});

describe("StreamSink: errors", () => {
  it("turns a failed write into IO_ERROR for every later call, end() included", async () => {
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error("disk on fire"));
      },
    });
    const sink = new StreamSink(stream, { name: "test output", bufferSize: 0 });
    // The stream took the chunk without asking to wait; its failure comes a tick later.
    await sink.write(seq(10));
    await tick();
    await expect(sink.write(seq(10))).rejects.toThrow(/writing test output at byte 10: disk on fire/);
    expect(await codeOfAsync(() => sink.write(seq(10)))).toBe("IO_ERROR");
    expect(await codeOfAsync(() => sink.end())).toBe("IO_ERROR");

    // Nothing is lost when nobody writes again: end() reports it.
    const quiet = new StreamSink(
      new Writable({
        write(_chunk, _encoding, callback) {
          setImmediate(() => callback(new Error("late disk failure")));
        },
      }),
    );
    await quiet.write(seq(10));
    await expect(quiet.end()).rejects.toThrow(/late disk failure/);
  });

  it("reports an error that arrives while waiting for 'drain'", async () => {
    const stream = new GatedWritable(10);
    const sink = new StreamSink(stream, { bufferSize: 0 });
    const pending = sink.write(seq(100));
    await tick();
    stream.destroy(new Error("EPIPE: reader went away"));
    await expect(pending).rejects.toThrow(/EPIPE: reader went away/);
    expect(await codeOfAsync(() => sink.write(seq(1)))).toBe("IO_ERROR");
  });

  it("reports a stream closed with data still unwritten, with or without an error", async () => {
    const stream = new GatedWritable(10);
    const sink = new StreamSink(stream, { bufferSize: 0 });
    const pending = sink.write(seq(100));
    await tick();
    stream.destroy();
    expect(await codeOfAsync(pending)).toBe("IO_ERROR");

    const quiet = new GatedWritable(1 << 20);
    const quietSink = new StreamSink(quiet, { end: false });
    await quietSink.write(seq(100));
    const ending = quietSink.end();
    await tick();
    quiet.destroy();
    expect(await codeOfAsync(ending)).toBe("IO_ERROR");
  });

  it("refuses a stream that is already closed or ended, and what is not a stream", async () => {
    const closed = new PassThrough();
    closed.destroy();
    expect(await codeOfAsync(() => new StreamSink(closed).write(seq(1)))).toBe("IO_ERROR");
    const ended = new PassThrough();
    ended.end();
    expect(await codeOfAsync(() => new StreamSink(ended).write(seq(1)))).toBe("IO_ERROR");
    expect(await codeOfAsync(() => new StreamSink({} as Writable))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => new StreamSink(new PassThrough(), { bufferSize: -1 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => new StreamSink(new PassThrough()).write("text" as unknown as Uint8Array))).toBe("INVALID_ARGUMENT");
  });

  it("reports an error from ending the stream", async () => {
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        callback();
      },
      final(callback) {
        callback(new Error("flush failed"));
      },
    });
    const sink = new StreamSink(stream);
    await sink.write(seq(10));
    await expect(sink.end()).rejects.toThrow(/flush failed/);
  });

  it("keeps a later 'error' event from crashing the process", async () => {
    const stream = new PassThrough();
    stream.resume();
    const sink = new StreamSink(stream);
    await sink.write(seq(10));
    await sink.end();
    stream.emit("error", new Error("late failure"));
    await tick();
  });
});
