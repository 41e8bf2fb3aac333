import { constants as bufferConstants } from "node:buffer";
import { open, type FileHandle } from "node:fs/promises";
import { QansError, asQansError } from "../errors.js";

/** One range of `ByteSource.readRanges`. */
export interface ByteRange {
  offset: number;
  length: number;
  /** Names the structure, for error messages. */
  what?: string;
}

/** Random-access bytes: a buffer, a file, or a URL (sdk/io/http-source.ts). */
export interface ByteSource {
  readonly size: number;
  /**
   * Exactly `length` bytes at `offset`; throws TRUNCATED when the range passes the end. `what`
   * names the structure being read, for error messages.
   */
  read(offset: number, length: number, what?: string): Promise<Uint8Array>;
  /**
   * Several ranges at once, in the order given, for sources where that is cheaper than one `read`
   * each (an HTTP source joins near ranges into fewer requests and runs them in parallel).
   */
  readRanges?(ranges: readonly ByteRange[]): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

/** One `read` call moves at most this much; the OS caps single reads near 2 GiB. */
const MAX_READ_CHUNK = 1 << 30;

/** A source's name for messages: its path or URL when it has one. */
export function describe(source: ByteSource): string {
  return "name" in source && typeof source.name === "string" ? source.name : "the file";
}

/** Checks a read against the source's size, before anything is allocated for it. */
function checkRange(name: string, size: number, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new QansError("INVALID_ARGUMENT", `${name}: bad read of ${what} (offset ${offset}, length ${length})`);
  }
  if (offset + length > size) {
    throw new QansError("TRUNCATED", `${name}: ${what} needs bytes ${offset}..${offset + length} but the file has ${size} bytes`);
  }
}

export class MemorySource implements ByteSource {
  constructor(
    readonly bytes: Uint8Array,
    readonly name = "buffer",
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number, what = "data"): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length, what);
    return this.bytes.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}

/**
 * A regular local file read with positional reads only: the file is never read whole. Every read is
 * checked against the size taken at open time before its buffer is allocated, so a declared length
 * can never size an allocation the file does not back.
 */
export class FileSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    /** The file's path. */
    readonly name: string,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      throw asQansError(error, `cannot open ${path}`);
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new QansError("BAD_INPUT", `${path} is not a regular file`);
      return new FileSource(handle, path, stats.size);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw asQansError(error, `cannot stat ${path}`);
    }
  }

  async read(offset: number, length: number, what = "data"): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length, what);
    if (length > bufferConstants.MAX_LENGTH) {
      throw new QansError("LIMIT_EXCEEDED", `${this.name}: ${what} at offset ${offset} is ${length} bytes, more than one buffer can hold`);
    }
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(bytes, done, Math.min(length - done, MAX_READ_CHUNK), offset + done));
      } catch (error) {
        throw asQansError(error, `${this.name}: reading ${what} at offset ${offset + done}`);
      }
      // The file shrank after it was opened.
      if (bytesRead === 0) throw new QansError("TRUNCATED", `${this.name}: ${what} ends early at offset ${offset + done}`);
      done += bytesRead;
    }
    return bytes;
  }

  async close(): Promise<void> {
    try {
      await this.handle.close();
    } catch (error) {
      throw asQansError(error, `closing ${this.name}`);
    }
  }
}

/** Opens `path`, runs `fn`, and closes the file whatever happens; errors come out as QansErrors. */
export async function withFile<T>(path: string, fn: (file: FileSource) => Promise<T>): Promise<T> {
  const file = await FileSource.open(path);
  try {
    return await fn(file);
  } catch (error) {
    throw asQansError(error, `reading ${path}`);
  } finally {
    await file.close().catch(() => undefined);
  }
}

/** Reads a whole small file (a JSON manifest, say), refusing files over `maxBytes`. */
export async function readSmallFile(path: string, maxBytes: number, what: string): Promise<Uint8Array> {
  return withFile(path, async (file) => {
    if (file.size > maxBytes) {
      throw new QansError("LIMIT_EXCEEDED", `${path}: ${what} is ${file.size} bytes, more than the ${maxBytes}-byte limit`);
    }
    return file.read(0, file.size, what);
  });
}
