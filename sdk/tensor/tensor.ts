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

/**
 * A tensor whose bytes are read on demand, a range at a time, as often as needed: what a file
 * gives. The windowed encoder reads it twice (histograms, then blocks) and never holds it whole.
 */
export interface TensorReader {
  name: string;
  dtype: DType;
  shape: number[];
  /** `length` bytes from byte `offset` of the tensor's element bytes; exactly `length` of them. */
  readBytes(offset: number, length: number): Promise<Uint8Array>;
}

/** What the writer encodes: a tensor in memory, or one read on demand. */
export type TensorInput = TensorData | TensorReader;

export function isTensorReader(tensor: TensorInput): tensor is TensorReader {
  return !("data" in tensor) && typeof (tensor as Partial<TensorReader>).readBytes === "function";
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
