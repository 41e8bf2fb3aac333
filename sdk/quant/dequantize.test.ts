import { describe, expect, it } from "vitest";
import { dequantize, validateQuantParams } from "./dequantize.js";
import { quantizeRtn, type QuantParams } from "./rtn.js";
import { f16BitsToF32 } from "./float16.js";
import { Random } from "../testing/random.js";

/**
 * Spec §8.3 written out literally: every intermediate is stored to a one-element Float32Array,
 * which is exactly a binary32 round-to-nearest-even of the double-precision operation.
 */
function specReference(params: QuantParams, symbols: Uint8Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const groups = params.groupSize === 0 ? 1 : Math.ceil(cols / params.groupSize);
  const a = new Float32Array(1);
  const d = new Float32Array(1);
  const p = new Float32Array(1);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const g = params.groupSize === 0 ? 0 : Math.floor(j / params.groupSize);
      const z = params.asymmetric ? params.zeroPoints![i * groups + g] : 2 ** (params.bits - 1);
      a[0] = symbols[i * cols + j] - z;
      d[0] = params.deltas[i * groups + g];
      p[0] = a[0] * d[0];
      if (params.inputScale) p[0] = p[0] / params.inputScale[j];
      out[i * cols + j] = p[0];
    }
  }
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Random but valid parameters: symbols anywhere in [0, 2^b), deltas over many binades. */
function randomCase(seed: number, bits: number, rows: number, cols: number, groupSize: number, asymmetric: boolean, withScale: boolean, scaleType: "F16" | "F32") {
  const random = new Random(seed);
  const groups = groupSize === 0 ? 1 : Math.ceil(cols / groupSize);
  const deltas = new Float32Array(rows * groups);
  for (let k = 0; k < deltas.length; k++) {
    if (scaleType === "F16") deltas[k] = f16BitsToF32(random.int(0x7c00));
    else deltas[k] = Math.fround(2 ** (40 * random.next() - 30) * (1 + random.next()));
  }
  const params: QuantParams = { bits, asymmetric, groupSize, scaleType, deltas };
  if (asymmetric) params.zeroPoints = Uint8Array.from({ length: rows * groups }, () => random.int(2 ** bits));
  if (withScale) params.inputScale = Float32Array.from({ length: cols }, () => Math.fround(2 ** (20 * random.next() - 10) * (1 + random.next())));
  const symbols = Uint8Array.from({ length: rows * cols }, () => random.int(2 ** bits));
  return { params, symbols };
}

describe("dequantize", () => {
  it("equals a literal Float32Array implementation of spec §8.3 bit for bit", () => {
    let seed = 1;
    const mismatches: string[] = [];
    for (let bits = 2; bits <= 8; bits++) {
      for (const [cols, groupSize] of [[64, 0], [100, 32], [100, 128], [17, 1], [256, 128]]) {
        for (const asymmetric of [false, true]) {
          for (const withScale of [false, true]) {
            for (const scaleType of ["F16", "F32"] as const) {
              const rows = 5;
              const { params, symbols } = randomCase(seed++, bits, rows, cols, groupSize, asymmetric, withScale, scaleType);
              validateQuantParams(params, rows, cols, "random case");
              if (!sameBits(dequantize(params, symbols, rows, cols), specReference(params, symbols, rows, cols))) {
                mismatches.push(`b=${bits} cols=${cols} G=${groupSize} asym=${asymmetric} s=${withScale} ${scaleType}`);
              }
            }
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("int8 and int4 quantiser output dequantises to the literal spec result", () => {
    const random = new Random(99);
    const rows = 16;
    const cols = 100;
    const w = Float32Array.from({ length: rows * cols }, () => (random.next() - 0.5) * 0.1);
    const s = Float32Array.from({ length: cols }, () => Math.fround(0.25 + random.next() * 4));
    for (const bits of [8, 4]) {
      for (const asymmetric of [false, true]) {
        const { params, symbols } = quantizeRtn(w, rows, cols, { bits, asymmetric, groupSize: 32, inputScale: s });
        expect(sameBits(dequantize(params, symbols, rows, cols), specReference(params, symbols, rows, cols))).toBe(true);
      }
    }
  });

  it("divides by s_j rather than multiplying by its reciprocal", () => {
    // Find a product p and scale s where the two disagree, then check dequantize uses division.
    const random = new Random(5);
    let found: { d: number; s: number } | undefined;
    for (let t = 0; t < 100_000 && !found; t++) {
      const d = Math.fround(1 + random.next());
      const s = Math.fround(1 + random.next());
      if (Math.fround(d / s) !== Math.fround(d * Math.fround(1 / s))) found = { d, s };
    }
    expect(found).toBeDefined();
    const { d, s } = found!;
    const params: QuantParams = { bits: 2, asymmetric: false, groupSize: 0, scaleType: "F32", deltas: new Float32Array([d]), inputScale: new Float32Array([s]) };
    // u − z = 3 − 2 = 1, so p = d exactly.
    expect(dequantize(params, new Uint8Array([3]), 1, 1)[0]).toBe(Math.fround(d / s));
  });

  it("rounds the product to binary32 before dividing", () => {
    // With the product kept in binary64, (u − z)·δ / s can round differently.
    const random = new Random(11);
    let hit = false;
    for (let t = 0; t < 100_000 && !hit; t++) {
      const d = Math.fround(1 + random.next());
      const s = Math.fround(1 + random.next());
      const a = 127;
      const fused = Math.fround((a * d) / s);
      const spec = Math.fround(Math.fround(a * d) / s);
      if (fused === spec) continue;
      hit = true;
      const params: QuantParams = { bits: 8, asymmetric: false, groupSize: 0, scaleType: "F32", deltas: new Float32Array([d]), inputScale: new Float32Array([s]) };
      expect(dequantize(params, new Uint8Array([255]), 1, 1)[0]).toBe(spec);
    }
    expect(hit).toBe(true);
  });

  it("dequantises any contiguous slice (a block) identically to the whole tensor", () => {
    for (const [cols, groupSize, asymmetric, withScale] of [[100, 32, true, true], [100, 0, false, true], [64, 1, true, false], [7, 3, false, false]] as const) {
      const rows = 9;
      const { params, symbols } = randomCase(cols * 7 + groupSize, 4, rows, cols, groupSize, asymmetric, withScale, "F16");
      const whole = dequantize(params, symbols, rows, cols);
      for (const block of [1, 7, 31, 100, 333, rows * cols]) {
        const pieces = new Float32Array(rows * cols);
        for (let start = 0; start < rows * cols; start += block) {
          const end = Math.min(rows * cols, start + block);
          const part = dequantize(params, symbols.subarray(start, end), rows, cols, undefined, start);
          pieces.set(part, start);
        }
        expect(sameBits(pieces, whole)).toBe(true);
        // Writing into a caller-provided slice of a larger buffer.
        const target = new Float32Array(rows * cols);
        const start = Math.min(block, rows * cols - 1);
        dequantize(params, symbols.subarray(start), rows, cols, target.subarray(start), start);
        expect(sameBits(target.subarray(start), whole.subarray(start))).toBe(true);
      }
    }
  });

  it("decodes any symbol below 2^b, including 0 in a symmetric tensor", () => {
    const params: QuantParams = { bits: 4, asymmetric: false, groupSize: 0, scaleType: "F16", deltas: new Float32Array([0.5]) };
    expect(Array.from(dequantize(params, new Uint8Array([0, 8, 15]), 1, 3))).toEqual([-4, 0, 3.5]);
  });

  it("handles empty input and rejects slices outside the matrix or a wrong output size", () => {
    const params: QuantParams = { bits: 4, asymmetric: false, groupSize: 2, scaleType: "F16", deltas: new Float32Array(4).fill(1) };
    expect(dequantize(params, new Uint8Array(0), 2, 4).length).toBe(0);
    expect(dequantize(params, new Uint8Array(0), 0, 0).length).toBe(0);
    const invalid = expect.objectContaining({ code: "INVALID_ARGUMENT" });
    expect(() => dequantize(params, new Uint8Array(8), 2, 4, undefined, 1)).toThrow(invalid);
    expect(() => dequantize(params, new Uint8Array(4), 2, 4, new Float32Array(3))).toThrow(invalid);
    expect(() => dequantize(params, new Uint8Array(2), 2, 4, undefined, -1)).toThrow(invalid);
    expect(() => dequantize({ ...params, deltas: new Float32Array(3) }, new Uint8Array(8), 2, 4)).toThrow(invalid);
    expect(() => dequantize({ ...params, asymmetric: true }, new Uint8Array(8), 2, 4)).toThrow(invalid);
    expect(() => dequantize({ ...params, inputScale: new Float32Array(3).fill(1) }, new Uint8Array(8), 2, 4)).toThrow(invalid);
  });
});

describe("validateQuantParams", () => {
  const base = (): QuantParams => ({
    bits: 4,
    asymmetric: true,
    groupSize: 2,
    scaleType: "F16",
    deltas: new Float32Array([0.5, 0, 1, 2 ** -24, 65504, 3]),
    zeroPoints: new Uint8Array([0, 15, 7, 8, 1, 2]),
    inputScale: new Float32Array([1, 0.5, 2, 1e-30, 1e30]),
  });

  it("accepts valid parameters", () => {
    validateQuantParams(base(), 2, 5, "t");
    validateQuantParams({ ...base(), asymmetric: false, zeroPoints: undefined, inputScale: undefined }, 2, 5, "t");
    validateQuantParams({ ...base(), groupSize: 0, deltas: new Float32Array(2), zeroPoints: new Uint8Array(2) }, 2, 5, "t");
    validateQuantParams({ ...base(), scaleType: "F32", deltas: new Float32Array([0.1, 3e38, 1e-45, 0, 1, 2]) }, 2, 5, "t");
  });

  const cases: [string, (p: QuantParams) => void][] = [
    ["bits 1", (p) => (p.bits = 1)],
    ["bits 9", (p) => (p.bits = 9)],
    ["group size over 2^24", (p) => (p.groupSize = 2 ** 24 + 1)],
    ["negative group size", (p) => (p.groupSize = -1)],
    ["unknown scale type", (p) => (p.scaleType = "F8" as "F16")],
    ["NaN delta", (p) => (p.deltas[1] = NaN)],
    ["infinite delta", (p) => (p.deltas[1] = Infinity)],
    ["negative delta", (p) => (p.deltas[1] = -0.5)],
    ["delta not an F16 value", (p) => (p.deltas[1] = 0.1)],
    ["too few deltas", (p) => (p.deltas = p.deltas.subarray(1))],
    ["zero point 2^b", (p) => (p.zeroPoints![2] = 16)],
    ["missing zero points", (p) => (p.zeroPoints = undefined)],
    ["zero points on a symmetric tensor", (p) => (p.asymmetric = false)],
    ["too many zero points", (p) => (p.zeroPoints = new Uint8Array(7))],
    ["zero input scale", (p) => (p.inputScale![0] = 0)],
    ["negative input scale", (p) => (p.inputScale![0] = -1)],
    ["NaN input scale", (p) => (p.inputScale![0] = NaN)],
    ["infinite input scale", (p) => (p.inputScale![0] = Infinity)],
    ["wrong input scale length", (p) => (p.inputScale = new Float32Array(4).fill(1))],
  ];
  for (const [name, mutate] of cases) {
    it(`rejects ${name} with BAD_HEADER`, () => {
      const params = base();
      mutate(params);
      expect(() => validateQuantParams(params, 2, 5, "tensor 'w'")).toThrow(expect.objectContaining({ code: "BAD_HEADER" }));
      expect(() => validateQuantParams(params, 2, 5, "tensor 'w'")).toThrow(/tensor 'w'/);
    });
  }
});
