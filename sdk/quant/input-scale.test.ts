import { describe, expect, it } from "vitest";
import { isQansError } from "../errors.js";
import { Random } from "../testing/random.js";
import { dequantize } from "./dequantize.js";
import { columnAbsMax, inputScaleFor } from "./input-scale.js";
import { OutputErrorMeter } from "./output-error.js";
import { quantizeRtn } from "./rtn.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isQansError(error) ? error.code : "not a QansError";
  }
  return undefined;
}

function positive(random: Random, n: number, spread: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.exp(spread * random.gaussian()));
}

describe("inputScaleFor", () => {
  it("follows s_j = max|X_j|^a / max|W_j|^(1−a) up to one common factor, centred on geometric mean 1", () => {
    const random = new Random(11);
    const x = positive(random, 40, 2);
    const w = positive(random, 40, 1);
    for (const alpha of [0, 0.25, 0.5, 0.875, 1]) {
      const s = inputScaleFor(x, w, alpha)!;
      const formula = Array.from(x, (xj, j) => xj ** alpha / w[j] ** (1 - alpha));
      // The common factor is whatever makes the geometric mean 1; every s_j must share it.
      const factor = Math.exp(formula.reduce((sum, f) => sum + Math.log(f), 0) / formula.length);
      for (let j = 0; j < s.length; j++) expect(s[j] / (formula[j] / factor)).toBeCloseTo(1, 6);
      const meanLog = s.reduce((sum, v) => sum + Math.log(v), 0) / s.length;
      expect(Math.abs(meanLog)).toBeLessThan(1e-6);
    }
  });

  it("treats zero statistics as the smallest positive one, and gives null when all are zero", () => {
    const x = Float32Array.of(0, 2, 8, 4);
    const w = Float32Array.of(1, 1, 1, 1);
    const s = inputScaleFor(x, w, 1)!;
    expect(s[0]).toBe(s[1]);
    expect(s[2] / s[1]).toBeCloseTo(4, 6);
    expect(s.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    expect(inputScaleFor(new Float32Array(4), w, 0.5)).toBeNull();
    expect(inputScaleFor(x, new Float32Array(4), 0.5)).toBeNull();
  });

  it("rejects alpha outside [0, 1], mismatched lengths and negative statistics", () => {
    const ones = Float32Array.of(1, 1);
    expect(codeOf(() => inputScaleFor(ones, ones, 1.5))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => inputScaleFor(ones, Float32Array.of(1), 0.5))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => inputScaleFor(Float32Array.of(1, -1), ones, 0.5))).toBe("INVALID_ARGUMENT");
  });

  it("lowers the output error of a layer with an outlier input channel at the same bit width", () => {
    const random = new Random(5);
    const rows = 48;
    const cols = 32;
    const outlier = 7;
    const w = Float32Array.from({ length: rows * cols }, () => random.gaussian() * 0.05);
    const samples = 256;
    const x = Float32Array.from({ length: samples * cols }, (_, k) => random.gaussian() * (k % cols === outlier ? 40 : 1));
    const meter = new OutputErrorMeter(cols, { rows: x, count: samples });
    const activationMax = new Float32Array(cols);
    for (let k = 0; k < x.length; k++) activationMax[k % cols] = Math.max(activationMax[k % cols], Math.abs(x[k]));
    const errorWith = (inputScale?: Float32Array) => {
      const { params, symbols } = quantizeRtn(w, rows, cols, { bits: 4, inputScale });
      return meter.error(w, dequantize(params, symbols, rows, cols));
    };
    const plain = errorWith();
    const scaled = errorWith(inputScaleFor(activationMax, columnAbsMax(w, rows, cols), 0.5)!);
    expect(scaled).toBeLessThan(0.5 * plain);
  });
});

describe("OutputErrorMeter", () => {
  function direct(w: Float32Array, wHat: Float32Array, x: Float32Array, rows: number, cols: number, count: number): number {
    let sum = 0;
    for (let t = 0; t < count; t++) {
      for (let i = 0; i < rows; i++) {
        let dot = 0;
        for (let j = 0; j < cols; j++) dot += (w[i * cols + j] - wHat[i * cols + j]) * x[t * cols + j];
        sum += dot * dot;
      }
    }
    return sum;
  }

  it("measures ‖(W − Ŵ)Xᵀ‖² whether it goes through the Gram matrix or not", () => {
    const random = new Random(3);
    const rows = 9;
    const cols = 12;
    const w = Float32Array.from({ length: rows * cols }, () => random.gaussian());
    const wHat = Float32Array.from(w, (v) => v + 0.1 * random.gaussian());
    for (const count of [5, 40]) {
      const x = Float32Array.from({ length: count * cols }, () => random.gaussian());
      const want = direct(w, wHat, x, rows, cols, count);
      expect(new OutputErrorMeter(cols, { rows: x, count }).error(w, wHat) / want).toBeCloseTo(1, 10);
    }
    let squares = 0;
    for (let k = 0; k < w.length; k++) squares += (w[k] - wHat[k]) ** 2;
    expect(new OutputErrorMeter(cols).error(w, wHat) / squares).toBeCloseTo(1, 12);
  });
});
