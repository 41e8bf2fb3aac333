import { describe, expect, it } from "vitest";
import { Random } from "../testing/random.js";
import { addInPlace, applyRope, attention, rmsNorm, ropeAngles, softmaxInPlace, swiglu } from "./kernels.js";
import { ResidentF32Linear } from "./linear.js";

/** Float64 references, written from the definitions rather than from the kernels. */
function gaussians(count: number, seed: number, scale = 1): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: count }, () => random.gaussian() * scale);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  expect(worst).toBeLessThan(tolerance);
}

function softmax64(values: number[]): number[] {
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

describe("rmsNorm", () => {
  it("scales by the reciprocal root mean square plus epsilon, times the weight", () => {
    const x = gaussians(64, 1, 3);
    const weight = gaussians(64, 2);
    const eps = 1e-5;
    const meanSquare = Array.from(x).reduce((s, v) => s + v * v, 0) / 64;
    const expected = Array.from(x, (v, i) => (weight[i] * v) / Math.sqrt(meanSquare + eps));
    const out = new Float32Array(64);
    rmsNorm(out, x, weight, eps);
    expectClose(out, expected, 1e-6);
    // In place gives the same.
    rmsNorm(x, x, weight, eps);
    expect(x).toEqual(out);
  });
});

describe("rotary embeddings, half-split layout", () => {
  it("rotates component p with p + headSize/2 by pos * theta^(-2p/headSize), per head", () => {
    const heads = 3;
    const headSize = 8;
    const theta = 10000;
    const pos = 37;
    const vec = gaussians(heads * headSize, 3);
    const expected = Array.from(vec);
    for (let h = 0; h < heads; h++) {
      for (let p = 0; p < headSize / 2; p++) {
        const angle = pos / theta ** ((2 * p) / headSize);
        const a = vec[h * headSize + p];
        const b = vec[h * headSize + p + headSize / 2];
        // As a complex number (a + ib) times e^(i angle).
        expected[h * headSize + p] = a * Math.cos(angle) - b * Math.sin(angle);
        expected[h * headSize + p + headSize / 2] = a * Math.sin(angle) + b * Math.cos(angle);
      }
    }
    const cos = new Float32Array(headSize / 2);
    const sin = new Float32Array(headSize / 2);
    ropeAngles(pos, headSize, theta, cos, sin);
    applyRope(vec, heads, headSize, cos, sin);
    expectClose(vec, expected, 1e-6);
  });

  it("keeps the norm of every pair and is the identity at position 0", () => {
    const vec = gaussians(16, 4);
    const cos = new Float32Array(4);
    const sin = new Float32Array(4);
    ropeAngles(0, 8, 10000, cos, sin);
    const before = vec.slice();
    applyRope(vec, 2, 8, cos, sin);
    expect(vec).toEqual(before);
    ropeAngles(1000, 8, 500000, cos, sin);
    applyRope(vec, 2, 8, cos, sin);
    for (let h = 0; h < 2; h++) {
      for (let p = 0; p < 4; p++) {
        const i = h * 8 + p;
        expect(Math.hypot(vec[i], vec[i + 4])).toBeCloseTo(Math.hypot(before[i], before[i + 4]), 5);
      }
    }
  });
});

describe("attention", () => {
  it("matches softmax(q.k / sqrt(d)) v per head, with key/value heads shared by groups of query heads", () => {
    const heads = 8;
    const kvHeads = 2;
    const headSize = 4;
    const length = 11;
    const kvDim = kvHeads * headSize;
    const q = gaussians(heads * headSize, 5);
    const keys = gaussians(length * kvDim, 6);
    const values = gaussians(length * kvDim, 7);
    const expected: number[] = [];
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / (heads / kvHeads));
      const scores: number[] = [];
      for (let t = 0; t < length; t++) {
        let dot = 0;
        for (let i = 0; i < headSize; i++) dot += q[h * headSize + i] * keys[t * kvDim + g * headSize + i];
        scores.push(dot / Math.sqrt(headSize));
      }
      const weights = softmax64(scores);
      for (let i = 0; i < headSize; i++) {
        let sum = 0;
        for (let t = 0; t < length; t++) sum += weights[t] * values[t * kvDim + g * headSize + i];
        expected.push(sum);
      }
    }
    const out = new Float32Array(heads * headSize);
    attention(out, q, keys, values, length, heads, headSize, heads / kvHeads, new Float32Array(length));
    expectClose(out, expected, 1e-5);
  });

  it("with one cached position returns that position's value", () => {
    const q = gaussians(8, 8);
    const keys = gaussians(8, 9);
    const values = gaussians(8, 10);
    const out = new Float32Array(8);
    attention(out, q, keys, values, 1, 2, 4, 1, new Float32Array(1));
    expect(out).toEqual(values);
  });
});

describe("softmax, SwiGLU, residual", () => {
  it("softmax over a prefix sums to one and matches the float64 definition", () => {
    const x = gaussians(20, 11, 5);
    const expected = softmax64(Array.from(x.subarray(0, 13)));
    const tail = x.slice(13);
    softmaxInPlace(x, 13);
    expectClose(x.subarray(0, 13), expected, 1e-6);
    expect(x.slice(13)).toEqual(tail);
  });

  it("SwiGLU is silu(gate) * up and the residual adds", () => {
    const gate = gaussians(30, 12, 4);
    const up = gaussians(30, 13);
    const expected = Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    swiglu(gate, up);
    expectClose(gate, expected, 1e-6);
    const x = Float32Array.of(1, 2, 3);
    addInPlace(x, Float32Array.of(0.5, -2, 4));
    expect(Array.from(x)).toEqual([1.5, 0, 7]);
  });
});

describe("ResidentF32Linear", () => {
  it("multiplies like the float64 definition whatever the row count's remainder by four", () => {
    for (const [rows, cols] of [[1, 7], [3, 64], [4, 1], [5, 65], [8, 3], [11, 64]]) {
      const w = gaussians(rows * cols, rows * 100 + cols);
      const x = gaussians(cols, 100 + cols);
      const expected = Array.from({ length: rows }, (_, r) => {
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += w[r * cols + c] * x[c];
        return sum;
      });
      const linear = new ResidentF32Linear(rows, cols, w);
      const out = new Float32Array(rows);
      linear.matvec(x, out);
      expectClose(out, expected, 1e-6);
      expect(linear.residentBytes).toBe(rows * cols * 4);
    }
  });

  it("matmul gives each vector's matvec, and row copies a row", () => {
    const linear = new ResidentF32Linear(3, 6, gaussians(18, 20));
    const xs = gaussians(4 * 6, 21);
    const out = new Float32Array(4 * 3);
    linear.matmul(xs, 4, out);
    for (let i = 0; i < 4; i++) {
      const one = new Float32Array(3);
      linear.matvec(xs.subarray(i * 6, i * 6 + 6), one);
      expect(out.subarray(i * 3, i * 3 + 3)).toEqual(one);
    }
    const row = new Float32Array(6);
    linear.row(2, row);
    expect(row).toEqual(linear.values.subarray(12, 18));
  });

  it("refuses values that do not fill the shape", () => {
    expect(() => new ResidentF32Linear(2, 3, new Float32Array(5))).toThrow(/needs 6 values/);
  });
});
