import { randomBytes } from "node:crypto";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { asQansError, QansError } from "./errors.js";
import { encodeSafetensorsHeader, writeSafetensors, type SafetensorsHeaderEntry } from "./export/safetensors.js";
import { AtomicFileSink } from "./io/atomic-file.js";
import type { ChunkForwardReader, ChunkSource } from "./io/chunk-reader.js";
import { openModel } from "./model-set.js";
import { decodeStream } from "./stream-decoder.js";
import { dtypeSize } from "./tensor/dtype.js";

/** Where unpacked safetensors go: a path (written atomically) or a writable stream such as stdout. */
export type UnpackOutput = string | NodeJS.WritableStream;

/**
 * Writes a model's tensors to safetensors, one tensor in memory at a time: bit-exact for lossless
 * encodings, dequantised to the original dtype for int-quant. Metadata passes through. `input` is a
 * QANS file or the set file of a sharded model (every shard is read), at a path or an http(s) URL.
 */
export async function unpackToSafetensors(input: string, output: UnpackOutput): Promise<{ tensors: number; bytes: number }> {
  const reader = await openModel(input);
  try {
    const { metadata } = await reader.metadata();
    const all = await reader.tensorEntries();
    const layout = all.map((entry) => ({ name: entry.name, dtype: entry.dtype, shape: entry.shape }));
    const bytes = all.reduce((sum, entry) => sum + entry.elements * dtypeSize(entry.dtype), 0);
    if (typeof output === "string") {
      await writeSafetensors(output, reader.tensors(), metadata, layout);
    } else {
      const entries = all.map((entry) => ({ name: entry.name, dtype: entry.dtype, shape: entry.shape, byteLength: entry.elements * dtypeSize(entry.dtype) }));
      await writeToStream(output, encodeSafetensorsHeader(entries, metadata));
      for await (const tensor of reader.tensors()) await writeToStream(output, tensor.data);
    }
    return { tensors: layout.length, bytes };
  } finally {
    await reader.close();
  }
}

export interface StreamUnpackOptions {
  /** Directory of the spool file; by default beside a file output, else the system's temporary directory. */
  spoolDirectory?: string;
}

/**
 * As `unpackToSafetensors`, for a QANS file read front to back from chunks of unknown length
 * (stdin, a pipe) with the streaming decoder. A safetensors header lists every tensor before any
 * data, and a stream names its tensors only as their frames arrive, so each tensor's bytes go to a
 * spool file as soon as it is decoded; once the whole input has been verified (index and trailer
 * included), the header and then the spooled bytes are written to the output, which for a path is
 * written atomically: an invalid or cut-short input never leaves an output behind. Memory holds one
 * tensor; disk holds the tensors' bytes twice until the spool is removed.
 */
export async function unpackStreamToSafetensors(
  input: ChunkSource | ReadableStream<Uint8Array> | ChunkForwardReader,
  output: UnpackOutput,
  options: StreamUnpackOptions = {},
): Promise<{ tensors: number; bytes: number }> {
  const directory = options.spoolDirectory ?? (typeof output === "string" ? dirname(resolve(output)) : tmpdir());
  const spool = await Spool.create(directory, typeof output === "string" ? basename(output) : "stdout");
  try {
    let metadata: Record<string, string> = {};
    const layout: SafetensorsHeaderEntry[] = [];
    let complete = false;
    for await (const event of decodeStream(input, { output: "tensor" })) {
      if (event.type === "start" && event.set) {
        throw new QansError("INVALID_ARGUMENT", "the input is a set file, whose tensors are in its shard files: unpack it by its path or URL, so that the shards beside it are found");
      }
      if (event.type === "start") metadata = event.metadata.metadata;
      if (event.type === "tensor") {
        const { name, dtype, shape, data } = event.tensor!;
        layout.push({ name, dtype, shape, byteLength: data.byteLength });
        await spool.write(data);
      }
      if (event.type === "end") complete = true;
    }
    if (!complete) throw new QansError("TRUNCATED", "the input ended before the trailer");
    const header = encodeSafetensorsHeader(layout, metadata);
    if (typeof output === "string") {
      const sink = await AtomicFileSink.create(output);
      try {
        await sink.write(header);
        for await (const piece of spool.pieces()) await sink.write(piece);
        await sink.commit();
      } catch (error) {
        await sink.abort().catch(() => undefined);
        throw asQansError(error, `writing ${output}`);
      }
    } else {
      await writeToStream(output, header);
      for await (const piece of spool.pieces()) await writeToStream(output, piece);
    }
    return { tensors: layout.length, bytes: spool.size };
  } finally {
    await spool.dispose();
  }
}

/** Writes to a Node writable stream and waits until it has taken the bytes; failures are IO_ERROR. */
function writeToStream(stream: NodeJS.WritableStream, bytes: Uint8Array): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const fail = (error: unknown) => {
      stream.removeListener("error", fail);
      reject(asQansError(error, "writing the output"));
    };
    // Without a listener, a failed write (a closed pipe) would be an uncaught error event.
    stream.once("error", fail);
    stream.write(bytes, (error) => {
      stream.removeListener("error", fail);
      if (error) reject(asQansError(error, "writing the output"));
      else resolvePromise();
    });
  });
}

/** How much of the spool one piece holds when it is copied out. */
const SPOOL_PIECE = 4 << 20;

/**
 * A temporary file that tensor bytes are appended to and later read back in order. On systems that
 * allow it, the file is unlinked as soon as it is open, so nothing is left behind even if the
 * process is killed.
 */
class Spool {
  private written = 0;
  private linked: boolean;

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
  ) {
    this.linked = true;
  }

  static async create(directory: string, name: string): Promise<Spool> {
    const path = join(directory, `.${name}.qans-spool-${process.pid}-${randomBytes(8).toString("hex")}`);
    let handle: FileHandle;
    try {
      handle = await open(path, "wx+");
    } catch (error) {
      throw asQansError(error, `cannot create a spool file in ${directory}`);
    }
    const spool = new Spool(path, handle);
    try {
      await unlink(path);
      spool.linked = false;
    } catch {
      // Some systems refuse to remove an open file; dispose() removes it.
    }
    return spool;
  }

  get size(): number {
    return this.written;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.byteLength) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, this.written + done);
        done += bytesWritten;
      }
    } catch (error) {
      throw asQansError(error, `writing the spool file ${this.path}`);
    }
    this.written += bytes.byteLength;
  }

  /** The spooled bytes in order, in new buffers of at most SPOOL_PIECE bytes. */
  async *pieces(): AsyncGenerator<Uint8Array> {
    for (let offset = 0; offset < this.written; ) {
      const piece = new Uint8Array(Math.min(SPOOL_PIECE, this.written - offset));
      let done = 0;
      while (done < piece.length) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await this.handle.read(piece, done, piece.length - done, offset + done));
        } catch (error) {
          throw asQansError(error, `reading the spool file ${this.path}`);
        }
        if (bytesRead === 0) throw new QansError("IO_ERROR", `the spool file ${this.path} ended early at ${offset + done} bytes`);
        done += bytesRead;
      }
      offset += piece.length;
      yield piece;
    }
  }

  async dispose(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    if (this.linked) await unlink(this.path).catch(() => undefined);
  }
}
