import { QansError } from "./errors.js";
import { align64 } from "./format/bytes.js";
import { DEFAULT_LOG2_BLOCK, FILE_HEADER_SIZE, TRAILER_SIZE } from "./format/constants.js";
import { encodeFileHeader } from "./format/file-header.js";
import { encodeIndexFrame, indexEntryLength, indexFrameLength, type IndexEntry } from "./format/index-frame.js";
import { encodeMetadataFrame } from "./format/metadata-frame.js";
import type { ShardEntry } from "./format/set-metadata.js";
import { encodeTrailer } from "./format/trailer.js";
import type { ByteSink } from "./io/sink.js";
import type { TensorHeader } from "./format/tensor-header.js";
import { FrameAssembler, type EncodedFrame, type FrameLayout, type TensorEncoding } from "./tensor/frame-encode.js";
import { planWindowedFrame } from "./tensor/windowed-frame.js";
import type { ModelMetadata, TensorInput } from "./tensor/tensor.js";

export interface WriterOptions {
  /** log2 of the block size in symbols, 12..20; default 17. */
  log2Block?: number;
  /**
   * Writes a set file (spec §16.1): the file-header flag `SET` and these shards in the metadata.
   * A set file holds no tensors, so `addTensor` refuses.
   */
  shards?: readonly ShardEntry[];
  /** Symbols per stream that `addTensor` encodes and writes at a time (`planWindowedFrame`). */
  windowSymbols?: number;
}

/** What `QansWriter.finish` wrote. */
export interface WriteResult {
  /** The file's size. */
  bytes: number;
  tensors: number;
  /** The trailer's checksum field, which a set file records for each shard (spec §16.1). */
  trailerChecksum: number;
}

type EmitChunks = (chunks: Uint8Array[]) => Promise<void>;

/**
 * Writes a QANS file in one pass to a sequential sink: header and metadata first, each tensor as
 * it is added, the index and trailer last (spec §3). Nothing is ever seeked or rewritten.
 */
export class QansWriter {
  private position = 0;
  private readonly entries: IndexEntry[] = [];
  private readonly names = new Set<string>();
  private metadataLength = 0;
  private indexEntryBytes = 0;
  private state: "new" | "open" | "failed" | "finished" = "new";

  constructor(
    private readonly sink: ByteSink,
    private readonly options: WriterOptions = {},
  ) {}

  async begin(metadata: ModelMetadata): Promise<void> {
    if (this.state !== "new") throw new QansError("INVALID_ARGUMENT", "writer: begin() was already called");
    const shards = this.options.shards;
    const metadataFrame = encodeMetadataFrame(metadata, shards);
    this.metadataLength = metadataFrame.length;
    await this.emit(encodeFileHeader({ set: shards !== undefined }));
    await this.emit(metadataFrame);
    this.state = "open";
  }

  /**
   * Encodes and writes a tensor, each window of blocks as soon as it is encoded
   * (`planWindowedFrame`), so the frame is never held whole: memory is the tensor plus a constant,
   * or only a constant for a tensor read on demand (a `TensorReader`, read twice). `tensor.data`
   * must not change until the promise settles.
   */
  async addTensor(tensor: TensorInput, encoding: TensorEncoding): Promise<IndexEntry> {
    this.checkCanAdd(tensor.name);
    const plan = await planWindowedFrame(tensor, encoding, this.log2Block, { windowSymbols: this.options.windowSymbols });
    const frame = new FrameAssembler(plan.header, plan.headerBytes, plan.blocks);
    const write = async (emit: EmitChunks) => {
      await emit([plan.headerBytes]);
      for await (const blocks of plan.windows()) await emit(frame.place(blocks));
    };
    return this.writeFrame(plan.header, write, () => frame.layout());
  }

  /** Writes a frame made by `encodeTensorFrame`, for callers that pick among candidate encodings. */
  async addFrame(frame: EncodedFrame): Promise<IndexEntry> {
    this.checkCanAdd(frame.header.name);
    return this.writeFrame(frame.header, (emit) => emit(frame.chunks), () => frame);
  }

  private checkCanAdd(name: string): void {
    if (this.state === "failed") throw new QansError("INVALID_ARGUMENT", "writer: a tensor failed midway, so the file is incomplete");
    if (this.state !== "open") throw new QansError("INVALID_ARGUMENT", "writer: addTensor() needs begin() first and no finish()");
    if (this.options.shards) throw new QansError("INVALID_ARGUMENT", "writer: a set file holds no tensors; they go in its shards");
    if (this.names.has(name)) throw new QansError("DUPLICATE_NAME", `writer: tensor "${name}" was already added`);
  }

  /**
   * Writes one frame at the next aligned offset: `write` hands its chunks to `emit` in order, and
   * `layout` then gives the lengths for its index entry. A failure once bytes of the frame went out
   * leaves the writer failed, since the file then holds part of a frame.
   */
  private async writeFrame(header: TensorHeader, write: (emit: EmitChunks) => Promise<void>, layout: () => FrameLayout): Promise<IndexEntry> {
    await this.pad();
    const frameOffset = this.position;
    try {
      await write(async (chunks) => {
        for (const chunk of chunks) await this.emit(chunk);
      });
    } catch (error) {
      if (this.position > frameOffset) this.state = "failed";
      throw error;
    }
    const { headerLength, frameLength, payloadLengths } = layout();
    const entry: IndexEntry = { ...header, frameOffset, headerLength, frameLength, payloadLengths };
    this.names.add(entry.name);
    this.entries.push(entry);
    this.indexEntryBytes += indexEntryLength(entry);
    return entry;
  }

  /**
   * The size the file would have if `frame` were added and the file then finished: what a writer
   * of shards compares with its maximum before adding a frame (spec §16.3).
   */
  sizeWith(frame: EncodedFrame): number {
    const frameEnd = align64(Math.max(this.position, FILE_HEADER_SIZE)) + frame.frameLength;
    const entryBytes = indexEntryLength({ name: frame.header.name, shape: frame.header.shape, payloadLengths: frame.payloadLengths });
    return align64(frameEnd) + indexFrameLength(this.indexEntryBytes + entryBytes) + TRAILER_SIZE;
  }

  /** Writes the index and trailer; the caller then commits or closes the sink. */
  async finish(): Promise<WriteResult> {
    if (this.state !== "open") throw new QansError("INVALID_ARGUMENT", "writer: finish() needs begin() first, once");
    await this.pad();
    const indexOffset = this.position;
    const index = encodeIndexFrame({ metadataLength: this.metadataLength, entries: this.entries, set: this.options.shards !== undefined });
    await this.emit(index);
    const trailer = encodeTrailer(indexOffset, index.length);
    await this.emit(trailer);
    this.state = "finished";
    const trailerChecksum = new DataView(trailer.buffer, trailer.byteOffset, trailer.byteLength).getUint32(28, true);
    return { bytes: this.position, tensors: this.entries.length, trailerChecksum };
  }

  get log2Block(): number {
    return this.options.log2Block ?? DEFAULT_LOG2_BLOCK;
  }

  get tensorCount(): number {
    return this.entries.length;
  }

  private async pad(): Promise<void> {
    const target = align64(Math.max(this.position, FILE_HEADER_SIZE));
    if (target > this.position) await this.emit(new Uint8Array(target - this.position));
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    await this.sink.write(bytes);
    this.position += bytes.length;
  }
}
