import { encodeBlocks, encodeBlocksAsync, planStream, type EncodedBlock } from "../codec/block-codec.js";
import { kernels } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import { encodeBlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE, DEFAULT_LOG2_BLOCK, LIMITS, type EncodingName } from "../format/constants.js";
import { blockHeaderOffset, checkLog2Block, matrixShape, streamWidths } from "../format/layout.js";
import { encodeTensorHeader, type StreamDescriptor, type TensorHeader } from "../format/tensor-header.js";
import { quantizeRtn, type QuantizeOptions, type QuantParams } from "../quant/rtn.js";
import { toFloat32 } from "./convert.js";
import { dtypeSize, isFloatPlaneDType } from "./dtype.js";
import { elementCount, isTensorReader, type TensorData, type TensorInput } from "./tensor.js";

/** How to store one tensor. */
export type TensorEncoding =
  | { encoding: "raw" }
  | { encoding: "float-planes" }
  | ({ encoding: "int-quant" } & QuantizeOptions);

export interface EncodedFrame {
  header: TensorHeader;
  /** The frame's bytes, in order, as chunks: header, then padding, block header and payload per block. */
  chunks: Uint8Array[];
  headerLength: number;
  frameLength: number;
  payloadLengths: Uint32Array;
}

/**
 * Encodes a tensor into a frame that starts at a 64-byte aligned offset (spec §7, §9, §15). On the
 * native kernels a large tensor's blocks are encoded on the addon's thread pool, this thread
 * taking part; `encodeTensorFrameAsync` gives the same bytes without blocking this thread.
 */
export function encodeTensorFrame(tensor: TensorData, encoding: TensorEncoding, log2Block = DEFAULT_LOG2_BLOCK): EncodedFrame {
  const { header, headerBytes, symbolStreams } = planFrame(tensor, encoding, log2Block);
  return assembleFrame(header, headerBytes, encodeBlocks(symbolStreams, header.streams, log2Block));
}

/** As `encodeTensorFrame`; `tensor.data` must not change until the promise settles. */
export async function encodeTensorFrameAsync(tensor: TensorData, encoding: TensorEncoding, log2Block = DEFAULT_LOG2_BLOCK): Promise<EncodedFrame> {
  const { header, headerBytes, symbolStreams } = planFrame(tensor, encoding, log2Block);
  return assembleFrame(header, headerBytes, await encodeBlocksAsync(symbolStreams, header.streams, log2Block));
}

/** The tensor header, with each stream's table chosen (spec §15 steps 1-4), and the symbol streams. */
function planFrame(tensor: TensorData, encoding: TensorEncoding, log2Block: number): { header: TensorHeader; headerBytes: Uint8Array; symbolStreams: Uint8Array[] } {
  checkTensor(tensor);
  checkLog2Block(log2Block, `tensor "${tensor.name}"`);
  const elements = elementCount(tensor.shape);
  const { symbolStreams, quant } = toSymbolStreams(tensor, encoding, elements);
  const widths = streamWidths(encoding.encoding, tensor.dtype, quant?.bits ?? 0, `tensor "${tensor.name}"`);
  const streams: StreamDescriptor[] = symbolStreams.map((symbols, s) =>
    planStream(kernels().histogram(symbols, 2 ** widths[s]), widths[s], symbols.length, log2Block),
  );
  const header = frameHeader(tensor, encoding, elements, log2Block, streams, quant);
  return { header, headerBytes: encodeTensorHeader(header), symbolStreams };
}

/** The tensor header of a frame whose streams are planned. */
export function frameHeader(
  tensor: TensorInput,
  encoding: TensorEncoding,
  elements: number,
  log2Block: number,
  streams: StreamDescriptor[],
  quant: QuantParams | undefined,
): TensorHeader {
  return {
    name: tensor.name,
    dtype: tensor.dtype,
    encoding: encoding.encoding as EncodingName,
    shape: [...tensor.shape],
    elements,
    log2Block,
    streamCount: streams.length,
    streams,
    ...(quant ? { quant } : {}),
  };
}

/**
 * Lays out a frame's blocks as they arrive, in block-major order (spec §9): `place` gives the
 * chunks that come next (per block its padding, header and payload), so a writer can send them on
 * at once instead of holding the frame; `layout` gives the lengths the index entry records.
 */
export class FrameAssembler {
  private readonly payloadLengths: Uint32Array;
  private position: number;
  private count = 0;

  constructor(
    readonly header: TensorHeader,
    readonly headerBytes: Uint8Array,
    blocks: number,
  ) {
    this.payloadLengths = new Uint32Array(blocks);
    this.position = headerBytes.length;
  }

  place(blocks: readonly EncodedBlock[]): Uint8Array[] {
    if (this.count + blocks.length > this.payloadLengths.length) {
      throw new QansError("INVALID_ARGUMENT", `tensor "${this.header.name}": more than the ${this.payloadLengths.length} blocks planned`);
    }
    const chunks: Uint8Array[] = [];
    for (const block of blocks) {
      const headerAt = blockHeaderOffset(this.position);
      if (headerAt > this.position) chunks.push(new Uint8Array(headerAt - this.position));
      chunks.push(encodeBlockHeader(block, block.payload), block.payload);
      this.payloadLengths[this.count++] = block.payload.length;
      this.position = headerAt + BLOCK_HEADER_SIZE + block.payload.length;
    }
    return chunks;
  }

  layout(): FrameLayout {
    if (this.count !== this.payloadLengths.length) {
      throw new QansError("INVALID_ARGUMENT", `tensor "${this.header.name}": ${this.count} of the ${this.payloadLengths.length} blocks planned were placed`);
    }
    return { headerLength: this.headerBytes.length, frameLength: this.position, payloadLengths: this.payloadLengths };
  }
}

/** The lengths of a frame that its index entry records (spec §11). */
export type FrameLayout = Pick<EncodedFrame, "headerLength" | "frameLength" | "payloadLengths">;

/** A frame held whole: its header, then every block. */
export function assembleFrame(header: TensorHeader, headerBytes: Uint8Array, blocks: EncodedBlock[]): EncodedFrame {
  const assembler = new FrameAssembler(header, headerBytes, blocks.length);
  const chunks = [headerBytes, ...assembler.place(blocks)];
  return { header, chunks, ...assembler.layout() };
}

function toSymbolStreams(tensor: TensorData, encoding: TensorEncoding, elements: number) {
  switch (encoding.encoding) {
    case "raw":
      return { symbolStreams: [tensor.data], quant: undefined };
    case "float-planes":
      if (!isFloatPlaneDType(tensor.dtype)) throw new QansError("BAD_DTYPE", `tensor "${tensor.name}": float-planes does not accept ${tensor.dtype}`);
      return { symbolStreams: kernels().splitFloatPlanes(tensor.dtype, tensor.data), quant: undefined };
    case "int-quant": {
      if (!isFloatPlaneDType(tensor.dtype)) throw new QansError("BAD_DTYPE", `tensor "${tensor.name}": int-quant does not accept ${tensor.dtype}`);
      const { rows, cols } = matrixShape(tensor.shape, elements);
      const { encoding: _, ...options } = encoding;
      const { params, symbols } = quantizeRtn(toFloat32(tensor.dtype, tensor.data), rows, cols, options);
      return { symbolStreams: [symbols], quant: params };
    }
  }
}

/** The argument checks every frame encoder makes first (INVALID_ARGUMENT). */
export function checkTensor(tensor: TensorInput): void {
  const where = `tensor "${tensor.name}"`;
  const nameBytes = new TextEncoder().encode(tensor.name).length;
  if (nameBytes === 0 || nameBytes > LIMITS.maxNameBytes) throw new QansError("INVALID_ARGUMENT", `${where}: name must be 1 to ${LIMITS.maxNameBytes} bytes`);
  if (tensor.shape.length > LIMITS.maxRank) throw new QansError("INVALID_ARGUMENT", `${where}: rank ${tensor.shape.length} exceeds ${LIMITS.maxRank}`);
  if (!tensor.shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) throw new QansError("INVALID_ARGUMENT", `${where}: shape ${JSON.stringify(tensor.shape)} is not a list of non-negative integers`);
  const elements = elementCount(tensor.shape);
  if (elements > LIMITS.maxElements) throw new QansError("INVALID_ARGUMENT", `${where}: ${elements} elements exceed 2^48`);
  if (!isTensorReader(tensor) && tensor.data.length !== elements * dtypeSize(tensor.dtype)) {
    throw new QansError("INVALID_ARGUMENT", `${where}: ${tensor.data.length} bytes of data, shape ${JSON.stringify(tensor.shape)} of ${tensor.dtype} needs ${elements * dtypeSize(tensor.dtype)}`);
  }
}
