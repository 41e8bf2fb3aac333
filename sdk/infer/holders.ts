import { QansError } from "../errors.js";
import type { IndexEntry } from "../format/index-frame.js";
import { matrixShape } from "../format/layout.js";
import { decodeTensorHeader } from "../format/tensor-header.js";
import type { TensorFrameBytes } from "../reader.js";
import { decodeFrameStreams } from "../tensor/frame-decode.js";
import { reconstructFloat32 } from "../tensor/reconstruct.js";
import { elementCount } from "../tensor/tensor.js";
import type { LinearWeight } from "./linear.js";
import { CompressedWeight } from "./linear-compressed.js";
import { F32Weight } from "./linear-f32.js";
import { SymbolWeight } from "./linear-int8.js";
import { quantParamBytes } from "./symbol-rows.js";

/**
 * The three ways to hold a weight matrix, fastest and largest first: decoded binary32 (`f32`), the
 * int-quant symbols one byte each (`int8`), or the tensor frame as stored (`compressed`).
 */
export type HolderKind = "f32" | "int8" | "compressed";

export const HOLDER_KINDS: readonly HolderKind[] = ["f32", "int8", "compressed"];

/** The kinds a stored tensor allows: all three for int-quant, decoded F32 only for the others. */
export function holderKinds(entry: Pick<IndexEntry, "encoding">): HolderKind[] {
  return entry.encoding === "int-quant" ? [...HOLDER_KINDS] : ["f32"];
}

/**
 * The bytes each allowed kind keeps resident for a tensor, exactly as its holder's `residentBytes`
 * will be: F32 four bytes a weight; int8 one byte a weight; compressed the frame; the last two
 * also the quantisation parameters in binary32. Int-quant tensors need their frame (for the
 * parameters' size, from its header); other tensors only their index entry.
 */
export function holderBytes(entry: IndexEntry, frame?: Uint8Array): Partial<Record<HolderKind, number>> {
  const elements = elementCount(entry.shape);
  if (entry.encoding !== "int-quant") return { f32: elements * 4 };
  if (!frame) throw new QansError("INVALID_ARGUMENT", `tensor "${entry.name}": the sizes of its int-quant holders need its frame`);
  const params = quantParamBytes(decodeTensorHeader(frame.subarray(0, entry.headerLength), entry.frameOffset).quant!);
  return { f32: elements * 4, int8: elements + params, compressed: entry.frameLength + params };
}

/** Builds the holder of `kind` from a tensor's frame (`ModelReader.readFrame`), checking the frame as a reader does. */
export async function buildHolder(kind: HolderKind, frameBytes: TensorFrameBytes): Promise<LinearWeight> {
  const { entry, frame, fileSize } = frameBytes;
  const where = `tensor "${entry.name}"`;
  if (!holderKinds(entry).includes(kind)) {
    throw new QansError("INVALID_ARGUMENT", `${where} is stored ${entry.encoding}: it can only be held as ${holderKinds(entry).join(" or ")}, not ${kind}`);
  }
  if (kind === "compressed") return CompressedWeight.fromFrame(frameBytes, where);
  const { header, streams } = await decodeFrameStreams(frame, entry.frameOffset, fileSize, entry);
  const { rows, cols } = matrixShape(header.shape, header.elements);
  if (kind === "int8") return new SymbolWeight(rows, cols, header.quant!, streams[0], where);
  return new F32Weight(rows, cols, reconstructFloat32(header, streams), where);
}
