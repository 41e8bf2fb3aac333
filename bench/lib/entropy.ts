import { entropyBits, fromFloat32, histogram, splitFloatPlanes, toFloat32, type ImportedModel, type TensorData } from "../../sdk/index.js";

/** Order-0 entropy of b-bit symbols, in bytes: the least any coder without context can reach. */
export function symbolEntropyBytes(symbols: Uint8Array, bits: number): number {
  return entropyBits(histogram(symbols, 2 ** bits)) / 8;
}

/**
 * The lossless BF16 bound of one tensor, in bits: the exponent plane at its order-0 entropy plus
 * the sign-and-mantissa byte stored as is. The second plane is treated as incompressible because
 * on trained weights it is within a fraction of a percent of 8 bits, and that is the premise of
 * exponent-only coders such as ZipNN and DFloat11.
 */
export function bf16BoundBits(bf16Bytes: Uint8Array): number {
  const [exponent] = splitFloatPlanes("BF16", bf16Bytes);
  return entropyBits(histogram(exponent)) + 8 * exponent.length;
}

/** Every float tensor of the model rounded to BF16 (nearest even); other tensors unchanged. */
export function castModelToBf16(model: ImportedModel): ImportedModel {
  const tensors = model.tensors.map((tensor): TensorData => {
    if (tensor.dtype !== "F32" && tensor.dtype !== "F16" && tensor.dtype !== "BF16") return tensor;
    return { ...tensor, dtype: "BF16", data: fromFloat32("BF16", toFloat32(tensor.dtype, tensor.data)) };
  });
  return { ...model, tensors };
}

export interface Bf16Bound {
  /** Bytes of every tensor of the model as it stands (BF16 floats, other dtypes as they are). */
  modelBytes: number;
  boundBytes: number;
}

/**
 * Σ over BF16 tensors of {@link bf16BoundBits}, plus the raw size of tensors of other dtypes
 * (integer shape constants and the like), which the bound does not try to compress.
 */
export function modelBf16Bound(tensors: readonly TensorData[]): Bf16Bound {
  let modelBytes = 0;
  let boundBits = 0;
  for (const tensor of tensors) {
    modelBytes += tensor.data.length;
    boundBits += tensor.dtype === "BF16" ? bf16BoundBits(tensor.data) : 8 * tensor.data.length;
  }
  return { modelBytes, boundBytes: boundBits / 8 };
}
