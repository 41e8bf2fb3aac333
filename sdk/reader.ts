import { QansError } from "./errors.js";
import { FILE_HEADER_SIZE, TRAILER_SIZE } from "./format/constants.js";
import { isMagicPrefix } from "./format/file-header.js";
import { decodeIndexFrame, type FileIndex, type IndexEntry } from "./format/index-frame.js";
import { decodeMetadataFrame, type FileMetadata } from "./format/metadata-frame.js";
import type { TensorHeader } from "./format/tensor-header.js";
import { decodeTrailer, type Trailer } from "./format/trailer.js";
import { openSource } from "./io/open-source.js";
import { describe, type ByteSource } from "./io/source.js";
import { decodeFrameStreams } from "./tensor/frame-decode.js";
import { reconstructFloat32, reconstructTensor } from "./tensor/reconstruct.js";
import type { TensorData } from "./tensor/tensor.js";

/** Selects tensors by name: a prefix such as "model.layers.7.", a RegExp, or a predicate. */
export type TensorSelector = string | RegExp | ((name: string) => boolean);

/** The test a selector makes of a tensor name; INVALID_ARGUMENT for anything but the three kinds. */
export function nameMatcher(selector: TensorSelector): (name: string) => boolean {
  if (typeof selector === "string") return (name) => name.startsWith(selector);
  if (selector instanceof RegExp) {
    // Without the g and y flags, so that test() keeps no state between names.
    const pattern = new RegExp(selector.source, selector.flags.replace(/[gy]/g, ""));
    return (name) => pattern.test(name);
  }
  if (typeof selector === "function") return (name) => selector(name);
  throw new QansError("INVALID_ARGUMENT", `a tensor selector is a prefix string, a RegExp or a function, not ${typeof selector}`);
}

/** `readMatching`'s batch size, checked. */
export function batchBytesOf(options: { batchBytes?: number }): number {
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  if (!(batchBytes > 0)) throw new QansError("INVALID_ARGUMENT", `batchBytes ${batchBytes} is not positive`);
  return batchBytes;
}

function frameWhat(entry: IndexEntry): string {
  return `tensor "${entry.name}" frame`;
}

const DEFAULT_BATCH_BYTES = 256 * 1024 * 1024;

/** How much of the file's end `open` reads first, hoping to get the trailer and index at once. */
const TAIL_READ = 64 * 1024;

export interface DecodedStreams {
  header: TensorHeader;
  streams: Uint8Array[];
}

/** One tensor's frame as stored: its index entry, its bytes, and the size of the file holding it. */
export interface TensorFrameBytes {
  entry: IndexEntry;
  frame: Uint8Array;
  fileSize: number;
}

/**
 * Reads a model, whether it is one QANS file (`QansReader`) or a set of shards (`QansModelSet`,
 * spec §16): `openModel` opens either. Tensors are named and ordered as in the model: a set's in
 * shard order. A tensor's index entry is the one in the file that holds it, so its offsets are
 * offsets in that file.
 */
export interface ModelReader {
  /** Every tensor's name, in model order; known as soon as the model is open. */
  readonly names: readonly string[];
  /** The index entry of one tensor (NOT_FOUND if there is none); a set opens the shard that holds it. */
  tensorEntry(name: string): Promise<IndexEntry>;
  /** The index entries of every tensor in model order; a set opens every shard. */
  tensorEntries(): Promise<IndexEntry[]>;
  /** The model's metadata frame (a set's: its own, with `shards`). */
  metadata(): Promise<FileMetadata>;
  readStreams(name: string, into?: Uint8Array[]): Promise<DecodedStreams>;
  /** The tensor's frame bytes as the file holds them, unchecked (decodeFrameStreams checks them). */
  readFrame(name: string): Promise<TensorFrameBytes>;
  readTensor(name: string): Promise<TensorData>;
  readFloat32(name: string): Promise<Float32Array>;
  readMatching(selector: TensorSelector, options?: { batchBytes?: number }): AsyncGenerator<TensorData>;
  tensors(): AsyncGenerator<TensorData>;
  close(): Promise<void>;
}

export interface ReaderOpenOptions {
  /**
   * Called with the trailer once its own checks passed, before the index is read; what it throws,
   * `open` throws. A set uses it to check a shard's trailer checksum in the order of spec §16.2.
   */
  onTrailer?: (trailer: Trailer) => void;
}

/**
 * Random access to a QANS file: `open` reads the trailer and index (one read, or two when the index
 * is larger than 64 KiB); each tensor read then fetches only that tensor's frame.
 */
export class QansReader implements ModelReader {
  private readonly byName: Map<string, IndexEntry>;
  private nameList: string[] | undefined;

  private constructor(
    readonly source: ByteSource,
    readonly trailer: Trailer,
    readonly index: FileIndex,
  ) {
    this.byName = new Map(index.entries.map((entry) => [entry.name, entry]));
  }

  static async open(source: ByteSource, options: ReaderOpenOptions = {}): Promise<QansReader> {
    const size = source.size;
    const tailLength = Math.min(size, TAIL_READ);
    const tail = await source.read(size - tailLength, tailLength, "end of file");
    const startsWithMagic = async (): Promise<boolean> =>
      isMagicPrefix(size === tailLength ? tail : await source.read(0, Math.min(8, size), "file magic"));
    const trailer = await decodeTrailer(tail.subarray(Math.max(0, tailLength - TRAILER_SIZE)), size, startsWithMagic);
    options.onTrailer?.(trailer);
    const tailStart = size - tailLength;
    const indexBytes =
      trailer.indexOffset >= tailStart
        ? tail.subarray(trailer.indexOffset - tailStart, trailer.indexOffset - tailStart + trailer.indexLength)
        : await source.read(trailer.indexOffset, trailer.indexLength, "index frame");
    return new QansReader(source, trailer, decodeIndexFrame(indexBytes, trailer));
  }

  /**
   * Opens a local file, or an http:// or https:// URL read with range requests. A set file opens
   * as the QANS file it is, with no tensors; `openModel` opens a set as its model.
   */
  static async openLocation(location: string): Promise<QansReader> {
    const source = await openSource(location);
    try {
      return await QansReader.open(source);
    } catch (error) {
      await source.close().catch(() => undefined);
      throw error;
    }
  }

  get entries(): readonly IndexEntry[] {
    return this.index.entries;
  }

  entry(name: string): IndexEntry {
    const entry = this.byName.get(name);
    if (!entry) throw new QansError("NOT_FOUND", `no tensor named "${name}" in ${describe(this.source)}`);
    return entry;
  }

  get names(): readonly string[] {
    return (this.nameList ??= this.index.entries.map((entry) => entry.name));
  }

  /** As `entry`, for the `ModelReader` interface. */
  async tensorEntry(name: string): Promise<IndexEntry> {
    return this.entry(name);
  }

  /** As `entries`, for the `ModelReader` interface. */
  async tensorEntries(): Promise<IndexEntry[]> {
    return [...this.index.entries];
  }

  /**
   * The metadata frame. Its `shards` member, in a set file, is checked as spec §16.1 says, but not
   * against the file-header flag, which this reader does not read.
   */
  async metadata(): Promise<FileMetadata> {
    const frame = await this.source.read(FILE_HEADER_SIZE, this.index.metadataLength, "metadata frame");
    return decodeMetadataFrame(frame, FILE_HEADER_SIZE);
  }

  /**
   * Decodes the symbol streams of one tensor, reading only its frame. On the native codec a large
   * tensor's blocks are decoded on the addon's thread pool (`QANS_THREADS`), off this thread.
   * `into`, when given, receives the streams: one buffer per stream, each of exactly the stream's
   * symbol count (INVALID_ARGUMENT otherwise); an engine that loads tensors of the same shape into
   * the same memory passes it to avoid a new tensor-sized buffer per call.
   */
  async readStreams(name: string, into?: Uint8Array[]): Promise<DecodedStreams> {
    const entry = this.entry(name);
    const frame = await this.source.read(entry.frameOffset, entry.frameLength, frameWhat(entry));
    const { header, streams } = await decodeFrameStreams(frame, entry.frameOffset, this.source.size, entry, into);
    return { header, streams };
  }

  async readFrame(name: string): Promise<TensorFrameBytes> {
    const entry = this.entry(name);
    return { entry, frame: await this.source.read(entry.frameOffset, entry.frameLength, frameWhat(entry)), fileSize: this.source.size };
  }

  /**
   * The tensors whose names `selector` matches (a prefix such as "model.layers.7.", a RegExp or a
   * predicate), in file order, as `readTensor` gives them. Their frames are fetched in batches of
   * up to `batchBytes` (default 256 MiB; a larger frame is a batch of its own) with the source's
   * `readRanges` when it has one, so over HTTP a layer costs a few coalesced requests rather than
   * one per tensor; memory holds one batch.
   */
  async *readMatching(selector: TensorSelector, options: { batchBytes?: number } = {}): AsyncGenerator<TensorData> {
    const batchBytes = batchBytesOf(options);
    const matches = nameMatcher(selector);
    const entries = this.index.entries.filter((entry) => matches(entry.name));
    for (let start = 0; start < entries.length; ) {
      let end = start + 1;
      let bytes = entries[start].frameLength;
      while (end < entries.length && bytes + entries[end].frameLength <= batchBytes) bytes += entries[end++].frameLength;
      const batch = entries.slice(start, end);
      const ranges = batch.map((entry) => ({ offset: entry.frameOffset, length: entry.frameLength, what: frameWhat(entry) }));
      const frames = this.source.readRanges
        ? await this.source.readRanges(ranges)
        : await Promise.all(ranges.map(({ offset, length, what }) => this.source.read(offset, length, what)));
      for (const [i, entry] of batch.entries()) {
        const { header, streams } = await decodeFrameStreams(frames[i], entry.frameOffset, this.source.size, entry);
        frames[i] = new Uint8Array(0);
        yield reconstructTensor(header, streams);
      }
      start = end;
    }
  }

  /** The tensor in its original dtype: bit-exact for lossless encodings, dequantised for int-quant. */
  async readTensor(name: string): Promise<TensorData> {
    const { header, streams } = await this.readStreams(name);
    return reconstructTensor(header, streams);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const { header, streams } = await this.readStreams(name);
    return reconstructFloat32(header, streams);
  }

  async *tensors(): AsyncGenerator<TensorData> {
    for (const entry of this.index.entries) yield await this.readTensor(entry.name);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

