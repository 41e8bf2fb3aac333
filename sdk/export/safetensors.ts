import { asQansError, QansError } from "../errors.js";
import { AtomicFileSink } from "../io/atomic-file.js";
import { SAFETENSORS_DTYPES, SAFETENSORS_MAX_HEADER_LENGTH } from "../import/safetensors.js";
import { checkShape } from "../import/shape.js";
import { dtypeSize, type DType } from "../tensor/dtype.js";
import type { TensorData } from "../tensor/tensor.js";

export interface TensorLayout {
  name: string;
  dtype: DType;
  shape: number[];
}

export interface SafetensorsHeaderEntry extends TensorLayout {
  byteLength: number;
}

function expectedBytes(layout: TensorLayout, where: string): number {
  if (!(SAFETENSORS_DTYPES as readonly string[]).includes(layout.dtype)) {
    throw new QansError("BAD_DTYPE", `${where}: dtype ${JSON.stringify(layout.dtype)} has no safetensors name`);
  }
  return Number(checkShape(layout.shape, where).elements * BigInt(dtypeSize(layout.dtype)));
}

/**
 * Encodes the 8-byte length and JSON header for tensors stored back to back in the given order.
 * The JSON is padded with spaces so that the data section starts on an 8-byte boundary, as the
 * official writer does. `__metadata__` is written only when `metadata` has entries.
 */
export function encodeSafetensorsHeader(
  tensors: readonly SafetensorsHeaderEntry[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const members: string[] = [];
  const entries = Object.entries(metadata);
  for (const [key, value] of entries) {
    if (typeof value !== "string") throw new QansError("INVALID_ARGUMENT", `safetensors metadata ${JSON.stringify(key)} is not a string`);
  }
  if (entries.length > 0) members.push(`"__metadata__":${JSON.stringify(Object.fromEntries(entries))}`);
  const names = new Set<string>();
  let offset = 0;
  for (const tensor of tensors) {
    const at = `safetensors tensor ${JSON.stringify(tensor.name)}`;
    if (typeof tensor.name !== "string" || tensor.name === "__metadata__") throw new QansError("INVALID_ARGUMENT", `${at}: reserved or invalid name`);
    if (names.has(tensor.name)) throw new QansError("DUPLICATE_NAME", `${at} appears twice`);
    names.add(tensor.name);
    const bytes = expectedBytes(tensor, at);
    if (tensor.byteLength !== bytes) {
      throw new QansError("INVALID_ARGUMENT", `${at}: ${tensor.byteLength} bytes given but ${tensor.dtype} [${tensor.shape.join(", ")}] needs ${bytes}`);
    }
    const end = offset + bytes;
    if (!Number.isSafeInteger(end)) throw new QansError("LIMIT_EXCEEDED", `${at}: data section exceeds 2^53 bytes`);
    // Hand-built so that tensor order survives: JS objects would move integer-like names first.
    members.push(`${JSON.stringify(tensor.name)}:{"dtype":"${tensor.dtype}","shape":[${tensor.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${members.join(",")}}`);
  const length = Math.ceil(json.byteLength / 8) * 8;
  if (length > SAFETENSORS_MAX_HEADER_LENGTH) {
    throw new QansError("LIMIT_EXCEEDED", `safetensors header of ${length} bytes exceeds ${SAFETENSORS_MAX_HEADER_LENGTH}`);
  }
  const out = new Uint8Array(8 + length).fill(0x20, 8 + json.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.set(json, 8);
  return out;
}

function sameLayout(tensor: TensorData, layout: TensorLayout): boolean {
  return (
    tensor.name === layout.name &&
    tensor.dtype === layout.dtype &&
    tensor.shape.length === layout.shape.length &&
    tensor.shape.every((d, i) => d === layout.shape[i])
  );
}

/**
 * Writes a safetensors file atomically. With an array, its tensors define the layout. With an
 * iterable, the header must be written before any data arrives, so `layout` gives every tensor's
 * name, dtype and shape up front, and each arriving tensor must match its entry in order.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorData[] | Iterable<TensorData> | AsyncIterable<TensorData>,
  metadata: Record<string, string> = {},
  layout?: readonly TensorLayout[],
): Promise<void> {
  const plan = layout ?? (Array.isArray(tensors) ? (tensors as readonly TensorData[]) : undefined);
  if (plan === undefined) throw new QansError("INVALID_ARGUMENT", `${path}: writing tensors from an iterable needs a layout`);
  const header = encodeSafetensorsHeader(
    plan.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: expectedBytes(t, `${path}: tensor ${JSON.stringify(t.name)}`) })),
    metadata,
  );
  const sink = await AtomicFileSink.create(path);
  try {
    await sink.write(header);
    let count = 0;
    for await (const tensor of tensors) {
      const expected = plan[count];
      const at = `${path}: tensor #${count} ${JSON.stringify(tensor?.name)}`;
      if (typeof tensor !== "object" || tensor === null) throw new QansError("INVALID_ARGUMENT", `${at} is not a tensor`);
      if (expected === undefined) throw new QansError("INVALID_ARGUMENT", `${at} is beyond the ${plan.length} in the layout`);
      if (!sameLayout(tensor, expected)) {
        throw new QansError("INVALID_ARGUMENT", `${at} does not match layout entry ${JSON.stringify(expected.name)} ${expected.dtype} [${expected.shape.join(", ")}]`);
      }
      const bytes = expectedBytes(expected, at);
      if (!(tensor.data instanceof Uint8Array) || tensor.data.byteLength !== bytes) {
        throw new QansError("INVALID_ARGUMENT", `${at}: data has ${tensor.data?.byteLength} bytes, expected ${bytes}`);
      }
      await sink.write(tensor.data);
      count++;
    }
    if (count !== plan.length) throw new QansError("INVALID_ARGUMENT", `${path}: ${count} tensors arrived but the layout lists ${plan.length}`);
    await sink.commit();
  } catch (error) {
    await sink.abort().catch(() => undefined);
    throw asQansError(error, `writing ${path}`);
  }
}
