import { QansError } from "../errors.js";
import type { DType } from "../tensor/dtype.js";

/** NumPy's little-endian type strings; BF16 and the F8 types have none. */
const NPY_DESCR: Partial<Record<DType, string>> = {
  F64: "<f8",
  F32: "<f4",
  F16: "<f2",
  I64: "<i8",
  I32: "<i4",
  I16: "<i2",
  I8: "|i1",
  U8: "|u1",
  BOOL: "|b1",
  U16: "<u2",
  U32: "<u4",
  U64: "<u8",
};

/**
 * The header of a NumPy .npy file (format version 1.0) for a C-ordered array of this dtype and
 * shape: magic, version, header length, then the dictionary padded with spaces and a newline so
 * that the data starts at a multiple of 64 bytes. Throws INVALID_ARGUMENT for a dtype NumPy lacks.
 */
export function npyHeader(dtype: DType, shape: readonly number[]): Uint8Array {
  const descr = NPY_DESCR[dtype];
  if (!descr) throw new QansError("INVALID_ARGUMENT", `NumPy has no ${dtype} type; write it as f32 or raw`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const prefix = 10;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) throw new QansError("INVALID_ARGUMENT", `a .npy 1.0 header cannot hold shape [${shape.join(", ")}]`);
  const text = dict.padEnd(total - prefix - 1, " ") + "\n";
  const out = new Uint8Array(total);
  out.set([0x93, ...Buffer.from("NUMPY"), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, total - prefix, true);
  out.set(Buffer.from(text, "latin1"), prefix);
  return out;
}
