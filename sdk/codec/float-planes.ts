import { QansError } from "../errors.js";
import { isFloatPlaneDType, type DType } from "../tensor/dtype.js";

/**
 * The `float-planes` encoding (spec §8.2): each value's bits are split into an exponent plane and
 * mantissa planes, sign in the top bit of the last plane. Everything works on the little-endian
 * bytes directly, so it is host-endian independent and needs no alignment. Inputs may be any
 * contiguous run of elements, which lets a reader merge one block at a time.
 */

const WIDTHS = {
  BF16: [8, 8],
  F16: [5, 8, 3],
  F32: [8, 8, 8, 8],
} as const;

const SIZES = { BF16: 2, F16: 2, F32: 4 } as const;

function planeDType(dtype: DType): "F32" | "F16" | "BF16" {
  if (!isFloatPlaneDType(dtype)) throw new QansError("BAD_DTYPE", `float-planes does not allow dtype ${dtype}`);
  return dtype;
}

/** Symbol width of each plane's stream, in stream order. */
export function floatPlaneWidths(dtype: DType): number[] {
  return [...WIDTHS[planeDType(dtype)]];
}

/** Splits little-endian element bytes into one plane per stream, each with one symbol per element. */
export function splitFloatPlanes(dtype: DType, bytes: Uint8Array): Uint8Array[] {
  const dt = planeDType(dtype);
  const size = SIZES[dt];
  if (bytes.length % size !== 0) {
    throw new QansError("INVALID_ARGUMENT", `float-planes: ${bytes.length} bytes is not a whole number of ${dt} values`);
  }
  const n = bytes.length / size;
  switch (dt) {
    case "BF16": {
      const p0 = new Uint8Array(n);
      const p1 = new Uint8Array(n);
      for (let i = 0, k = 0; i < n; i++, k += 2) {
        const b0 = bytes[k];
        const b1 = bytes[k + 1];
        p0[i] = (b1 << 1) | (b0 >>> 7);
        p1[i] = (b1 & 0x80) | (b0 & 0x7f);
      }
      return [p0, p1];
    }
    case "F16": {
      const p0 = new Uint8Array(n);
      const p1 = new Uint8Array(n);
      const p2 = new Uint8Array(n);
      for (let i = 0, k = 0; i < n; i++, k += 2) {
        const b1 = bytes[k + 1];
        p0[i] = (b1 >>> 2) & 0x1f;
        p1[i] = bytes[k];
        p2[i] = ((b1 >>> 5) & 0x4) | (b1 & 0x3);
      }
      return [p0, p1, p2];
    }
    case "F32": {
      const p0 = new Uint8Array(n);
      const p1 = new Uint8Array(n);
      const p2 = new Uint8Array(n);
      const p3 = new Uint8Array(n);
      for (let i = 0, k = 0; i < n; i++, k += 4) {
        const b2 = bytes[k + 2];
        const b3 = bytes[k + 3];
        p0[i] = (b3 << 1) | (b2 >>> 7);
        p1[i] = bytes[k];
        p2[i] = bytes[k + 1];
        p3[i] = (b3 & 0x80) | (b2 & 0x7f);
      }
      return [p0, p1, p2, p3];
    }
  }
}

/**
 * Inverts {@link splitFloatPlanes}: writes `planes[0].length` elements to `out`, which must be
 * exactly that many elements long. Only the low `width` bits of each symbol are used; decoded
 * streams never carry more.
 */
export function mergeFloatPlanes(dtype: DType, planes: Uint8Array[], out: Uint8Array): void {
  const dt = planeDType(dtype);
  const size = SIZES[dt];
  const count = WIDTHS[dt].length;
  if (planes.length !== count) {
    throw new QansError("INVALID_ARGUMENT", `float-planes: ${dt} needs ${count} planes, got ${planes.length}`);
  }
  const n = planes[0].length;
  for (let p = 1; p < count; p++) {
    if (planes[p].length !== n) {
      throw new QansError("INVALID_ARGUMENT", `float-planes: plane ${p} has ${planes[p].length} symbols, plane 0 has ${n}`);
    }
  }
  if (out.length !== n * size) {
    throw new QansError("INVALID_ARGUMENT", `float-planes: output has ${out.length} bytes, ${n} ${dt} values need ${n * size}`);
  }
  switch (dt) {
    case "BF16": {
      const [p0, p1] = planes;
      for (let i = 0, k = 0; i < n; i++, k += 2) {
        const s0 = p0[i];
        const s1 = p1[i];
        out[k] = ((s0 & 1) << 7) | (s1 & 0x7f);
        out[k + 1] = (s1 & 0x80) | (s0 >>> 1);
      }
      return;
    }
    case "F16": {
      const [p0, p1, p2] = planes;
      for (let i = 0, k = 0; i < n; i++, k += 2) {
        const s2 = p2[i];
        out[k] = p1[i];
        out[k + 1] = ((s2 & 0x4) << 5) | ((p0[i] & 0x1f) << 2) | (s2 & 0x3);
      }
      return;
    }
    case "F32": {
      const [p0, p1, p2, p3] = planes;
      for (let i = 0, k = 0; i < n; i++, k += 4) {
        const s0 = p0[i];
        const s3 = p3[i];
        out[k] = p1[i];
        out[k + 1] = p2[i];
        out[k + 2] = ((s0 & 1) << 7) | (s3 & 0x7f);
        out[k + 3] = (s3 & 0x80) | (s0 >>> 1);
      }
      return;
    }
  }
}
