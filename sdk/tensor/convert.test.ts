import { describe, expect, it } from "vitest";
import { fromFloat32, toFloat32 } from "./convert.js";
import { f16BitsToF32, f32ToBits } from "../quant/float16.js";
import type { DType } from "./dtype.js";

/** Bytes placed at an odd offset of a larger buffer, so typed-array views over them are illegal. */
function unaligned(bytes: number[] | Uint8Array): Uint8Array {
  const buffer = new Uint8Array(bytes.length + 3);
  buffer.set(bytes, 1);
  return buffer.subarray(1, 1 + bytes.length);
}

function bitsOf(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

function f32FromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

describe("toFloat32", () => {
  it("reads little-endian F32 bytes bit for bit, NaN payloads included", () => {
    const bytes = [0x00, 0x00, 0x80, 0x3f, 0x01, 0x00, 0xc0, 0x7f, 0xff, 0xff, 0xbf, 0xff, 0x00, 0x00, 0x00, 0x80];
    expect(bitsOf(toFloat32("F32", new Uint8Array(bytes)))).toEqual([0x3f800000, 0x7fc00001, 0xffbfffff, 0x80000000]);
    expect(bitsOf(toFloat32("F32", unaligned(bytes)))).toEqual([0x3f800000, 0x7fc00001, 0xffbfffff, 0x80000000]);
  });

  it("reads little-endian F16 and BF16 bytes, aligned or not", () => {
    for (const input of [new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c]), unaligned([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c])]) {
      expect(Array.from(toFloat32("F16", input))).toEqual([1, -2, 2 ** -24, Infinity]);
    }
    for (const input of [new Uint8Array([0x80, 0x3f, 0x00, 0xc0, 0x80, 0xff]), unaligned([0x80, 0x3f, 0x00, 0xc0, 0x80, 0xff])]) {
      expect(Array.from(toFloat32("BF16", input))).toEqual([1, -2, -Infinity]);
    }
  });

  it("converts every F16 pattern exactly and widens NaN payloads bit-exactly", () => {
    const bytes = new Uint8Array(65536 * 2);
    for (let h = 0; h < 65536; h++) {
      bytes[2 * h] = h & 0xff;
      bytes[2 * h + 1] = h >>> 8;
    }
    const values = toFloat32("F16", unaligned(bytes));
    const bits = bitsOf(values);
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      const ok = isNaN
        ? bits[h] === ((((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0)
        : Object.is(values[h], f16BitsToF32(h));
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it("rounds F64 to nearest even", () => {
    const view = new DataView(new ArrayBuffer(5 * 8));
    const inputs = [1 + 2 ** -24, 1 + 3 * 2 ** -24, 0.1, 1e300, -0];
    inputs.forEach((x, i) => view.setFloat64(i * 8, x, true));
    const out = toFloat32("F64", unaligned(new Uint8Array(view.buffer)));
    expect(Array.from(out)).toEqual([1, 1 + 2 ** -22, Math.fround(0.1), Infinity, -0]);
    expect(Object.is(out[4], -0)).toBe(true);
  });

  it("rejects other dtypes with BAD_DTYPE and ragged lengths with INVALID_ARGUMENT", () => {
    for (const dtype of ["I8", "U8", "I32", "BOOL", "F8_E4M3", "U64"] as DType[]) {
      expect(() => toFloat32(dtype, new Uint8Array(8))).toThrow(expect.objectContaining({ code: "BAD_DTYPE" }));
    }
    expect(() => toFloat32("F32", new Uint8Array(6))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => toFloat32("F16", new Uint8Array(3))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => toFloat32("F64", new Uint8Array(12))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("returns a copy, not a view of the input", () => {
    const bytes = new Uint8Array([0x00, 0x00, 0x80, 0x3f]);
    const out = toFloat32("F32", bytes);
    bytes[3] = 0;
    expect(out[0]).toBe(1);
  });
});

describe("fromFloat32", () => {
  const special = f32FromBits([0x3f800000, 0x7fc00001, 0xffbfffff, 0x80000000, 0x00000001, 0x7f800000, 0x3f808000, 0x477ff000]);

  it("writes little-endian F32 bit for bit", () => {
    const bytes = fromFloat32("F32", special);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x00, 0x00, 0x80, 0x3f, 0x01, 0x00, 0xc0, 0x7f]);
    expect(bitsOf(toFloat32("F32", bytes))).toEqual(bitsOf(special));
  });

  it("rounds to F16 to nearest even, overflowing to infinity and keeping NaN", () => {
    const bytes = fromFloat32("F16", special);
    const halves = Array.from({ length: special.length }, (_, i) => bytes[2 * i] | (bytes[2 * i + 1] << 8));
    // 0x477ff000 is 65520, the first value that rounds to infinity.
    expect(halves).toEqual([0x3c00, 0x7e00, 0xffff, 0x8000, 0x0000, 0x7c00, 0x3c04, 0x7c00]);
    const ties = fromFloat32("F16", new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11]));
    expect(Array.from(ties)).toEqual([0x00, 0x3c, 0x02, 0x3c]);
  });

  it("rounds to BF16 to nearest even and keeps NaN", () => {
    const bytes = fromFloat32("BF16", f32FromBits([0x3f808000, 0x3f818000, 0x7f800001, 0x7f7f8000, 0x3f808001]));
    const halves = Array.from({ length: 5 }, (_, i) => bytes[2 * i] | (bytes[2 * i + 1] << 8));
    expect(halves).toEqual([0x3f80, 0x3f82, 0x7fc0, 0x7f80, 0x3f81]);
  });

  it("round-trips every F16 and BF16 pattern except that NaNs only stay NaN", () => {
    for (const dtype of ["F16", "BF16"] as const) {
      const bytes = new Uint8Array(65536 * 2);
      for (let h = 0; h < 65536; h++) {
        bytes[2 * h] = h & 0xff;
        bytes[2 * h + 1] = h >>> 8;
      }
      const back = fromFloat32(dtype, toFloat32(dtype, bytes));
      const bad: number[] = [];
      for (let h = 0; h < 65536; h++) {
        const got = back[2 * h] | (back[2 * h + 1] << 8);
        const nanMask = dtype === "F16" ? [0x7c00, 0x3ff] : [0x7f80, 0x7f];
        const isNaN = (v: number) => (v & nanMask[0]) === nanMask[0] && (v & nanMask[1]) !== 0;
        if (isNaN(h) ? !isNaN(got) : got !== h) bad.push(h);
      }
      expect(bad).toEqual([]);
    }
  });

  it("works on a Float32Array view with a byte offset", () => {
    const base = new Float32Array([9, 1, -2, 9]);
    expect(Array.from(fromFloat32("F32", base.subarray(1, 3)))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    expect(Array.from(fromFloat32("BF16", base.subarray(1, 3)))).toEqual([0x80, 0x3f, 0x00, 0xc0]);
  });

  it("rejects other dtypes with BAD_DTYPE", () => {
    for (const dtype of ["F64", "I8", "U16", "I64"] as DType[]) {
      expect(() => fromFloat32(dtype, new Float32Array(2))).toThrow(expect.objectContaining({ code: "BAD_DTYPE" }));
    }
  });

  it("matches f32ToBits for plain values", () => {
    const values = new Float32Array([Math.PI, -1e-40, 3e38]);
    const bytes = fromFloat32("F32", values);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < values.length; i++) expect(view.getUint32(4 * i, true)).toBe(f32ToBits(values[i]));
  });
});
