import { QansError } from "./errors.js";
import { AtomicFileSink } from "./io/atomic-file.js";
import type { ByteSink } from "./io/sink.js";
import { QansWriter } from "./writer.js";
import { isFloatPlaneDType } from "./tensor/dtype.js";
import { encodeTensorFrame, encodeTensorFrameAsync, type EncodedFrame, type TensorEncoding } from "./tensor/frame-encode.js";
import { elementCount, type ImportedModel, type TensorData } from "./tensor/tensor.js";

/** `lossless`, or `int<b>` with 2 ≤ b ≤ 8 (`int8`, `int4`, ...). */
export type PackMode = "lossless" | `int${number}`;

export interface PackOptions {
  mode?: PackMode;
  /** Group size along each row for int modes; 0 or absent means one scale per row. */
  groupSize?: number;
  asymmetric?: boolean;
  log2Block?: number;
  onTensor?: (done: number, total: number, name: string) => void;
}

export function parsePackMode(mode: string): { bits: number | null } {
  if (mode === "lossless") return { bits: null };
  const match = /^int([2-8])$/.exec(mode);
  if (!match) throw new QansError("INVALID_ARGUMENT", `mode "${mode}" is not lossless or int2..int8`);
  return { bits: Number(match[1]) };
}

/**
 * The encodings worth trying for a tensor under a pack mode: int-quant for float matrices in int
 * modes; otherwise lossless, where float-planes usually wins but a small tensor can be cheaper raw
 * (four planes cost four block headers). Vectors (norms, biases) stay lossless: they are a sliver
 * of the bytes and the model is sensitive to them.
 */
export function candidateEncodings(tensor: TensorData, options: PackOptions): TensorEncoding[] {
  const { bits } = parsePackMode(options.mode ?? "lossless");
  if (!isFloatPlaneDType(tensor.dtype)) return [{ encoding: "raw" }];
  if (bits !== null && tensor.shape.length >= 2) {
    return [{ encoding: "int-quant", bits, groupSize: options.groupSize ?? 0, asymmetric: options.asymmetric ?? false }];
  }
  return elementCount(tensor.shape) < SMALL_TENSOR ? [{ encoding: "float-planes" }, { encoding: "raw" }] : [{ encoding: "float-planes" }];
}

/** Below this many elements, packing tries raw as well as float-planes; above it planes always win. */
const SMALL_TENSOR = 1 << 16;

/** Encodes a tensor with each candidate encoding and keeps the smallest frame (first on ties). */
export function encodeSmallest(tensor: TensorData, options: PackOptions, log2Block: number): EncodedFrame {
  let best: EncodedFrame | undefined;
  for (const encoding of candidateEncodings(tensor, options)) {
    const frame = encodeTensorFrame(tensor, encoding, log2Block);
    if (!best || frame.frameLength < best.frameLength) best = frame;
  }
  return best!;
}

/** As `encodeSmallest`, encoding large tensors off this thread. */
async function encodeSmallestAsync(tensor: TensorData, options: PackOptions, log2Block: number): Promise<EncodedFrame> {
  let best: EncodedFrame | undefined;
  for (const encoding of candidateEncodings(tensor, options)) {
    const frame = await encodeTensorFrameAsync(tensor, encoding, log2Block);
    if (!best || frame.frameLength < best.frameLength) best = frame;
  }
  return best!;
}

export async function packModel(model: ImportedModel, sink: ByteSink, options: PackOptions = {}): Promise<{ bytes: number; tensors: number }> {
  const writer = new QansWriter(sink, { log2Block: options.log2Block });
  await writer.begin({ metadata: model.metadata, architecture: model.architecture });
  for (const [i, tensor] of model.tensors.entries()) {
    await writer.addFrame(await encodeSmallestAsync(tensor, options, writer.log2Block));
    options.onTensor?.(i + 1, model.tensors.length, tensor.name);
  }
  return writer.finish();
}

/** Packs to a file atomically: the destination is either the old file or the complete new one. */
export async function packToFile(model: ImportedModel, path: string, options: PackOptions = {}): Promise<{ bytes: number; tensors: number }> {
  const sink = await AtomicFileSink.create(path);
  try {
    const result = await packModel(model, sink, options);
    await sink.commit();
    return result;
  } catch (error) {
    await sink.abort();
    throw error;
  }
}
