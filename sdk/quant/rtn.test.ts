import { describe, expect, it } from "vitest";
import { groupCount, quantizeRtn, roundHalfEven, type QuantizeOptions } from "./rtn.js";
import { dequantize, validateQuantParams } from "./dequantize.js";
import { f16BitsToF32, f32ToF16Bits } from "./float16.js";
import { Random } from "../testing/random.js";

/** Student's t with 2 degrees of freedom: infinite variance, like real outlier-heavy weights. */
function heavyTailed(random: Random): number {
  let chi2 = 0;
  for (let k = 0; k < 2; k++) chi2 += random.gaussian() ** 2;
  return random.gaussian() / Math.sqrt(chi2 / 2);
}

const DISTRIBUTIONS = {
  gaussian: (random: Random) => random.gaussian(),
  laplacian: (random: Random) => random.laplacian(),
  heavyTailed,
} as const;

/**
 * An LLM-like weight matrix: scale 0.02, a few outlier columns 50× larger, one all-zero row and
 * rows of one repeated value (positive and negative).
 */
function weightMatrix(sample: (random: Random) => number, rows: number, cols: number, seed: number): Float32Array {
  const random = new Random(seed);
  const w = new Float32Array(rows * cols);
  const outlier = (j: number) => j % 37 === 5 || j === cols - 1;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) w[i * cols + j] = 0.02 * sample(random) * (outlier(j) ? 50 : 1);
  }
  if (rows >= 4) {
    w.fill(0, 1 * cols, 2 * cols);
    w.fill(0.037, 2 * cols, 3 * cols);
    w.fill(-1.5e-3, 3 * cols, 4 * cols);
  }
  return w;
}

function inputScaleFor(cols: number, seed: number): Float32Array {
  const random = new Random(seed);
  // Spans four binades, so the scaled view differs materially from the plain weights.
  return Float32Array.from({ length: cols }, () => Math.fround(2 ** (4 * random.next() - 2)));
}

const LAYOUTS = [
  { cols: 128, groupSize: 0 },
  { cols: 100, groupSize: 0 },
  { cols: 128, groupSize: 1 },
  { cols: 256, groupSize: 32 },
  { cols: 256, groupSize: 128 },
  { cols: 100, groupSize: 32 },
  { cols: 100, groupSize: 128 },
];

interface Failure {
  config: string;
  index: number;
  w: number;
  got: number;
  bound: number;
}

/**
 * Quantises and dequantises, and returns every element whose error exceeds δ/2/s_j plus the
 * binary32 rounding: one rounding (the product) without s; with s also the rounding of the
 * scaled input w·s_j and of the quotient, hence 2^-22·|W|. Also checks structural guarantees.
 */
function roundTripFailures(w: Float32Array, rows: number, cols: number, options: QuantizeOptions, config: string): Failure[] {
  const { params, symbols } = quantizeRtn(w, rows, cols, options);
  validateQuantParams(params, rows, cols, config);
  const out = dequantize(params, symbols, rows, cols);
  const groups = groupCount(cols, params.groupSize);
  const failures: Failure[] = [];
  const relative = params.inputScale ? 2 ** -22 : 2 ** -23;
  const limit = 2 ** params.bits - 1;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const e = i * cols + j;
      const g = params.groupSize === 0 ? 0 : Math.floor(j / params.groupSize);
      const delta = params.deltas[i * groups + g];
      const s = params.inputScale ? params.inputScale[j] : 1;
      const bound = delta / 2 / s + relative * Math.abs(w[e]) + 2 ** -23 * (delta / s) + 2 ** -148;
      const u = symbols[e];
      const symbolOk = u <= limit && (params.asymmetric || u >= 1);
      if (!(Math.abs(out[e] - w[e]) <= bound) || !symbolOk) failures.push({ config, index: e, w: w[e], got: out[e], bound });
    }
  }
  return failures;
}

for (const bits of [2, 3, 4, 5, 6, 7, 8]) {
  describe(`int${bits} round-to-nearest`, () => {
    for (const [name, sample] of Object.entries(DISTRIBUTIONS)) {
      it(`int${bits}: every element of ${name} weights reconstructs within δ/2/s_j`, () => {
        const failures: Failure[] = [];
        let seed = bits * 1000;
        for (const { cols, groupSize } of LAYOUTS) {
          const rows = 6;
          const w = weightMatrix(sample, rows, cols, seed++);
          const s = inputScaleFor(cols, seed++);
          for (const asymmetric of [false, true]) {
            for (const scaleType of ["F16", "F32"] as const) {
              for (const inputScale of [undefined, s]) {
                const config = `int${bits} ${name} cols=${cols} G=${groupSize} ${asymmetric ? "asym" : "sym"} ${scaleType}${inputScale ? " s" : ""}`;
                failures.push(...roundTripFailures(w, rows, cols, { bits, groupSize, asymmetric, scaleType, inputScale }, config));
              }
            }
          }
        }
        expect(failures.slice(0, 5)).toEqual([]);
      });
    }
  });
}

describe("quantizeRtn", () => {
  it("int8 symmetric per row: matches the spec formula on a hand-checked row", () => {
    const w = new Float32Array([0.5, -1, 0.25, 0]);
    const { params, symbols } = quantizeRtn(w, 1, 4, { bits: 8 });
    const delta = f16BitsToF32(f32ToF16Bits(1 / 127));
    // 1/127 is not an F16 value; it must round up, never down.
    expect(params.deltas[0]).toBeGreaterThanOrEqual(1 / 127);
    expect(params.deltas[0]).toBe(delta >= 1 / 127 ? delta : f16BitsToF32(f32ToF16Bits(1 / 127) + 1));
    expect(params.scaleType).toBe("F16");
    expect(params.zeroPoints).toBeUndefined();
    const d = params.deltas[0];
    expect(Array.from(symbols)).toEqual([0.5, -1, 0.25, 0].map((x) => roundHalfEven(x / d) + 128));
  });

  it("int4 asymmetric: zero point and symbols follow the spec formula", () => {
    const w = new Float32Array([-0.3, 0.9, 0.1, 0.6]);
    const { params, symbols } = quantizeRtn(w, 1, 4, { bits: 4, asymmetric: true, scaleType: "F32" });
    const d = params.deltas[0];
    expect(d).toBe(Math.fround(d));
    expect(d).toBeGreaterThanOrEqual((Math.fround(0.9) - Math.fround(-0.3)) / 15);
    const z = roundHalfEven(-Math.fround(-0.3) / d);
    expect(params.zeroPoints?.[0]).toBe(z);
    expect(Array.from(symbols)).toEqual(Array.from(w).map((x) => Math.min(15, Math.max(0, roundHalfEven(x / d) + z))));
  });

  it("int4 asymmetric keeps z = 0 for all-positive groups and z = 15 for all-negative groups", () => {
    const w = new Float32Array([0.1, 0.2, 0.3, 0.4, -0.1, -0.2, -0.3, -0.4]);
    const { params, symbols } = quantizeRtn(w, 1, 8, { bits: 4, asymmetric: true, groupSize: 4 });
    expect(Array.from(params.zeroPoints ?? [])).toEqual([0, 15]);
    expect(symbols[3]).toBe(15);
    expect(symbols[7]).toBe(0);
  });

  it("gives all-zero groups δ = 0 and u = z, for symmetric and asymmetric", () => {
    const w = new Float32Array([0, -0, 0, 0, 1, 2, 3, 4]);
    const sym = quantizeRtn(w, 2, 4, { bits: 4 });
    expect(Array.from(sym.params.deltas)).toEqual([0, sym.params.deltas[1]]);
    expect(Array.from(sym.symbols.subarray(0, 4))).toEqual([8, 8, 8, 8]);
    const asym = quantizeRtn(w, 2, 4, { bits: 4, asymmetric: true });
    expect(asym.params.deltas[0]).toBe(0);
    expect(Array.from(asym.symbols.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(asym.params.zeroPoints?.[0]).toBe(0);
    expect(Array.from(dequantize(sym.params, sym.symbols, 2, 4).subarray(0, 4))).toEqual([0, 0, 0, 0]);
  });

  it("uses rounding half to even", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 3].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, 3, 3]);
    // δ = 1 exactly (max 7, int4): 2.5 → 2, 3.5 → 4, −0.5 → 0.
    const { params, symbols } = quantizeRtn(new Float32Array([7, 2.5, 3.5, -0.5]), 1, 4, { bits: 4 });
    expect(params.deltas[0]).toBe(1);
    expect(Array.from(symbols)).toEqual([15, 10, 12, 8]);
  });

  it("never clamps: the extreme element lands exactly on the top level", () => {
    for (const bits of [2, 4, 8]) {
      const qmax = 2 ** (bits - 1) - 1;
      const w = new Float32Array([0.123, -0.0456, 0.01]);
      const { symbols } = quantizeRtn(w, 1, 3, { bits });
      expect(symbols[0]).toBe(qmax + 2 ** (bits - 1));
    }
  });

  it("picks F16 scales by default and falls back to F32 when a delta exceeds 65504", () => {
    const small = quantizeRtn(new Float32Array([1, -2, 3, 4]), 1, 4, { bits: 8 });
    expect(small.params.scaleType).toBe("F16");
    // δ = 65504 · 127 / 127 is exactly the largest F16: still F16.
    const edge = quantizeRtn(new Float32Array([65504 * 127, 1]), 1, 2, { bits: 8 });
    expect(edge.params.scaleType).toBe("F16");
    expect(edge.params.deltas[0]).toBe(65504);
    const over = quantizeRtn(new Float32Array([65505 * 127, 1, 1e-3, 2]), 2, 2, { bits: 8 });
    expect(over.params.scaleType).toBe("F32");
    expect(over.params.deltas[0]).toBeGreaterThanOrEqual(65505);
    expect(over.params.deltas[1]).toBe(Math.fround(over.params.deltas[1]));
    // Only one group needs the range, but the scale type is per tensor.
    expect(f16BitsToF32(f32ToF16Bits(over.params.deltas[1]))).not.toBe(over.params.deltas[1]);
    const big = quantizeRtn(new Float32Array([1e7, -3e6]), 1, 2, { bits: 8, scaleType: "auto" });
    expect(big.params.scaleType).toBe("F32");
    const out = dequantize(big.params, big.symbols, 1, 2);
    expect(Math.abs(out[0] - 1e7)).toBeLessThanOrEqual(big.params.deltas[0] / 2);
  });

  it("rejects a forced F16 scale type that cannot hold a delta", () => {
    expect(() => quantizeRtn(new Float32Array([1e7]), 1, 1, { bits: 8, scaleType: "F16" })).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });

  it("F32 scales survive weights near the binary32 maximum", () => {
    const w = new Float32Array([3.4e38, -3.4e38, 1]);
    for (const asymmetric of [false, true]) {
      const { params, symbols } = quantizeRtn(w, 1, 3, { bits: 2, asymmetric });
      expect(params.scaleType).toBe("F32");
      const out = dequantize(params, symbols, 1, 3);
      expect(Math.abs(out[0] - w[0])).toBeLessThanOrEqual(params.deltas[0] / 2 + 2 ** -23 * 3.4e38);
    }
  });

  it("sees fround(w · s_j) when an input scale is given and copies the scale", () => {
    const w = new Float32Array([0.3, 0.1, -0.2, 0.05]);
    const s = new Float32Array([1, 3, 0.5, 8]);
    const { params, symbols } = quantizeRtn(w, 1, 4, { bits: 8, inputScale: s, scaleType: "F32" });
    const scaled = Array.from(w).map((x, j) => Math.fround(x * s[j]));
    const maxAbs = Math.max(...scaled.map(Math.abs));
    expect(params.deltas[0]).toBeGreaterThanOrEqual(maxAbs / 127);
    expect(params.deltas[0]).toBeLessThan((maxAbs / 127) * (1 + 2 ** -22));
    expect(Array.from(symbols)).toEqual(scaled.map((x) => roundHalfEven(x / params.deltas[0]) + 128));
    expect(params.inputScale).toEqual(s);
    expect(params.inputScale).not.toBe(s);
  });

  it("handles empty matrices", () => {
    const none = quantizeRtn(new Float32Array(0), 0, 16, { bits: 4, groupSize: 4 });
    expect(none.symbols.length).toBe(0);
    expect(none.params.deltas.length).toBe(0);
    const noCols = quantizeRtn(new Float32Array(0), 3, 0, { bits: 4 });
    expect(noCols.params.deltas.length).toBe(3);
    expect(groupCount(0, 0)).toBe(1);
    expect(groupCount(0, 8)).toBe(0);
    expect(groupCount(100, 32)).toBe(4);
    expect(groupCount(128, 32)).toBe(4);
  });

  it("rejects invalid options with INVALID_ARGUMENT", () => {
    const w = new Float32Array(8).fill(1);
    const invalid = expect.objectContaining({ code: "INVALID_ARGUMENT" });
    for (const bits of [1, 9, 0, 2.5, NaN]) expect(() => quantizeRtn(w, 2, 4, { bits })).toThrow(invalid);
    for (const groupSize of [-1, 1.5, 2 ** 24 + 1, NaN]) expect(() => quantizeRtn(w, 2, 4, { bits: 4, groupSize })).toThrow(invalid);
    expect(() => quantizeRtn(w, 2, 4, { bits: 4, scaleType: "F8" as "F16" })).toThrow(invalid);
    expect(() => quantizeRtn(w, 3, 4, { bits: 4 })).toThrow(invalid);
    expect(() => quantizeRtn(w, -2, -4, { bits: 4 })).toThrow(invalid);
    expect(() => quantizeRtn(w, 2, 4, { bits: 4, inputScale: new Float32Array(3).fill(1) })).toThrow(invalid);
    for (const bad of [0, -1, NaN, Infinity]) {
      const s = new Float32Array([1, 1, bad, 1]);
      expect(() => quantizeRtn(w, 2, 4, { bits: 4, inputScale: s })).toThrow(invalid);
    }
  });

  it("rejects non-finite weights, naming the index", () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = new Float32Array(8).fill(0.5);
      w[5] = bad;
      expect(() => quantizeRtn(w, 2, 4, { bits: 4 })).toThrow(/values\[5\]/);
      expect(() => quantizeRtn(w, 2, 4, { bits: 4 })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    }
    const w = new Float32Array([1, 3e38]);
    expect(() => quantizeRtn(w, 1, 2, { bits: 4, inputScale: new Float32Array([1, 4]) })).toThrow(/values\[1\]/);
  });
});
