import { floatPlaneWidths } from "../codec/float-planes.js";
import { QansError } from "../errors.js";
import { dtypeSize, isFloatPlaneDType, type DType } from "../tensor/dtype.js";
import { align64 } from "./bytes.js";
import { BLOCK_HEADER_SIZE, LIMITS, type EncodingName } from "./constants.js";

/** Symbol widths of a tensor's streams (spec §8), or BAD_DTYPE when the encoding refuses the dtype. */
export function streamWidths(encoding: EncodingName, dtype: DType, bits: number, where: string): number[] {
  switch (encoding) {
    case "raw":
      return [8];
    case "float-planes":
      if (!isFloatPlaneDType(dtype)) throw new QansError("BAD_DTYPE", `${where}: float-planes does not accept ${dtype}`);
      return floatPlaneWidths(dtype);
    case "int-quant":
      if (!isFloatPlaneDType(dtype)) throw new QansError("BAD_DTYPE", `${where}: int-quant does not accept original dtype ${dtype}`);
      return [bits];
  }
}

/** Symbols per stream (spec §7.3). */
export function streamSymbolCount(encoding: EncodingName, dtype: DType, elements: number): number {
  return encoding === "raw" ? elements * dtypeSize(dtype) : elements;
}

export function blockCount(symbols: number, log2Block: number): number {
  return Math.ceil(symbols / 2 ** log2Block);
}

export function blockSymbolCount(symbols: number, log2Block: number, block: number): number {
  const size = 2 ** log2Block;
  return Math.min(size, symbols - block * size);
}

/** Where a block's header goes, given where the previous structure ended (spec §9). */
export function blockHeaderOffset(previousEnd: number): number {
  return align64(previousEnd + BLOCK_HEADER_SIZE) - BLOCK_HEADER_SIZE;
}

export interface BlockPlacement {
  /** Absolute offsets of each block header, in block-major order. */
  headerOffsets: number[];
  frameEnd: number;
}

export function placeBlocks(frameOffset: number, headerLength: number, payloadLengths: ArrayLike<number>): BlockPlacement {
  const headerOffsets: number[] = new Array(payloadLengths.length);
  let position = frameOffset + headerLength;
  for (let i = 0; i < payloadLengths.length; i++) {
    const at = blockHeaderOffset(position);
    headerOffsets[i] = at;
    position = at + BLOCK_HEADER_SIZE + payloadLengths[i];
  }
  return { headerOffsets, frameEnd: position };
}

/** The matrix view of int-quant (spec §8.3): cols is the last dimension. */
export function matrixShape(shape: readonly number[], elements: number): { rows: number; cols: number } {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  return { rows: cols === 0 ? 0 : elements / cols, cols };
}

/** Validates dimensions read as u64 (spec §7.1, §13): each and their product at most 2^48. */
export function checkedShape(dims: readonly bigint[], where: string): { shape: number[]; elements: number } {
  const limit = BigInt(LIMITS.maxElements);
  let product = 1n;
  for (const dim of dims) {
    if (dim > limit) throw new QansError("BAD_SHAPE", `${where}: dimension ${dim} exceeds 2^48`);
    product *= dim;
  }
  if (product > limit) throw new QansError("BAD_SHAPE", `${where}: element count ${product} exceeds 2^48`);
  return { shape: dims.map(Number), elements: Number(product) };
}

export function checkLog2Block(log2Block: number, where: string): void {
  if (log2Block < LIMITS.minLog2Block || log2Block > LIMITS.maxLog2Block) {
    throw new QansError("BAD_HEADER", `${where}: block size 2^${log2Block} is outside 2^${LIMITS.minLog2Block}..2^${LIMITS.maxLog2Block}`);
  }
}
