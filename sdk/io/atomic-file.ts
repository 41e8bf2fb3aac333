import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { asQansError, QansError } from "../errors.js";

/** Directory fsync is unsupported on some platforms and file systems; those codes mean "cannot". */
const DIR_SYNC_UNSUPPORTED = new Set(["EINVAL", "EISDIR", "EPERM"]);

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null ? (error as { code?: string }).code : undefined;
}

/**
 * Writes a file so that readers see either the old contents or the complete new contents, never a
 * prefix: bytes go to a temporary file in the destination's directory (so the rename stays on one
 * file system) and `commit()` renames it over the destination.
 */
export class AtomicFileSink {
  private written = 0;
  private state: "open" | "failed" | "done" = "open";

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<AtomicFileSink> {
    const target = resolve(path);
    const tempPath = join(dirname(target), `.${basename(target)}.qans-tmp-${process.pid}-${randomBytes(8).toString("hex")}`);
    try {
      // "wx" so that a stale file of the same name is never silently reused.
      return new AtomicFileSink(target, tempPath, await open(tempPath, "wx"));
    } catch (error) {
      throw asQansError(error, `cannot create a temporary file for ${path}`);
    }
  }

  get bytesWritten(): number {
    return this.written;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) throw new QansError("INVALID_ARGUMENT", `${this.path}: write expects a Uint8Array`);
    this.checkOpen("write");
    // The position is claimed before awaiting, so overlapping calls still land in call order.
    const position = this.written;
    this.written += bytes.byteLength;
    let done = 0;
    try {
      while (done < bytes.byteLength) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, position + done);
        done += bytesWritten;
      }
    } catch (error) {
      this.state = "failed";
      throw asQansError(error, `writing ${this.path} at offset ${position + done}`);
    }
  }

  /** Flushes, closes and renames the temporary file over the destination. */
  async commit(): Promise<void> {
    this.checkOpen("commit");
    this.state = "done";
    try {
      await this.handle.sync();
      await this.handle.close();
      await rename(this.tempPath, this.path);
    } catch (error) {
      await this.cleanUp();
      throw asQansError(error, `committing ${this.path}`);
    }
    await syncDirectory(dirname(this.path));
  }

  /** Discards the temporary file. Safe to call more than once and after a failed write. */
  async abort(): Promise<void> {
    if (this.state === "done") return;
    this.state = "done";
    await this.cleanUp();
  }

  private async cleanUp(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    try {
      await unlink(this.tempPath);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw asQansError(error, `removing ${this.tempPath}`);
    }
  }

  private checkOpen(operation: string): void {
    if (this.state === "open") return;
    throw new QansError(
      "INVALID_ARGUMENT",
      `${this.path}: cannot ${operation}, the file was already ${this.state === "failed" ? "broken by a failed write" : "committed or aborted"}`,
    );
  }
}

/** Makes the rename durable; without this a crash can forget the new directory entry. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(directory, "r");
    await handle.sync();
  } catch (error) {
    if (!DIR_SYNC_UNSUPPORTED.has(errorCode(error) ?? "")) throw asQansError(error, `syncing directory ${directory}`);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Atomically replaces `path` with `data`, a byte array or a (possibly async) sequence of chunks. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  const iterable = typeof data === "object" && data !== null && (Symbol.iterator in data || Symbol.asyncIterator in data);
  if (!(data instanceof Uint8Array) && !iterable) {
    throw new QansError("INVALID_ARGUMENT", `writing ${path}: data must be a Uint8Array or an iterable of them`);
  }
  const sink = await AtomicFileSink.create(path);
  try {
    if (data instanceof Uint8Array) await sink.write(data);
    else for await (const chunk of data) await sink.write(chunk);
    await sink.commit();
  } catch (error) {
    await sink.abort().catch(() => undefined);
    throw asQansError(error, `writing ${path}`);
  }
}
