import { serializedTableSize } from "./codec/freq-table.js";
import { entropyBits } from "./codec/histogram.js";
import { kernels } from "./codec/kernels.js";
import { ransStateBytes } from "./codec/rans.js";
import { align64 } from "./format/bytes.js";
import { FILE_HEADER_SIZE, zeroBlockModeCounts, type BlockModeCounts } from "./format/constants.js";
import { decodeFileHeader, type FormatVersion } from "./format/file-header.js";
import { indexEntryLength, type IndexEntry } from "./format/index-frame.js";
import { decodeMetadataFrame, metadataFrameLength, type FileMetadata } from "./format/metadata-frame.js";
import type { TensorHeader } from "./format/tensor-header.js";
import type { Trailer } from "./format/trailer.js";
import { QansError } from "./errors.js";
import { SourceForwardReader } from "./io/forward-reader.js";
import { openSource } from "./io/open-source.js";
import { shardOpener, type ShardOpener } from "./io/shard-location.js";
import type { ByteSource } from "./io/source.js";
import { checkShardNames } from "./model-set.js";
import { QansReader } from "./reader.js";
import type { ChunkForwardReader, ChunkSource } from "./io/chunk-reader.js";
import { decodeStream, type StreamStartEvent } from "./stream-decoder.js";
import { decodeTensorFrame, type DecodedBlock, type FrameCallbacks } from "./tensor/frame-decode.js";

export interface StreamReport {
  width: number;
  /** Probability scale of the stream's table, or null when it has none. */
  precision: number | null;
  symbols: number;
  /** Order-0 entropy of the stream's symbols, in bits. */
  entropyBits: number;
  /** Payload bytes of the stream's blocks. */
  payloadBytes: number;
  /** The rANS final states within those payloads: 4 bytes per lane of each RANS block. */
  stateBytes: number;
  /** Serialised size of the stream's frequency table in the tensor header (0 without one). */
  tableBytes: number;
  blockModes: BlockModeCounts;
}

export interface TensorReport {
  name: string;
  dtype: string;
  shape: number[];
  encoding: string;
  elements: number;
  /** Every byte attributable to the tensor: frame, its alignment padding and its index entry. */
  storedBytes: number;
  /** Quantisation parameters (deltas, zero points, input scales) inside the header. */
  paramBytes: number;
  /** Index entry bytes. */
  indexBytes: number;
  streams: StreamReport[];
  quant?: { bits: number; asymmetric: boolean; groupSize: number; scaleType: string; inputScale: boolean };
}

export interface FileReport {
  version: FormatVersion;
  /** The file's size; for a set, the set file's and every shard's together. */
  fileBytes: number;
  /** The metadata frame; a set file's has `shards`. */
  metadata: FileMetadata;
  /** Every tensor in model order; for a set, those of every shard. */
  tensors: TensorReport[];
  /** For a set verified with its shards: each shard file and its size. */
  shards?: { file: string; bytes: number }[];
}

/**
 * Checks a whole file: header, metadata, trailer, index, then every tensor frame front to back,
 * decoding every block (so rANS end-state checks run) and every padding byte. A set file is
 * checked as the file it is (flag, `shards` member, no tensors), without its shards: see
 * `verifyModel`.
 */
export async function verifySource(source: ByteSource, onProgress?: (done: number, total: number) => void): Promise<FileReport> {
  return (await verifyFile(source, onProgress)).report;
}

async function verifyFile(source: ByteSource, onProgress?: (done: number, total: number) => void): Promise<{ report: FileReport; trailer: Trailer }> {
  const { version, set } = decodeFileHeader(await source.read(0, Math.min(source.size, FILE_HEADER_SIZE), "file header"));
  const reader = new SourceForwardReader(source, FILE_HEADER_SIZE);
  const prefix = await reader.read(FILE_HEADER_SIZE, 8, "metadata frame");
  const metadataLength = metadataFrameLength(prefix, FILE_HEADER_SIZE);
  const metadataBytes = await source.read(FILE_HEADER_SIZE, metadataLength, "metadata frame");
  const metadata = decodeMetadataFrame(metadataBytes, FILE_HEADER_SIZE, { set });
  await reader.read(FILE_HEADER_SIZE + 8, metadataLength - 8, "metadata frame");

  const random = await QansReader.open(source);
  const { trailer, index } = random;
  if (trailer.major !== version.major || trailer.minor !== version.minor) {
    throw new QansError("INDEX_MISMATCH", `trailer version ${trailer.major}.${trailer.minor} differs from the header's ${version.major}.${version.minor}`);
  }
  if (index.metadataLength !== metadataLength) {
    throw new QansError("INDEX_MISMATCH", `index says the metadata frame has ${index.metadataLength} bytes, it has ${metadataLength}`);
  }
  if (index.set !== set) {
    throw new QansError("INDEX_MISMATCH", `index flag SET is ${index.set ? "set" : "clear"}, the file header's is ${set ? "set" : "clear"}`);
  }
  if (set && index.entries.length > 0) {
    throw new QansError("BAD_METADATA", `index: a set file (flag SET) holds no tensors, this one lists ${index.entries.length}`);
  }
  const tensors: TensorReport[] = [];
  for (const entry of index.entries) {
    tensors.push(await verifyTensor(reader, entry, source.size));
    onProgress?.(entry.frameOffset + entry.frameLength, source.size);
  }
  // Reading zero bytes at the index checks the padding before it.
  await reader.read(trailer.indexOffset, 0, "index");
  return { report: { version, fileBytes: source.size, metadata, tensors }, trailer };
}

/**
 * Checks a model at a path or an http(s) URL, whether one QANS file (as `verifySource`) or a set
 * (spec §16.2): the set file, then every shard as a whole file, then for each shard in set order
 * that its length and trailer checksum are the ones the set file recorded and that its index lists
 * the set's names for it, in order (INDEX_MISMATCH). A missing shard is IO_ERROR. Progress counts
 * the bytes of all the files.
 */
export async function verifyModel(location: string, onProgress?: (done: number, total: number) => void): Promise<FileReport> {
  const source = await openSource(location);
  try {
    return await verifyModelSource(source, shardOpener(location), onProgress);
  } finally {
    await source.close().catch(() => undefined);
  }
}

/**
 * As `verifyModel`, for a source that is already open; a set's shards are opened with
 * `openShard` (without it a set file is refused with INVALID_ARGUMENT). The caller closes `source`.
 */
export async function verifyModelSource(source: ByteSource, openShard?: ShardOpener, onProgress?: (done: number, total: number) => void): Promise<FileReport> {
  const { report } = await verifyFile(source, onProgress);
  const shards = report.metadata.shards;
  if (!shards) return report;
  if (!openShard) throw new QansError("INVALID_ARGUMENT", "this is a set file: its shards are found from its location, so verify it with verifyModel(location)");
  const total = shards.reduce((sum, shard) => sum + shard.bytes, source.size);
  let done = source.size;
  const tensors: TensorReport[] = [];
  const found: { size: number; checksum: number; names: { name: string }[] }[] = [];
  for (const shard of shards) {
    const shardSource = await openShard(shard.file);
    try {
      const start = done;
      const { report: shardReport, trailer } = await verifyFile(shardSource, (at) => onProgress?.(start + at, total));
      found.push({ size: shardSource.size, checksum: trailer.checksum, names: shardReport.tensors });
      tensors.push(...shardReport.tensors);
      done += shardSource.size;
      onProgress?.(done, total);
    } finally {
      await shardSource.close().catch(() => undefined);
    }
  }
  shards.forEach((shard, s) => {
    const where = `shard ${s + 1} (${shard.file})`;
    const { size, checksum, names } = found[s];
    if (size !== shard.bytes) throw new QansError("INDEX_MISMATCH", `${where}: the file has ${size} bytes, the set file says ${shard.bytes}`);
    if (checksum !== shard.trailer_crc32c) {
      throw new QansError("INDEX_MISMATCH", `${where}: trailer checksum ${checksum}, the set file says ${shard.trailer_crc32c}`);
    }
    checkShardNames(names, shard, where);
  });
  return {
    version: report.version,
    fileBytes: done,
    metadata: report.metadata,
    tensors,
    shards: shards.map((shard, s) => ({ file: shard.file, bytes: found[s].size })),
  };
}

async function verifyTensor(reader: SourceForwardReader, entry: IndexEntry, fileSize: number): Promise<TensorReport> {
  const builder = new TensorReportBuilder();
  await decodeTensorFrame(reader, entry.frameOffset, fileSize, entry, builder);
  return builder.finish(entry);
}

/** What a tensor report needs besides the frame's header and blocks: its index entry's fields. */
export type TensorPlacement = Pick<IndexEntry, "name" | "dtype" | "shape" | "encoding" | "elements" | "frameOffset" | "frameLength" | "payloadLengths">;

/**
 * Builds one tensor's report while its frame is decoded: give it the header and every decoded
 * block (it is a FrameCallbacks), then its placement. The full verifier and the streaming verifier
 * both build their reports with it. Only counts are kept, never the header itself.
 */
export class TensorReportBuilder implements FrameCallbacks {
  private streams: StreamReport[] = [];
  private counts: Float64Array[] = [];
  private paramBytes = 0;
  private quant: TensorReport["quant"];

  onHeader(header: TensorHeader): void {
    this.counts = header.streams.map((stream) => new Float64Array(2 ** stream.width));
    this.streams = header.streams.map((stream) => ({
      width: stream.width,
      precision: stream.table?.k ?? null,
      symbols: 0,
      entropyBits: 0,
      payloadBytes: 0,
      stateBytes: 0,
      tableBytes: stream.table ? serializedTableSize(stream.table.freqs, stream.width) : 0,
      blockModes: zeroBlockModeCounts(),
    }));
    this.paramBytes = quantParamBytes(header);
    const q = header.quant;
    this.quant = q ? { bits: q.bits, asymmetric: q.asymmetric, groupSize: q.groupSize, scaleType: q.scaleType, inputScale: !!q.inputScale } : undefined;
  }

  onBlock(block: DecodedBlock): void {
    kernels().addHistogram(this.counts[block.stream], block.symbols);
    const stream = this.streams[block.stream];
    stream.blockModes[block.mode]++;
    if (block.mode === "RANS") stream.stateBytes += ransStateBytes(block.lanes);
  }

  /** The report, once every block has been given; `placement` is the index entry or its equivalent. */
  finish(placement: TensorPlacement): TensorReport {
    const streams = this.streams;
    placement.payloadLengths.forEach((length, i) => {
      streams[i % streams.length].payloadBytes += length;
    });
    streams.forEach((stream, s) => {
      stream.symbols = this.counts[s].reduce((sum, c) => sum + c, 0);
      stream.entropyBits = entropyBits(this.counts[s]);
    });
    const indexBytes = indexEntryLength(placement);
    const report: TensorReport = {
      name: placement.name,
      dtype: placement.dtype,
      shape: placement.shape,
      encoding: placement.encoding,
      elements: placement.elements,
      storedBytes: align64(placement.frameOffset + placement.frameLength) - placement.frameOffset + indexBytes,
      paramBytes: this.paramBytes,
      indexBytes,
      streams,
    };
    if (this.quant) report.quant = this.quant;
    return report;
  }
}

/**
 * As `verifySource`, for a file read front to back from chunks of unknown total length (stdin, a
 * pipe, a `fetch` body) with the streaming decoder: every check runs, in file order, and the index
 * and trailer are checked against the frames read. Memory holds one block at a time.
 */
export async function verifyStream(input: ChunkSource | ReadableStream<Uint8Array> | ChunkForwardReader, onProgress?: (bytesRead: number) => void): Promise<FileReport> {
  let start: StreamStartEvent | undefined;
  const tensors: TensorReport[] = [];
  let builder = new TensorReportBuilder();
  for await (const event of decodeStream(input, { blocks: true, onProgress })) {
    switch (event.type) {
      case "start":
        start = event;
        break;
      case "tensor-start":
        builder = new TensorReportBuilder();
        builder.onHeader(event.header);
        break;
      case "block":
        builder.onBlock(event.block);
        break;
      case "tensor-end":
        tensors.push(builder.finish({ ...event.header, ...event }));
        break;
      case "end":
        return { version: start!.version, fileBytes: event.fileBytes, metadata: start!.metadata, tensors };
    }
  }
  // decodeStream ends with an "end" event or throws.
  throw new QansError("TRUNCATED", "the input ended before the trailer");
}


function quantParamBytes(header: TensorHeader): number {
  const q = header.quant;
  if (!q) return 0;
  return q.deltas.length * (q.scaleType === "F32" ? 4 : 2) + (q.zeroPoints?.length ?? 0) + 4 * (q.inputScale?.length ?? 0);
}
