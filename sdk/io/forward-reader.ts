import { QansError } from "../errors.js";
import { isAllZero } from "../format/bytes.js";
import type { ByteSource } from "./source.js";

/**
 * Reads a file front to back. Offsets never go backwards, and the bytes skipped between two reads
 * are padding, which must be zero: one rule for the streaming reader, the verifier and the
 * random-access reader (over one tensor's bytes).
 */
export interface ForwardReader {
  read(offset: number, length: number, what: string): Promise<Uint8Array>;
}

/** Over bytes already in memory that start at file offset `base` (a tensor frame, say). */
export class BufferForwardReader implements ForwardReader {
  private position: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly base: number,
  ) {
    this.position = base;
  }

  async read(offset: number, length: number, what: string): Promise<Uint8Array> {
    return this.readSync(offset, length, what);
  }

  /** As `read`, without waiting: the bytes are in memory. The result is a view of them. */
  readSync(offset: number, length: number, what: string): Uint8Array {
    checkForward(this.position, offset, what);
    const start = offset - this.base;
    if (start + length > this.bytes.length) {
      throw new QansError("TRUNCATED", `${what}: ${length} bytes at ${offset} run past the ${this.bytes.length} bytes read at ${this.base}`);
    }
    checkPadding(this.bytes, this.position - this.base, start, this.position, what);
    this.position = offset + length;
    return this.bytes.subarray(start, start + length);
  }
}

/** Over a ByteSource, through a read-ahead buffer so small structures cost no extra I/O. */
export class SourceForwardReader implements ForwardReader {
  private buffer: Uint8Array = new Uint8Array(0);
  private bufferStart = 0;

  constructor(
    private readonly source: ByteSource,
    /** Where reading starts: bytes before it belong to structures already checked. */
    private position = 0,
    private readonly chunkSize = 1 << 20,
  ) {}

  async read(offset: number, length: number, what: string): Promise<Uint8Array> {
    checkForward(this.position, offset, what);
    if (offset + length > this.source.size) {
      throw new QansError("TRUNCATED", `${what}: ${length} bytes at ${offset} run past the end of the file (${this.source.size} bytes)`);
    }
    const gap = await this.window(this.position, offset - this.position, `padding before ${what}`);
    checkPadding(gap, 0, gap.length, this.position, what);
    this.position = offset + length;
    return this.window(offset, length, what);
  }

  private async window(offset: number, length: number, what: string): Promise<Uint8Array> {
    const end = offset + length;
    if (offset >= this.bufferStart && end <= this.bufferStart + this.buffer.length) {
      return this.buffer.subarray(offset - this.bufferStart, end - this.bufferStart);
    }
    if (length > this.chunkSize) return this.source.read(offset, length, what);
    const readLength = Math.min(Math.max(this.chunkSize, length), this.source.size - offset);
    this.buffer = await this.source.read(offset, readLength, what);
    this.bufferStart = offset;
    return this.buffer.subarray(0, length);
  }
}

/** Refuses to read before the end of what was already read: a ForwardReader never goes back. */
export function checkForward(position: number, offset: number, what: string): void {
  if (offset < position) throw new QansError("OFFSET_OUT_OF_RANGE", `${what}: offset ${offset} is before the end of the previous structure (${position})`);
}

/** Refuses non-zero bytes in `bytes[start, end)`, the padding at `fileOffset` before `what`. */
export function checkPadding(bytes: Uint8Array, start: number, end: number, fileOffset: number, what: string): void {
  if (!isAllZero(bytes, start, end)) {
    throw new QansError("NONZERO_PADDING", `padding before ${what} is not zero (bytes ${fileOffset}..${fileOffset + end - start - 1})`);
  }
}
