import { serializedTableSize } from "./codec/freq-table.js";
import { entropyBits } from "./codec/histogram.js";
import { kernels } from "./codec/kernels.js";
import { ransStateBytes } from "./codec/rans.js";
import { align64 } from "./format/bytes.js";
import { FILE_HEADER_SIZE, zeroBlockModeCounts, type BlockModeCounts } from "./format/constants.js";
import { decodeFileHeader, type FormatVersion } from "./format/file-header.js";
import type { IndexEntry } from "./format/index-frame.js";
import { decodeMetadataFrame, metadataFrameLength } from "./format/metadata-frame.js";
import type { TensorHeader } from "./format/tensor-header.js";
import { QansError } from "./errors.js";
import { SourceForwardReader } from "./io/forward-reader.js";
import type { ByteSource } from "./io/source.js";
import { QansReader } from "./reader.js";
import type { ChunkForwardReader, ChunkSource } from "./io/chunk-reader.js";
import { decodeStream, type StreamStartEvent } from "./stream-decoder.js";
import { decodeTensorFrame, type DecodedBlock, type FrameCallbacks } from "./tensor/frame-decode.js";
import type { ModelMetadata } from "./tensor/tensor.js";

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
  fileBytes: number;
  metadata: ModelMetadata;
  tensors: TensorReport[];
}

/**
 * Checks a whole file: header, metadata, trailer, index, then every tensor frame front to back,
 * decoding every block (so rANS end-state checks run) and every padding byte.
 */
export async function verifySource(source: ByteSource, onProgress?: (done: number, total: number) => void): Promise<FileReport> {
  const version = decodeFileHeader(await source.read(0, Math.min(source.size, FILE_HEADER_SIZE), "file header"));
  const reader = new SourceForwardReader(source, FILE_HEADER_SIZE);
  const prefix = await reader.read(FILE_HEADER_SIZE, 8, "metadata frame");
  const metadataLength = metadataFrameLength(prefix, FILE_HEADER_SIZE);
  const metadataBytes = await source.read(FILE_HEADER_SIZE, metadataLength, "metadata frame");
  const metadata = decodeMetadataFrame(metadataBytes, FILE_HEADER_SIZE);
  await reader.read(FILE_HEADER_SIZE + 8, metadataLength - 8, "metadata frame");

  const random = await QansReader.open(source);
  const { trailer, index } = random;
  if (trailer.major !== version.major || trailer.minor !== version.minor) {
    throw new QansError("INDEX_MISMATCH", `trailer version ${trailer.major}.${trailer.minor} differs from the header's ${version.major}.${version.minor}`);
  }
  if (index.metadataLength !== metadataLength) {
    throw new QansError("INDEX_MISMATCH", `index says the metadata frame has ${index.metadataLength} bytes, it has ${metadataLength}`);
  }
  const tensors: TensorReport[] = [];
  for (const entry of index.entries) {
    tensors.push(await verifyTensor(reader, entry, source.size));
    onProgress?.(entry.frameOffset + entry.frameLength, source.size);
  }
  // Reading zero bytes at the index checks the padding before it.
  await reader.read(trailer.indexOffset, 0, "index");
  return { version, fileBytes: source.size, metadata, tensors };
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
    const indexBytes = indexEntryBytes(placement);
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

function indexEntryBytes(entry: Pick<IndexEntry, "name" | "shape" | "payloadLengths">): number {
  const nameBytes = new TextEncoder().encode(entry.name).length;
  return 2 + nameBytes + 4 + 8 * entry.shape.length + 4 + 8 + 4 + 8 + 4 * entry.payloadLengths.length;
}

function quantParamBytes(header: TensorHeader): number {
  const q = header.quant;
  if (!q) return 0;
  return q.deltas.length * (q.scaleType === "F32" ? 4 : 2) + (q.zeroPoints?.length ?? 0) + 4 * (q.inputScale?.length ?? 0);
}
