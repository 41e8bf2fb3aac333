import { asQansError, QansError } from "../errors.js";
import { checkForward, checkPadding, type ForwardReader } from "./forward-reader.js";

/** Chunks of input of any sizes: a Node `Readable` (such as `process.stdin`), an async generator, an array. */
export type ChunkSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * The chunks of a WHATWG `ReadableStream` (`fetch` bodies, browser streams) as an async iterable.
 * Stopping early (a `break`, an error) cancels the stream; the lock is released either way.
 */
export async function* readableStreamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** Whether `value` looks like a WHATWG ReadableStream (it has `getReader`). */
export function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof value === "object" && value !== null && typeof (value as { getReader?: unknown }).getReader === "function";
}

/**
 * A ForwardReader over a sequence of chunks of unknown total length, such as a pipe. It keeps only
 * the bytes not yet consumed: at most one partly consumed chunk between reads, and during a read
 * the bytes of that read plus one chunk. A read returns a view of a chunk when the bytes lie in one,
 * else a new buffer; either stays valid after later reads. Skipped bytes are padding and must be
 * zero; the end of input before a requested structure is TRUNCATED, naming it and its offset.
 */
export class ChunkForwardReader implements ForwardReader {
  private readonly iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  /**
   * Unconsumed bytes, in order, from `pending[head]`; that first one may be the tail of a partly
   * consumed chunk. Consumed entries are cut off in batches, so that a read spanning many tiny
   * chunks costs time linear in their number.
   */
  private pending: Uint8Array[] = [];
  private head = 0;
  private held = 0;
  private peak = 0;
  private largestChunk = 0;
  private offset: number;
  private ended = false;
  private closed = false;

  constructor(
    chunks: ChunkSource | ReadableStream<Uint8Array>,
    /** File offset of the first byte of input. */
    start = 0,
  ) {
    if (isReadableStream(chunks)) chunks = readableStreamChunks(chunks);
    if (typeof chunks !== "object" || chunks === null || !(Symbol.asyncIterator in chunks || Symbol.iterator in chunks)) {
      throw new QansError("INVALID_ARGUMENT", "the input must be an iterable or async iterable of Uint8Array chunks, or a ReadableStream");
    }
    this.iterator = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
    this.offset = start;
  }

  /** File offset of the next unconsumed byte: everything before it has been read or skipped. */
  get position(): number {
    return this.offset;
  }

  /** Bytes received but not yet consumed, held by this reader now. */
  get retainedBytes(): number {
    return this.held;
  }

  /** The most bytes `retainedBytes` has been: at most the largest read plus one chunk. */
  get peakRetainedBytes(): number {
    return this.peak;
  }

  /** The largest chunk received so far. */
  get largestChunkBytes(): number {
    return this.largestChunk;
  }

  async read(offset: number, length: number, what: string): Promise<Uint8Array> {
    await this.skipTo(offset, length, what);
    await this.fill(length, () => this.truncated(offset, length, what));
    return this.take(length);
  }

  /** As `read`, but returns fewer than `length` bytes (perhaps none) when the input ends first. */
  async readAtMost(offset: number, length: number, what: string): Promise<Uint8Array> {
    await this.skipTo(offset, length, what);
    await this.fill(length, () => undefined);
    return this.take(Math.min(length, this.held));
  }

  /**
   * The `length` bytes at `offset` without consuming them: the next read may start at `offset`
   * again. The padding before `offset` is checked and consumed.
   */
  async peek(offset: number, length: number, what: string): Promise<Uint8Array> {
    await this.skipTo(offset, length, what);
    await this.fill(length, () => this.truncated(offset, length, what));
    const first = this.pending[this.head];
    if (first && first.length >= length) return first.subarray(0, length);
    return this.gather(length, false);
  }

  /** Whether the input has no byte after `position`. Reads at most one more chunk to find out. */
  async atEnd(): Promise<boolean> {
    await this.fill(1, () => undefined);
    return this.held === 0;
  }

  /** Stops reading: the source is told (a Node stream is destroyed, a ReadableStream cancelled). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.head = 0;
    this.held = 0;
    if (!this.ended) {
      this.ended = true;
      try {
        await this.iterator.return?.();
      } catch {
        // Closing is best effort: the source may already be broken.
      }
    }
  }

  private truncated(offset: number, length: number, what: string): QansError {
    return new QansError("TRUNCATED", `${what}: ${length} bytes at ${offset} run past the end of the input (${this.offset + this.held} bytes)`);
  }

  /** Consumes the bytes up to `offset`, which are padding and must be zero. */
  private async skipTo(offset: number, length: number, what: string): Promise<void> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || length < 0) {
      throw new QansError("INVALID_ARGUMENT", `bad read of ${what} (offset ${offset}, length ${length})`);
    }
    checkForward(this.offset, offset, what);
    while (this.offset < offset) {
      if (this.held === 0) await this.fill(1, () => this.truncated(offset, length, what));
      const first = this.pending[this.head];
      const count = Math.min(first.length, offset - this.offset);
      checkPadding(first, 0, count, this.offset, what);
      this.drop(count);
    }
  }

  /** Receives chunks until `length` bytes are held or the input ends (then `onEnd` may throw). */
  private async fill(length: number, onEnd: () => QansError | undefined): Promise<void> {
    while (this.held < length) {
      if (this.ended) {
        const error = onEnd();
        if (error) throw error;
        return;
      }
      let next: IteratorResult<Uint8Array>;
      try {
        next = await this.iterator.next();
      } catch (error) {
        this.ended = true;
        throw asQansError(error, `reading the input at byte ${this.offset + this.held}`);
      }
      if (next.done) {
        this.ended = true;
        continue;
      }
      const chunk = next.value;
      if (!(chunk instanceof Uint8Array)) {
        await this.close();
        throw new QansError("INVALID_ARGUMENT", `input chunks must be Uint8Array (bytes), got ${typeof chunk === "string" ? "a string" : typeof chunk}`);
      }
      if (chunk.length === 0) continue;
      this.pending.push(chunk);
      this.held += chunk.length;
      this.largestChunk = Math.max(this.largestChunk, chunk.length);
      this.peak = Math.max(this.peak, this.held);
    }
  }

  /** Consumes `length` held bytes and returns them. */
  private take(length: number): Uint8Array {
    const first = this.pending[this.head];
    if (length === 0) return new Uint8Array(0);
    if (first.length >= length) {
      const bytes = first.subarray(0, length);
      this.drop(length);
      return bytes;
    }
    return this.gather(length, true);
  }

  /** Copies the first `length` held bytes into a new buffer, consuming them when `consume`. */
  private gather(length: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    for (let i = this.head; done < length; i++) {
      const chunk = this.pending[i];
      const count = Math.min(chunk.length, length - done);
      out.set(chunk.subarray(0, count), done);
      done += count;
    }
    if (consume) this.drop(length);
    return out;
  }

  /** Forgets the first `length` held bytes. */
  private drop(length: number): void {
    this.offset += length;
    this.held -= length;
    while (length > 0) {
      const first = this.pending[this.head];
      if (first.length <= length) {
        this.pending[this.head++] = EMPTY;
        length -= first.length;
      } else {
        this.pending[this.head] = first.subarray(length);
        length = 0;
      }
    }
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
