import { open, type FileHandle } from "node:fs/promises";
import { constants as bufferConstants } from "node:buffer";
import { asQansError, QansError } from "../errors.js";

/** One `read` call moves at most this much; the OS caps single reads near 2 GiB. */
const MAX_READ_CHUNK = 1 << 30;

/**
 * A regular file opened for positional reads. Every read is checked against the size taken at
 * open time before its buffer is allocated, so a declared length can never size an allocation
 * the file does not back.
 */
export class RandomAccessFile {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<RandomAccessFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (error) {
      throw asQansError(error, `cannot open ${path}`);
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new QansError("BAD_INPUT", `${path} is not a regular file`);
      return new RandomAccessFile(handle, path, stats.size);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw asQansError(error, `cannot stat ${path}`);
    }
  }

  /** Reads exactly `length` bytes at `position`; `what` names the structure for error messages. */
  async read(position: number, length: number, what: string): Promise<Uint8Array> {
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0) {
      throw new QansError("INVALID_ARGUMENT", `${this.path}: bad read of ${what} (offset ${position}, length ${length})`);
    }
    if (position + length > this.size) {
      throw new QansError(
        "TRUNCATED",
        `${this.path}: ${what} needs bytes ${position}..${position + length} but the file has ${this.size} bytes`,
      );
    }
    if (length > bufferConstants.MAX_LENGTH) {
      throw new QansError("LIMIT_EXCEEDED", `${this.path}: ${what} at offset ${position} is ${length} bytes, more than one buffer can hold`);
    }
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(bytes, done, Math.min(length - done, MAX_READ_CHUNK), position + done));
      } catch (error) {
        throw asQansError(error, `${this.path}: reading ${what} at offset ${position + done}`);
      }
      // The file shrank after it was opened.
      if (bytesRead === 0) {
        throw new QansError("TRUNCATED", `${this.path}: ${what} ends early at offset ${position + done}`);
      }
      done += bytesRead;
    }
    return bytes;
  }

  async close(): Promise<void> {
    try {
      await this.handle.close();
    } catch (error) {
      throw asQansError(error, `closing ${this.path}`);
    }
  }
}

/** Opens `path`, runs `fn`, and closes the file whatever happens; errors come out as QansErrors. */
export async function withFile<T>(path: string, fn: (file: RandomAccessFile) => Promise<T>): Promise<T> {
  const file = await RandomAccessFile.open(path);
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
