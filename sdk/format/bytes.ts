import { QansError, type QansErrorCode } from "../errors.js";

export function align64(offset: number): number {
  return Math.ceil(offset / 64) * 64;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function isAllZero(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const UTF8 = new TextEncoder();

/** A growable little-endian byte builder for the writer side. */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buffer.buffer);
  }

  /** Grows the buffer; callers must read `this.buffer`/`this.view` only after calling it. */
  private reserve(extra: number): number {
    const at = this.length;
    const needed = at + extra;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, at));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = needed;
    return at;
  }

  u8(value: number): this {
    const at = this.reserve(1);
    this.view.setUint8(at, value);
    return this;
  }
  u16(value: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, value, true);
    return this;
  }
  u32(value: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, value >>> 0, true);
    return this;
  }
  u64(value: number | bigint): this {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(value), true);
    return this;
  }
  f32(value: number): this {
    const at = this.reserve(4);
    this.view.setFloat32(at, value, true);
    return this;
  }
  bytes(data: Uint8Array): this {
    const at = this.reserve(data.length);
    this.buffer.set(data, at);
    return this;
  }
  zeros(count: number): this {
    const at = this.reserve(count);
    this.buffer.fill(0, at, this.length);
    return this;
  }
  /** A u16 byte length followed by the UTF-8 bytes. */
  name(text: string): this {
    const encoded = UTF8.encode(text);
    return this.u16(encoded.length).bytes(encoded);
  }
  /** Overwrites a u32 written earlier (lengths and checksums known only at the end). */
  patchU32(at: number, value: number): this {
    this.view.setUint32(at, value >>> 0, true);
    return this;
  }
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/**
 * Bounds-checked little-endian reads over one structure. Running past `end` throws `overrunCode`
 * (TRUNCATED when the structure was cut short, BAD_HEADER when a length field lied), so a corrupt
 * length can never read out of bounds.
 */
export class ByteReader {
  readonly view: DataView;
  offset: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly where: string,
    readonly overrunCode: QansErrorCode = "TRUNCATED",
    start = 0,
    readonly end = bytes.length,
    /** Added to `offset` in messages, so they give absolute file offsets. */
    readonly baseOffset = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(code: QansErrorCode, message: string, at = this.offset): never {
    throw new QansError(code, `${this.where}: ${message} (at byte ${this.baseOffset + at})`);
  }

  private take(count: number, what: string): number {
    if (count > this.end - this.offset) {
      this.fail(this.overrunCode, `${what} needs ${count} bytes but only ${this.end - this.offset} remain`);
    }
    const at = this.offset;
    this.offset += count;
    return at;
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.take(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }
  f32(what: string): number {
    return this.view.getFloat32(this.take(4, what), true);
  }
  bytesView(count: number, what: string): Uint8Array {
    const at = this.take(count, what);
    return this.bytes.subarray(at, at + count);
  }
}

/** Converts a u64 read from a file to a Number, rejecting values that exceed `limit`. */
export function u64ToNumber(value: bigint, limit: number, code: QansErrorCode, what: string): number {
  if (value > BigInt(limit)) throw new QansError(code, `${what} ${value} exceeds ${limit}`);
  return Number(value);
}
