import { open, type FileHandle } from "node:fs/promises";
import { QansError, asQansError } from "../errors.js";

/** Random-access bytes: a buffer, a file, or (later) a URL. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws TRUNCATED when the range passes the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function checkRange(source: ByteSource, offset: number, length: number, name: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new QansError("INVALID_ARGUMENT", `${name}: invalid read of ${length} bytes at ${offset}`);
  }
  if (offset + length > source.size) {
    throw new QansError("TRUNCATED", `${name}: ${length} bytes at ${offset} run past the end (${source.size} bytes)`);
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
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length, this.name);
    return this.bytes.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}

/** A local file read with positional reads only: the file is never read whole. */
export class FileSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly name: string,
  ) {}

  static async open(path: string): Promise<FileSource> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, "r");
      const stat = await handle.stat();
      if (!stat.isFile()) throw new QansError("BAD_INPUT", `${path}: not a regular file`);
      return new FileSource(handle, stat.size, path);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      throw asQansError(error, path);
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length, this.name);
    const out = new Uint8Array(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new QansError("TRUNCATED", `${this.name}: file shrank while reading ${length} bytes at ${offset}`);
        done += bytesRead;
      }
    } catch (error) {
      throw asQansError(error, this.name);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}
