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
import { decodeTensorFrame } from "./tensor/frame-decode.js";
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
  let streams: StreamReport[] = [];
  let counts: Float64Array[] = [];
  let tensorHeader: TensorHeader | undefined;
  await decodeTensorFrame(reader, entry.frameOffset, fileSize, entry, {
    onHeader(header) {
      tensorHeader = header;
      counts = header.streams.map((stream) => new Float64Array(2 ** stream.width));
      streams = header.streams.map((stream) => ({
        width: stream.width,
        precision: stream.table?.k ?? null,
        symbols: 0,
        entropyBits: 0,
        payloadBytes: 0,
        stateBytes: 0,
        tableBytes: stream.table ? serializedTableSize(stream.table.freqs, stream.width) : 0,
        blockModes: zeroBlockModeCounts(),
      }));
    },
    onBlock(block) {
      kernels().addHistogram(counts[block.stream], block.symbols);
      const stream = streams[block.stream];
      stream.blockModes[block.mode]++;
      if (block.mode === "RANS") stream.stateBytes += ransStateBytes(block.lanes);
    },
  });
  const header = tensorHeader!;
  entry.payloadLengths.forEach((length, i) => {
    streams[i % streams.length].payloadBytes += length;
  });
  streams.forEach((stream, s) => {
    stream.symbols = counts[s].reduce((sum, c) => sum + c, 0);
    stream.entropyBits = entropyBits(counts[s]);
  });
  const indexBytes = indexEntryBytes(entry);
  const report: TensorReport = {
    name: entry.name,
    dtype: entry.dtype,
    shape: entry.shape,
    encoding: entry.encoding,
    elements: entry.elements,
    storedBytes: align64(entry.frameOffset + entry.frameLength) - entry.frameOffset + indexBytes,
    paramBytes: quantParamBytes(header),
    indexBytes,
    streams,
  };
  if (header.quant) {
    const q = header.quant;
    report.quant = { bits: q.bits, asymmetric: q.asymmetric, groupSize: q.groupSize, scaleType: q.scaleType, inputScale: !!q.inputScale };
  }
  return report;
}

function indexEntryBytes(entry: IndexEntry): number {
  const nameBytes = new TextEncoder().encode(entry.name).length;
  return 2 + nameBytes + 4 + 8 * entry.shape.length + 4 + 8 + 4 + 8 + 4 * entry.payloadLengths.length;
}

function quantParamBytes(header: TensorHeader): number {
  const q = header.quant;
  if (!q) return 0;
  return q.deltas.length * (q.scaleType === "F32" ? 4 : 2) + (q.zeroPoints?.length ?? 0) + 4 * (q.inputScale?.length ?? 0);
}
