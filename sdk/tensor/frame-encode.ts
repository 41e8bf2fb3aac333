import { encodeBlock, planStream, type EncodedBlock } from "../codec/block-codec.js";
import { splitFloatPlanes } from "../codec/float-planes.js";
import { histogram } from "../codec/histogram.js";
import { QansError } from "../errors.js";
import { encodeBlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE, DEFAULT_LOG2_BLOCK, LIMITS, type EncodingName } from "../format/constants.js";
import { blockHeaderOffset, checkLog2Block, matrixShape, streamWidths } from "../format/layout.js";
import { encodeTensorHeader, type StreamDescriptor, type TensorHeader } from "../format/tensor-header.js";
import { quantizeRtn, type QuantizeOptions } from "../quant/rtn.js";
import { toFloat32 } from "./convert.js";
import { dtypeSize, isFloatPlaneDType } from "./dtype.js";
import { elementCount, type TensorData } from "./tensor.js";

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

/** Encodes a tensor into a frame that starts at a 64-byte aligned offset (spec §7, §9, §15). */
export function encodeTensorFrame(tensor: TensorData, encoding: TensorEncoding, log2Block = DEFAULT_LOG2_BLOCK): EncodedFrame {
  checkTensor(tensor);
  checkLog2Block(log2Block, `tensor "${tensor.name}"`);
  const elements = elementCount(tensor.shape);
  const { symbolStreams, quant } = toSymbolStreams(tensor, encoding, elements);
  const widths = streamWidths(encoding.encoding, tensor.dtype, quant?.bits ?? 0, `tensor "${tensor.name}"`);
  const streams: StreamDescriptor[] = symbolStreams.map((symbols, s) =>
    planStream(histogram(symbols, 2 ** widths[s]), widths[s], symbols.length, log2Block),
  );
  const header: TensorHeader = {
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
  const headerBytes = encodeTensorHeader(header);
  const chunks: Uint8Array[] = [headerBytes];
  const size = 2 ** log2Block;
  const total = symbolStreams[0].length;
  const payloadLengths: number[] = [];
  let position = headerBytes.length;
  for (let start = 0; start < total; start += size) {
    for (let s = 0; s < streams.length; s++) {
      const block: EncodedBlock = encodeBlock(symbolStreams[s].subarray(start, start + size), streams[s]);
      const headerAt = blockHeaderOffset(position);
      if (headerAt > position) chunks.push(new Uint8Array(headerAt - position));
      chunks.push(encodeBlockHeader(block, block.payload), block.payload);
      payloadLengths.push(block.payload.length);
      position = headerAt + BLOCK_HEADER_SIZE + block.payload.length;
    }
  }
  return { header, chunks, headerLength: headerBytes.length, frameLength: position, payloadLengths: Uint32Array.from(payloadLengths) };
}

function toSymbolStreams(tensor: TensorData, encoding: TensorEncoding, elements: number) {
  switch (encoding.encoding) {
    case "raw":
      return { symbolStreams: [tensor.data], quant: undefined };
    case "float-planes":
      if (!isFloatPlaneDType(tensor.dtype)) throw new QansError("BAD_DTYPE", `tensor "${tensor.name}": float-planes does not accept ${tensor.dtype}`);
      return { symbolStreams: splitFloatPlanes(tensor.dtype, tensor.data), quant: undefined };
    case "int-quant": {
      if (!isFloatPlaneDType(tensor.dtype)) throw new QansError("BAD_DTYPE", `tensor "${tensor.name}": int-quant does not accept ${tensor.dtype}`);
      const { rows, cols } = matrixShape(tensor.shape, elements);
      const { encoding: _, ...options } = encoding;
      const { params, symbols } = quantizeRtn(toFloat32(tensor.dtype, tensor.data), rows, cols, options);
      return { symbolStreams: [symbols], quant: params };
    }
  }
}

function checkTensor(tensor: TensorData): void {
  const where = `tensor "${tensor.name}"`;
  const nameBytes = new TextEncoder().encode(tensor.name).length;
  if (nameBytes === 0 || nameBytes > LIMITS.maxNameBytes) throw new QansError("INVALID_ARGUMENT", `${where}: name must be 1 to ${LIMITS.maxNameBytes} bytes`);
  if (tensor.shape.length > LIMITS.maxRank) throw new QansError("INVALID_ARGUMENT", `${where}: rank ${tensor.shape.length} exceeds ${LIMITS.maxRank}`);
  if (!tensor.shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) throw new QansError("INVALID_ARGUMENT", `${where}: shape ${JSON.stringify(tensor.shape)} is not a list of non-negative integers`);
  const elements = elementCount(tensor.shape);
  if (elements > LIMITS.maxElements) throw new QansError("INVALID_ARGUMENT", `${where}: ${elements} elements exceed 2^48`);
  if (tensor.data.length !== elements * dtypeSize(tensor.dtype)) {
    throw new QansError("INVALID_ARGUMENT", `${where}: ${tensor.data.length} bytes of data, shape ${JSON.stringify(tensor.shape)} of ${tensor.dtype} needs ${elements * dtypeSize(tensor.dtype)}`);
  }
}
