import { QansError } from "../errors.js";

/**
 * Exact IEEE-754 conversions between binary32 and the 16-bit float formats F16 (binary16) and
 * BF16 (bfloat16). Everything is done on bit patterns with integer arithmetic, so results do not
 * depend on how the engine treats NaN payloads in floating-point registers.
 *
 * Functions that take a JS `number` first round it to binary32 with Math.fround. Rounding
 * binary64 → binary32 → F16/BF16 gives the same result as rounding binary64 directly, because
 * binary32 has at least 2p + 2 significand bits for both 11- and 8-bit targets (double rounding is
 * innocuous), and binary32's exponent range covers both formats.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The binary32 bit pattern of `Math.fround(x)`. */
export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The binary32 value with bit pattern `bits` (NaN payloads may not survive as a JS number). */
export function bitsToF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

/** F16 bit pattern → binary32 bit pattern. Exact; NaN payloads move to the top mantissa bits. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // Subnormal F16 values are normal in binary32: shift the leading one into the hidden bit.
    let e = -14;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    return (sign | ((e + 127) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

/**
 * binary32 bit pattern → F16 bit pattern, rounding to nearest with ties to even. Overflow gives
 * ±infinity; a NaN stays NaN with the quiet bit set and the payload's top bits kept.
 */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // A carry out of the mantissa bumps the exponent, which is the correct result, and turns
    // 0x7bff + 1 into 0x7c00 (infinity) for values at or above 65520.
    const base = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    const up = rest > 0x1000 || (rest === 0x1000 && (base & 1) === 1) ? 1 : 0;
    return sign | (base + up);
  }
  // Result is subnormal (or zero) in F16: its unit is 2^-24, and value / 2^-24 = m · 2^(e + 1)
  // with the full 24-bit significand m.
  const shift = -1 - e;
  if (shift > 24) return sign;
  const m = mant | 0x800000;
  const q = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  const up = rest > half || (rest === half && (q & 1) === 1) ? 1 : 0;
  return sign | (q + up);
}

/** BF16 bit pattern → binary32 bit pattern (exact: BF16 is the top half of binary32). */
export function bf16BitsToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

/** binary32 bit pattern → BF16 bit pattern, RNE; NaN stays NaN (quiet bit set). */
export function f32BitsToBf16Bits(bits: number): number {
  const b = bits >>> 0;
  // A NaN whose payload lives only in the low 16 bits would truncate to infinity.
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40;
  // Never exceeds 2^32: the largest non-NaN pattern is 0xff800000.
  return ((b + 0x7fff + ((b >>> 16) & 1)) / 0x10000) >>> 0;
}

/** The F16 value with bit pattern `h`, as a number (exactly representable in binary32). */
export function f16BitsToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h));
}

/** `x` rounded to the nearest F16 (ties to even), as an F16 bit pattern. */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32ToBits(x));
}

/** The BF16 value with bit pattern `h`, as a number. */
export function bf16BitsToF32(h: number): number {
  return bitsToF32(bf16BitsToF32Bits(h));
}

/** `x` rounded to the nearest BF16 (RNE on the binary32 bit pattern), as a BF16 bit pattern. */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32ToBits(x));
}

/** Largest finite F16 value. */
export const F16_MAX = 65504;

function checkRoundUpArgument(x: number, fn: string): void {
  if (Number.isNaN(x)) throw new QansError("INVALID_ARGUMENT", `${fn}: argument is NaN`);
}

/**
 * The smallest F16 value ≥ x for x ≥ 0, or Infinity when x > 65504. Used to round scales up so
 * that quantisation never clamps an element.
 */
export function roundUpToF16(x: number): number {
  checkRoundUpArgument(x, "roundUpToF16");
  if (!(x >= 0)) throw new QansError("INVALID_ARGUMENT", `roundUpToF16: argument ${x} is negative`);
  if (x === 0) return 0;
  if (x > F16_MAX) return Infinity;
  // The nearest F16 is either ≥ x already or the next one up is; x > 0 so stepping the bit
  // pattern by one moves away from zero.
  const h = f32ToF16Bits(x);
  const v = f16BitsToF32(h);
  return v >= x ? v : f16BitsToF32(h + 1);
}

/** The smallest binary32 value ≥ x (Infinity above the binary32 range). */
export function roundUpToF32(x: number): number {
  checkRoundUpArgument(x, "roundUpToF32");
  const f = Math.fround(x);
  if (f >= x) return f;
  // f < x, so f is finite or −infinity; step one ulp towards +infinity.
  if (f === 0) return bitsToF32(1);
  const bits = f32ToBits(f);
  return bitsToF32(f > 0 ? bits + 1 : bits - 1);
}
