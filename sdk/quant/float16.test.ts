import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  bf16BitsToF32,
  bitsToF32,
  f16BitsToF32,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16Bits,
  f32ToBits,
  f32ToF16Bits,
  roundUpToF16,
  roundUpToF32,
} from "./float16.js";

const isF16NaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16NaN = (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;

/** Value of an F16 pattern from the textbook formula, independent of the bit tricks. */
function f16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** All finite non-negative F16 values in increasing order. */
const F16_POSITIVE: number[] = [];
for (let h = 0; h < 0x7c00; h++) F16_POSITIVE.push(f16Reference(h));

describe("F16", () => {
  it("decodes every one of the 65536 patterns to the textbook value", () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      const want = f16Reference(h);
      const same = Number.isNaN(want) ? Number.isNaN(x) : Object.is(x, want) && Object.is(Math.fround(x), x);
      if (!same) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it("round-trips every one of the 65536 patterns through binary32", () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const back = f32ToF16Bits(f16BitsToF32(h));
      if (isF16NaN(h) ? !isF16NaN(back) : back !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it("keeps NaN payloads on the bit-pattern path and quiets signalling NaNs", () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      if (isF16NaN(h) && f32BitsToF16Bits(f16BitsToF32Bits(h)) !== (h | 0x200)) bad.push(h);
    }
    expect(bad).toEqual([]);
    expect(f32BitsToF16Bits(0x7f800001)).toBe(0x7e00);
    expect(f32BitsToF16Bits(0xffc00000)).toBe(0xfe00);
    expect(isF16NaN(f32ToF16Bits(NaN))).toBe(true);
  });

  it("rounds ties to even", () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(f32ToF16Bits(1 + 2 ** -11 - 2 ** -20)).toBe(0x3c00);
    expect(f32ToF16Bits(-(1 + 3 * 2 ** -11))).toBe(0xbc02);
    // The mantissa carry moves to the next binade: 2 − 2^-11 is halfway between 0x3bff and 2.
    expect(f32ToF16Bits(2 - 2 ** -11)).toBe(0x4000);
  });

  it("handles subnormals, the subnormal/normal boundary and underflow", () => {
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000);
    expect(f32ToF16Bits(-(2 ** -25))).toBe(0x8000);
    expect(f32ToF16Bits(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002);
    expect(f32ToF16Bits(5 * 2 ** -25)).toBe(0x0002);
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400);
    expect(f32ToF16Bits(1022.5 * 2 ** -24)).toBe(0x03fe);
    expect(f32ToF16Bits(2 ** -14)).toBe(0x0400);
    expect(f32ToF16Bits(bitsToF32(1))).toBe(0x0000);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(0)).toBe(0x0000);
  });

  it("overflows to infinity exactly at 65520", () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-65520)).toBe(0xfc00);
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
  });

  it("rounds any binary32 value to the nearest F16, ties to even", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        const x = bitsToF32(bits);
        const h = f32BitsToF16Bits(bits);
        if (Number.isNaN(x)) return isF16NaN(h);
        const ax = Math.abs(x);
        if (ax >= 65520) return (h & 0x7fff) === 0x7c00 && (h & 0x8000) === (bits >>> 16 & 0x8000);
        const mag = h & 0x7fff;
        const v = F16_POSITIVE[mag];
        const below = mag > 0 ? F16_POSITIVE[mag - 1] : -Infinity;
        const above = mag + 1 < F16_POSITIVE.length ? F16_POSITIVE[mag + 1] : 65536;
        const err = Math.abs(ax - v);
        if (err > Math.abs(ax - below) || err > Math.abs(ax - above)) return false;
        if (err === Math.abs(ax - above) && err !== 0 && (mag & 1) === 1) return false;
        if (err === Math.abs(ax - below) && err !== 0 && (mag & 1) === 1) return false;
        return (h & 0x8000) === ((bits >>> 16) & 0x8000);
      }),
      { numRuns: 200_000 },
    );
  });
});

describe("BF16", () => {
  it("round-trips every one of the 65536 patterns through binary32", () => {
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const x = bf16BitsToF32(h);
      const back = f32ToBf16Bits(x);
      const ok = isBf16NaN(h)
        ? Number.isNaN(x) && isBf16NaN(back)
        : f32ToBits(x) === h * 0x10000 && back === h;
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it("rounds the binary32 pattern to nearest, ties to even", () => {
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80);
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82);
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81);
    expect(f32BitsToBf16Bits(0x3f807fff)).toBe(0x3f80);
    expect(f32BitsToBf16Bits(0xbf818000)).toBe(0xbf82);
    expect(f32BitsToBf16Bits(0x3fff8000)).toBe(0x4000);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });

  it("overflows to infinity at the halfway point above the largest finite value", () => {
    expect(f32BitsToBf16Bits(0x7f7f7fff)).toBe(0x7f7f);
    expect(f32BitsToBf16Bits(0x7f7f8000)).toBe(0x7f80);
    expect(f32BitsToBf16Bits(0xff7f8000)).toBe(0xff80);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80);
    expect(f32BitsToBf16Bits(0x7f800000)).toBe(0x7f80);
    expect(f32BitsToBf16Bits(0xff800000)).toBe(0xff80);
  });

  it("keeps NaN a NaN even when its payload is only in the low half", () => {
    expect(f32BitsToBf16Bits(0x7f800001)).toBe(0x7fc0);
    expect(f32BitsToBf16Bits(0xff800001)).toBe(0xffc0);
    expect(f32BitsToBf16Bits(0x7fc00001)).toBe(0x7fc0);
    expect(f32BitsToBf16Bits(0x7fffffff)).toBe(0x7fff);
    expect(isBf16NaN(f32ToBf16Bits(NaN))).toBe(true);
  });

  it("keeps subnormals and signed zeros", () => {
    expect(f32BitsToBf16Bits(0x00010000)).toBe(0x0001);
    expect(f32BitsToBf16Bits(0x00008000)).toBe(0x0000);
    expect(f32BitsToBf16Bits(0x00018000)).toBe(0x0002);
    expect(f32BitsToBf16Bits(0x80000000)).toBe(0x8000);
  });
});

describe("roundUpToF16", () => {
  it("is the identity on F16 values and steps to the next one just above", () => {
    const bad: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const v = F16_POSITIVE[h];
      const next = F16_POSITIVE[h + 1];
      const ok =
        roundUpToF16(v) === v &&
        roundUpToF16(v + (next - v) * 2 ** -20) === next &&
        roundUpToF16((v + next) / 2) === next &&
        roundUpToF16(next - (next - v) * 2 ** -20) === next;
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it("returns Infinity above 65504 and the smallest subnormal for tiny values", () => {
    expect(roundUpToF16(65504)).toBe(65504);
    expect(roundUpToF16(65504.000001)).toBe(Infinity);
    expect(roundUpToF16(65519)).toBe(Infinity);
    expect(roundUpToF16(1e9)).toBe(Infinity);
    expect(roundUpToF16(Infinity)).toBe(Infinity);
    expect(roundUpToF16(1e-30)).toBe(2 ** -24);
    expect(roundUpToF16(2 ** -25)).toBe(2 ** -24);
    expect(Object.is(roundUpToF16(0), 0)).toBe(true);
    expect(Object.is(roundUpToF16(-0), 0)).toBe(true);
  });

  it("rounds binary64 inputs up, not to nearest via binary32", () => {
    // 1 + 2^-40 rounds to 1 in binary32; the result must still be ≥ x.
    expect(roundUpToF16(1 + 2 ** -40)).toBe(1 + 2 ** -10);
  });

  it("rejects negative and NaN input", () => {
    expect(() => roundUpToF16(-1)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => roundUpToF16(NaN)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});

describe("roundUpToF32", () => {
  it("is the identity on binary32 values", () => {
    for (const x of [0, 1, 0.1, 65504, 3.4028234663852886e38, bitsToF32(1), -2.5]) {
      expect(roundUpToF32(Math.fround(x))).toBe(Math.fround(x));
    }
  });

  it("returns the smallest binary32 value ≥ x", () => {
    expect(roundUpToF32(1 + 2 ** -30)).toBe(1 + 2 ** -23);
    expect(roundUpToF32(1 + 2 ** -23 - 2 ** -40)).toBe(1 + 2 ** -23);
    expect(roundUpToF32(1e-50)).toBe(2 ** -149);
    expect(roundUpToF32(-1 - 2 ** -30)).toBe(-1);
    expect(roundUpToF32(3.4028234663852886e38 + 1e30)).toBe(Infinity);
    fc.assert(
      fc.property(fc.double({ min: -1e38, max: 1e38, noNaN: true }), (x) => {
        const r = roundUpToF32(x);
        if (Math.fround(r) !== r || r < x) return false;
        // The binary32 value one step below r is < x.
        const bits = f32ToBits(r);
        const below = r > 0 ? bitsToF32(bits - 1) : r === 0 ? -(2 ** -149) : bitsToF32(bits + 1);
        return below < x;
      }),
      { numRuns: 50_000 },
    );
  });
});
