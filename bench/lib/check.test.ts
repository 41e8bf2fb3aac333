import { describe, expect, it } from "vitest";
import { dequantize, quantizeRtn } from "../../sdk/index.js";
import { checkWithinHalfStep, sha256Hex } from "./check.js";
import { Random } from "../../sdk/testing/random.js";

describe("sha256Hex", () => {
  it("matches the standard test vector", () => {
    expect(sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("checkWithinHalfStep", () => {
  const rows = 16;
  const cols = 48;
  const random = new Random(1);
  const values = Float32Array.from({ length: rows * cols }, () => (random.next() - 0.5) * 0.2);

  for (const groupSize of [0, 16]) {
    it(`accepts the reference quantiser's output (group size ${groupSize})`, () => {
      const { params, symbols } = quantizeRtn(values, rows, cols, { bits: 8, groupSize });
      const restored = dequantize(params, symbols, rows, cols);
      const result = checkWithinHalfStep(values, restored, params, rows, cols);
      expect(result.violations).toBe(0);
      expect(result.worstStepFraction).toBeGreaterThan(0.4);
      expect(result.worstStepFraction).toBeLessThanOrEqual(0.5 + 1e-6);
    });
  }

  it("honours a per-input-channel scale", () => {
    const inputScale = Float32Array.from({ length: cols }, (_, j) => 0.5 + j / cols);
    const { params, symbols } = quantizeRtn(values, rows, cols, { bits: 4, inputScale });
    const restored = dequantize(params, symbols, rows, cols);
    expect(checkWithinHalfStep(values, restored, params, rows, cols).violations).toBe(0);
  });

  it("reports an element moved by one step", () => {
    const { params, symbols } = quantizeRtn(values, rows, cols, { bits: 8 });
    symbols[37] += symbols[37] < 255 ? 1 : -1;
    const restored = dequantize(params, symbols, rows, cols);
    const result = checkWithinHalfStep(values, restored, params, rows, cols);
    expect(result.violations).toBe(1);
    expect(result.firstViolation?.index).toBe(37);
    expect(result.worstStepFraction).toBeGreaterThan(0.5);
  });

  it("catches deltas that are smaller than the ones used to quantise", () => {
    const { params, symbols } = quantizeRtn(values, rows, cols, { bits: 8 });
    const restored = dequantize(params, symbols, rows, cols);
    const shrunk = { ...params, deltas: params.deltas.map((d) => d / 4) };
    expect(checkWithinHalfStep(values, restored, shrunk, rows, cols).violations).toBeGreaterThan(0);
  });
});
