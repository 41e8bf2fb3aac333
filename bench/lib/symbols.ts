import { quantizeRtn, toFloat32, type ImportedModel, type TensorData } from "../../sdk/index.js";

/** Symbols of one tensor, one byte per symbol, as a b-bit quantiser produced them. */
export interface TensorSymbols {
  name: string;
  symbols: Uint8Array;
}

/**
 * Whether an int pack mode quantises the tensor: float tensors of rank ≥ 2. Vectors (norms,
 * biases) stay lossless in those modes, so they are not part of the symbol benchmark either.
 */
export function isQuantizedMatrix(tensor: TensorData): boolean {
  const float = tensor.dtype === "F32" || tensor.dtype === "F16" || tensor.dtype === "BF16";
  return float && tensor.shape.length >= 2;
}

/** The [rows, cols] view of spec §8.3: cols is the last dimension, rows the rest. */
export function matrixDims(shape: readonly number[]): { rows: number; cols: number } {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  const elements = shape.reduce((product, dim) => product * dim, 1);
  return { rows: cols === 0 ? 0 : elements / cols, cols };
}

/** Per-row round-to-nearest symbols of every matrix of the model, in model order. */
export function quantizedSymbols(model: ImportedModel, bits: number): TensorSymbols[] {
  return model.tensors.filter(isQuantizedMatrix).map((tensor) => {
    const { rows, cols } = matrixDims(tensor.shape);
    const { symbols } = quantizeRtn(toFloat32(tensor.dtype, tensor.data), rows, cols, { bits, groupSize: 0 });
    return { name: tensor.name, symbols };
  });
}

export function concatSymbols(parts: readonly TensorSymbols[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.symbols.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part.symbols, offset);
    offset += part.symbols.length;
  }
  return out;
}
