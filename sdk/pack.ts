import { QansError } from "./errors.js";
import { AtomicFileSink } from "./io/atomic-file.js";
import type { ByteSink } from "./io/sink.js";
import { QansWriter } from "./writer.js";
import { isFloatPlaneDType } from "./tensor/dtype.js";
import type { TensorEncoding } from "./tensor/frame-encode.js";
import type { ImportedModel, TensorData } from "./tensor/tensor.js";

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
 * The encoding a tensor gets under a pack mode: float-planes for lossless floats, raw for other
 * dtypes, and int-quant for float matrices in int modes. Vectors (norms, biases) stay lossless:
 * they are a sliver of the bytes and the model is sensitive to them.
 */
export function chooseEncoding(tensor: TensorData, options: PackOptions): TensorEncoding {
  const { bits } = parsePackMode(options.mode ?? "lossless");
  if (!isFloatPlaneDType(tensor.dtype)) return { encoding: "raw" };
  if (bits === null || tensor.shape.length < 2) return { encoding: "float-planes" };
  return { encoding: "int-quant", bits, groupSize: options.groupSize ?? 0, asymmetric: options.asymmetric ?? false };
}

export async function packModel(model: ImportedModel, sink: ByteSink, options: PackOptions = {}): Promise<{ bytes: number; tensors: number }> {
  const writer = new QansWriter(sink, { log2Block: options.log2Block });
  await writer.begin({ metadata: model.metadata, architecture: model.architecture });
  for (const [i, tensor] of model.tensors.entries()) {
    await writer.addTensor(tensor, chooseEncoding(tensor, options));
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
