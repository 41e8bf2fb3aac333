import type { Writable } from "node:stream";
import { asQansError, QansError } from "../errors.js";
import type { ByteSink } from "./sink.js";

export interface StreamSinkOptions {
  /** Names the output in error messages; default "output stream". */
  name?: string;
  /**
   * Whether `end()` ends the stream (default true). With false, `end()` only waits until every
   * byte was handed on, and the stream stays open: for `process.stdout`, which others may share.
   */
  end?: boolean;
  /**
   * Writes smaller than this many bytes are gathered into one buffer of this size before they go
   * to the stream, so that small headers do not each cost a stream write; default 64 KiB, 0 for none.
   */
  bufferSize?: number;
}

const DEFAULT_BUFFER_SIZE = 64 * 1024;

/**
 * A sink over a Node `Writable` that cannot seek: `process.stdout`, a pipe, a socket, an HTTP
 * request body. Bytes go to the stream in call order, with no temporary file, so the reader sees
 * them as they are written, and a failed write leaves a prefix behind (use `AtomicFileSink` for
 * files that must appear whole or not at all).
 *
 * Backpressure: `write()` resolves once the stream has taken the bytes and its buffer is below its
 * high-water mark; when `stream.write` asks to wait, it resolves on 'drain'. Memory: the gathering
 * buffer, plus what the stream buffers (under its high-water mark, or one chunk over it). The
 * stream may hold a chunk until it is flushed, so it gets a copy: callers may reuse their buffers
 * once `write()` resolves, as with the other sinks.
 *
 * Errors: a write error, an 'error' event or the stream closing early become a QansError IO_ERROR,
 * thrown by a `write()` still waiting for 'drain' and by every later `write()` or `end()`; as the
 * stream reports a failed write after taking the chunk, the failure of the last chunks surfaces at
 * `end()`, which the caller must await to know that everything was written. The sink listens for 'error' for
 * as long as the stream lives, so a failing stream (EPIPE on a closed pipe) never crashes the
 * process as an unhandled 'error' event.
 */
export class StreamSink implements ByteSink {
  private written = 0;
  private failure: QansError | undefined;
  private ended = false;
  private readonly name: string;
  private readonly bufferSize: number;
  private gathered: Uint8Array | undefined;
  private gatheredLength = 0;
  /** Settles when the last chunk handed to the stream was processed (successfully or not). */
  private lastWrite: Promise<void> = Promise.resolve();
  /** Chunks handed to the stream whose write callback has not run yet. */
  private inFlight = 0;
  /** One wait for 'drain' shared by overlapping writes. */
  private drain: Promise<void> | undefined;

  constructor(
    private readonly stream: Writable,
    private readonly options: StreamSinkOptions = {},
  ) {
    if (typeof stream?.write !== "function" || typeof stream.on !== "function") {
      throw new QansError("INVALID_ARGUMENT", "StreamSink needs a Node Writable stream");
    }
    this.name = options.name ?? "output stream";
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 0) {
      throw new QansError("INVALID_ARGUMENT", `${this.name}: bufferSize must be a non-negative integer, got ${bufferSize}`);
    }
    this.bufferSize = bufferSize;
    stream.on("error", (error) => this.fail(error));
  }

  /** Bytes accepted by `write()` so far. */
  get bytesWritten(): number {
    return this.written;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) throw new QansError("INVALID_ARGUMENT", `${this.name}: write expects a Uint8Array`);
    this.checkUsable("write");
    if (bytes.byteLength === 0) return;
    this.written += bytes.byteLength;
    // Everything up to handing chunks to the stream happens before the first await, so
    // overlapping calls still reach the stream in call order.
    if (bytes.byteLength < this.bufferSize) {
      let done = 0;
      while (done < bytes.byteLength) {
        this.gathered ??= new Uint8Array(this.bufferSize);
        const n = Math.min(bytes.byteLength - done, this.bufferSize - this.gatheredLength);
        this.gathered.set(bytes.subarray(done, done + n), this.gatheredLength);
        this.gatheredLength += n;
        done += n;
        if (this.gatheredLength === this.bufferSize) this.handOffGathered();
      }
    } else {
      this.handOffGathered();
      this.handOff(bytes.slice());
    }
    if (this.stream.writableNeedDrain) await this.drained();
    if (this.failure) throw this.failure;
  }

  /**
   * Hands on any gathered bytes and, by default, ends the stream and waits for 'finish'; with
   * `end: false`, waits until the stream has processed every chunk. Calling it again does nothing.
   */
  async end(): Promise<void> {
    if (this.ended && !this.failure) return;
    this.checkUsable("end");
    this.handOffGathered();
    this.ended = true;
    if (this.options.end ?? true) {
      await new Promise<void>((resolve) => {
        this.stream.end((error?: Error | null) => {
          if (error) this.fail(error);
          resolve();
        });
      });
    } else {
      await this.until(["error", "close"], this.lastWrite);
    }
    if (this.failure) throw this.failure;
  }

  private handOffGathered(): void {
    if (this.gathered === undefined || this.gatheredLength === 0) return;
    // The stream keeps the buffer until it is flushed, so gathering continues in a new one.
    this.handOff(this.gathered.subarray(0, this.gatheredLength));
    this.gathered = undefined;
    this.gatheredLength = 0;
  }

  private handOff(chunk: Uint8Array): void {
    this.inFlight++;
    this.lastWrite = new Promise<void>((resolve) => {
      this.stream.write(chunk, (error?: Error | null) => {
        this.inFlight--;
        if (error) this.fail(error);
        resolve();
      });
    });
  }

  /** Resolves on 'drain', or records a failure when the stream errs or closes first. */
  private drained(): Promise<void> {
    this.drain ??= this.until(["drain", "error", "close"]).then(() => {
      this.drain = undefined;
    });
    return this.drain;
  }

  /** Resolves on the first of `events` or of `also` settling; records a failure if the stream closed meanwhile. */
  private until(events: ("drain" | "error" | "close")[], also?: Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        for (const event of events) this.stream.off(event, settle);
        this.failIfClosed();
        resolve();
      };
      if (this.failure || this.stream.destroyed) return settle();
      for (const event of events) this.stream.on(event, settle);
      void also?.then(settle);
    });
  }

  /** A stream closed with chunks of ours unwritten lost them, whether or not it said why. */
  private failIfClosed(): void {
    if (this.stream.destroyed && this.inFlight > 0) this.fail(new Error(`the stream closed with ${this.inFlight} chunk(s) unwritten`));
  }

  private fail(error: unknown): void {
    this.failure ??= asQansError(error, `writing ${this.name} at byte ${this.written}`);
  }

  private checkUsable(operation: string): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw new QansError("INVALID_ARGUMENT", `${this.name}: cannot ${operation}, the sink was already ended`);
    if (this.stream.destroyed || this.stream.writableEnded) {
      this.fail(new Error(`the stream is already ${this.stream.destroyed ? "closed" : "ended"}`));
      throw this.failure!;
    }
  }
}
