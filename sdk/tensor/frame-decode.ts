import { StreamDecoder } from "../codec/block-codec.js";
import { QansError } from "../errors.js";
import { blockPayloadLength, decodeBlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE, type BlockMode } from "../format/constants.js";
import type { IndexEntry } from "../format/index-frame.js";
import { blockCount, blockHeaderOffset, blockSymbolCount, streamSymbolCount } from "../format/layout.js";
import { sameDescriptor } from "../format/tensor-descriptor.js";
import { decodeTensorHeader, tensorHeaderLength, type TensorHeader } from "../format/tensor-header.js";
import type { ForwardReader } from "../io/forward-reader.js";

/** One decoded block; `symbols` is only valid during the callback. */
export interface DecodedBlock {
  stream: number;
  block: number;
  mode: BlockMode;
  firstSymbol: number;
  symbols: Uint8Array;
}

export interface FrameCallbacks {
  onHeader?(header: TensorHeader): void;
  onBlock(block: DecodedBlock): void;
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
  callbacks.onHeader?.(header);

  const symbols = streamSymbolCount(header.encoding, header.dtype, header.elements);
  const blocks = blockCount(symbols, header.log2Block);
  const decoders = header.streams.map((stream) => new StreamDecoder(stream));
  const scratch = new Uint8Array(Math.min(symbols, 2 ** header.log2Block));
  let position = frameOffset + headerLength;
  let ordinal = 0;
  for (let j = 0; j < blocks; j++) {
    const count = blockSymbolCount(symbols, header.log2Block, j);
    for (let s = 0; s < header.streams.length; s++, ordinal++) {
      const blockWhere = `${where} stream ${s} block ${j}`;
      const headerAt = blockHeaderOffset(position);
      const blockHeaderBytes = await reader.read(headerAt, BLOCK_HEADER_SIZE, `${blockWhere} header`);
      const payloadLength = blockPayloadLength(blockHeaderBytes);
      if (entry && entry.payloadLengths[ordinal] !== payloadLength) {
        throw new QansError("INDEX_MISMATCH", `${blockWhere}: payload of ${payloadLength} bytes, the index says ${entry.payloadLengths[ordinal]}`);
      }
      // The header must be kept: a buffered reader may reuse its memory for the payload read.
      const headerCopy = blockHeaderBytes.slice();
      const payload = await reader.read(headerAt + BLOCK_HEADER_SIZE, payloadLength, `${blockWhere} payload`);
      const stream = header.streams[s];
      const block = decodeBlockHeader(headerCopy, payload, count, stream.width, stream.table !== null, blockWhere, headerAt);
      const out = scratch.subarray(0, count);
      decoders[s].decode(block, payload, out, blockWhere);
      callbacks.onBlock({ stream: s, block: j, mode: block.mode, firstSymbol: j * 2 ** header.log2Block, symbols: out });
      position = headerAt + BLOCK_HEADER_SIZE + payloadLength;
    }
  }
  return { header, frameEnd: position };
}

/** Decodes a whole frame into one symbol buffer per stream. */
export async function decodeTensorStreams(
  reader: ForwardReader,
  frameOffset: number,
  fileSize: number,
  entry: IndexEntry | undefined,
): Promise<{ header: TensorHeader; streams: Uint8Array[]; frameEnd: number }> {
  let streams: Uint8Array[] = [];
  const result = await decodeTensorFrame(reader, frameOffset, fileSize, entry, {
    onHeader(header) {
      const count = streamSymbolCount(header.encoding, header.dtype, header.elements);
      streams = header.streams.map(() => new Uint8Array(count));
    },
    onBlock(block) {
      streams[block.stream].set(block.symbols, block.firstSymbol);
    },
  });
  return { ...result, streams };
}
