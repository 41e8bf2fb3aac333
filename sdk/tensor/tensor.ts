import type { DType } from "./dtype.js";

/**
 * A tensor as importers produce and exporters consume it: little-endian element bytes in
 * row-major order. `data.byteLength` equals product(shape) * dtypeSize(dtype).
 */
export interface TensorData {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** Free key/value metadata and the optional model-architecture record (spec §6). */
export interface ModelMetadata {
  metadata: Record<string, string>;
  architecture?: ModelArchitecture;
}

/** Configuration needed to run a Llama-family decoder (spec §6.2). */
export interface ModelArchitecture {
  family: string;
  [key: string]: unknown;
}

export interface ImportedModel extends ModelMetadata {
  tensors: TensorData[];
}

/** Product of a shape, as a Number; callers check limits before calling on untrusted shapes. */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}
