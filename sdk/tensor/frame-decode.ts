import { StreamDecoder } from "../codec/block-codec.js";
import { JOB_THRESHOLDS, kernels, type DecodeJobBlock } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import { blockPayloadLength, checkBlockChecksum, checkBlockFields, decodeBlockHeader, type BlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE, type BlockMode } from "../format/constants.js";
import type { IndexEntry } from "../format/index-frame.js";
import { blockCount, blockHeaderOffset, blockSymbolCount, streamSymbolCount } from "../format/layout.js";
import { sameDescriptor } from "../format/tensor-descriptor.js";
import { decodeTensorHeader, tensorHeaderLength, type TensorHeader } from "../format/tensor-header.js";
import { BufferForwardReader, type ForwardReader } from "../io/forward-reader.js";

/** One decoded block; `symbols` is only valid during the callback. */
export interface DecodedBlock {
  stream: number;
  block: number;
  mode: BlockMode;
  /** rANS lanes of a RANS block; 32 for the other modes. */
  lanes: number;
  firstSymbol: number;
  symbols: Uint8Array;
}

export interface FrameCallbacks {
  onHeader?(header: TensorHeader): void;
  onBlock(block: DecodedBlock): void;
}

/** Reads and checks the tensor header at the frame's start, against the index entry when given. */
async function readTensorHeader(reader: ForwardReader, frameOffset: number, fileSize: number, entry: IndexEntry | undefined) {
  const prefix = await reader.read(frameOffset, 8, "tensor header");
  const headerLength = tensorHeaderLength(prefix, frameOffset, fileSize);
  const rest = await reader.read(frameOffset + 8, headerLength - 8, "tensor header");
  const headerBytes = new Uint8Array(headerLength);
  headerBytes.set(prefix);
  headerBytes.set(rest, 8);
  const header = decodeTensorHeader(headerBytes, frameOffset);
  const where = `tensor "${header.name}"`;
  if (entry && (!sameDescriptor(header, entry) || entry.headerLength !== headerLength)) {
    throw new QansError("INDEX_MISMATCH", `${where}: the tensor header at ${frameOffset} disagrees with the index entry "${entry.name}"`);
  }
  const symbols = streamSymbolCount(header.encoding, header.dtype, header.elements);
  return { header, where, symbols, blocks: blockCount(symbols, header.log2Block), blocksStart: frameOffset + headerLength };
}

/**
 * Reads the next block's header and payload, where the placement rule puts them after `position`
 * (checking the padding before them and the index's payload length), without checking the block.
 */
async function readBlock(reader: ForwardReader, position: number, entry: IndexEntry | undefined, ordinal: number, where: string) {
  const headerAt = blockHeaderOffset(position);
  const headerBytes = await reader.read(headerAt, BLOCK_HEADER_SIZE, `${where} header`);
  checkIndexedLength(headerBytes, entry, ordinal, where);
  // The header must be kept: a buffered reader may reuse its memory for the payload read.
  const header = headerBytes.slice();
  const payload = await reader.read(headerAt + BLOCK_HEADER_SIZE, blockPayloadLength(header), `${where} payload`);
  return { headerAt, header, payload };
}

/** As `readBlock`, over bytes in memory, without waiting. */
function readBlockSync(reader: BufferForwardReader, position: number, entry: IndexEntry | undefined, ordinal: number, where: string) {
  const headerAt = blockHeaderOffset(position);
  const header = reader.readSync(headerAt, BLOCK_HEADER_SIZE, `${where} header`);
  checkIndexedLength(header, entry, ordinal, where);
  const payload = reader.readSync(headerAt + BLOCK_HEADER_SIZE, blockPayloadLength(header), `${where} payload`);
  return { headerAt, header, payload };
}

function checkIndexedLength(header: Uint8Array, entry: IndexEntry | undefined, ordinal: number, where: string): void {
  const payloadLength = blockPayloadLength(header);
  if (entry && entry.payloadLengths[ordinal] !== payloadLength) {
    throw new QansError("INDEX_MISMATCH", `${where}: payload of ${payloadLength} bytes, the index says ${entry.payloadLengths[ordinal]}`);
  }
}

/**
 * Decodes one tensor frame starting at `frameOffset`, checking every rule of spec §7 and §9, and
 * the index entry when one is given. Returns the header and the offset where the frame ends.
 */
export async function decodeTensorFrame(
  reader: ForwardReader,
  frameOffset: number,
  fileSize: number,
  entry: IndexEntry | undefined,
  callbacks: FrameCallbacks,
): Promise<{ header: TensorHeader; frameEnd: number }> {
  const { header, where, symbols, blocks, blocksStart } = await readTensorHeader(reader, frameOffset, fileSize, entry);
  callbacks.onHeader?.(header);
  const decoders = header.streams.map((stream) => new StreamDecoder(stream));
  const scratch = new Uint8Array(Math.min(symbols, 2 ** header.log2Block));
  let position = blocksStart;
  let ordinal = 0;
  for (let j = 0; j < blocks; j++) {
    const count = blockSymbolCount(symbols, header.log2Block, j);
    for (let s = 0; s < header.streams.length; s++, ordinal++) {
      const blockWhere = `${where} stream ${s} block ${j}`;
      const { headerAt, header: headerBytes, payload } = await readBlock(reader, position, entry, ordinal, blockWhere);
      const stream = header.streams[s];
      const block = decodeBlockHeader(headerBytes, payload, count, stream.width, stream.table !== null, blockWhere, headerAt);
      const out = scratch.subarray(0, count);
      decoders[s].decode(block, payload, out, blockWhere);
      callbacks.onBlock({ stream: s, block: j, mode: block.mode, lanes: block.lanes, firstSymbol: j * 2 ** header.log2Block, symbols: out });
      position = headerAt + BLOCK_HEADER_SIZE + payload.length;
    }
  }
  return { header, frameEnd: position };
}

/**
 * The caller's buffers for a tensor's streams, checked against its header: one per stream, each of
 * exactly the stream's symbol count. Without them, new buffers from `allocate`.
 */
function streamOutputs(header: TensorHeader, symbols: number, into: Uint8Array[] | undefined, where: string, allocate: (length: number) => Uint8Array): Uint8Array[] {
  if (!into) return header.streams.map(() => allocate(symbols));
  if (into.length !== header.streams.length || into.some((out) => !(out instanceof Uint8Array) || out.length !== symbols)) {
    const given = into.map((out) => (out instanceof Uint8Array ? out.length : typeof out)).join(", ");
    throw new QansError("INVALID_ARGUMENT", `${where}: needs ${header.streams.length} output buffers of ${symbols} bytes, got [${given}]`);
  }
  return into;
}

/**
 * Decodes a whole frame into one symbol buffer per stream: `into` when given (see
 * {@link decodeFrameStreams}), else new ones.
 */
export async function decodeTensorStreams(
  reader: ForwardReader,
  frameOffset: number,
  fileSize: number,
  entry: IndexEntry | undefined,
  into?: Uint8Array[],
): Promise<{ header: TensorHeader; streams: Uint8Array[]; frameEnd: number }> {
  let streams: Uint8Array[] = [];
  const result = await decodeTensorFrame(reader, frameOffset, fileSize, entry, {
    onHeader(header) {
      const count = streamSymbolCount(header.encoding, header.dtype, header.elements);
      streams = streamOutputs(header, count, into, `tensor "${header.name}"`, (length) => new Uint8Array(length));
    },
    onBlock(block) {
      streams[block.stream].set(block.symbols, block.firstSymbol);
    },
  });
  return { ...result, streams };
}

/**
 * Decodes a frame held in memory (`frame` starts at file offset `frameOffset`) into one symbol
 * buffer per stream: the caller's `into`, one buffer per stream of exactly its symbol count, or new
 * buffers (INVALID_ARGUMENT when `into` does not fit; its contents are unspecified after a failed
 * decode). Decoding into buffers that are reused spares the allocation, page faults and garbage
 * collection of a new tensor-sized buffer per call. A large frame on the native kernels is decoded in one job on the thread pool
 * and fails exactly as `decodeTensorStreams` does: here every block is located (placement,
 * padding, bounds, index) and its fields checked, in order, up to the first that cannot be
 * located; the job computes every checksum and decodes every block with valid fields; then the
 * first block that fails (checksum, then fields, then decode), else the failed location, is reported.
 */
export async function decodeFrameStreams(
  frame: Uint8Array,
  frameOffset: number,
  fileSize: number,
  entry: IndexEntry | undefined,
  into?: Uint8Array[],
): Promise<{ header: TensorHeader; streams: Uint8Array[]; frameEnd: number }> {
  const jobs = kernels().blockJobs;
  const reader = new BufferForwardReader(frame, frameOffset);
  const { header, where, symbols, blocks, blocksStart } = await readTensorHeader(reader, frameOffset, fileSize, entry);
  const streamCount = header.streams.length;
  if (!jobs || symbols * streamCount < JOB_THRESHOLDS.decode.job) {
    // Reads the tensor header again: a few dozen bytes.
    return decodeTensorStreams(new BufferForwardReader(frame, frameOffset), frameOffset, fileSize, entry, into);
  }

  const streams = streamOutputs(header, symbols, into, where, (length) => jobs.symbolBuffer(length));
  const located: (DecodeJobBlock & { headerBytes: Uint8Array; fieldError: unknown; where: string })[] = [];
  let locateError: unknown;
  let position = blocksStart;
  locate: for (let j = 0, ordinal = 0; j < blocks; j++) {
    const count = blockSymbolCount(symbols, header.log2Block, j);
    for (let s = 0; s < streamCount; s++, ordinal++) {
      const blockWhere = `${where} stream ${s} block ${j}`;
      let block;
      try {
        block = readBlockSync(reader, position, entry, ordinal, blockWhere);
      } catch (error) {
        locateError = error;
        break locate;
      }
      const { headerAt, header: headerBytes, payload } = block;
      const { width, table } = header.streams[s];
      let fields: BlockHeader | null = null;
      let fieldError: unknown;
      try {
        fields = checkBlockFields(headerBytes, payload.length, count, width, table !== null, blockWhere, headerAt);
      } catch (error) {
        fieldError = error;
      }
      located.push({ stream: s, headerAt, payloadLength: payload.length, count, outputOffset: j * 2 ** header.log2Block, fields, fieldError, headerBytes, where: blockWhere });
      position = headerAt + BLOCK_HEADER_SIZE + payload.length;
    }
  }

  const usesTable = (s: number) => located.some((block) => block.stream === s && block.fields?.mode === "RANS");
  const { crcs, failures } = await jobs.decode(
    {
      frame,
      frameOffset,
      // Cannot fail: the tensor header's tables passed the checks of §10.3.
      streams: header.streams.map(({ width, table }, s) => ({ table: table && usesTable(s) ? jobs.decodeTable(table) : null, width, out: streams[s] })),
      blocks: located,
    },
    (i) => located[i].where,
    symbols * streamCount >= JOB_THRESHOLDS.decode.async,
  );
  located.forEach((block, i) => {
    checkBlockChecksum(block.headerBytes, crcs[i], block.where, block.headerAt);
    if (!block.fields) throw block.fieldError;
    if (failures.has(i)) throw failures.get(i);
  });
  if (locateError !== undefined) throw locateError;
  return { header, streams, frameEnd: position };
}
