import { describe, expect, it } from "vitest";
import { Random } from "../../sdk/testing/random.js";
import { ggmlRoundTrip, Q4_0, Q8_0 } from "./ggml-quants.js";

describe("GGUF baselines", () => {
  it("Q8_0 rounds x / d half away from zero, d = max|x| / 127", () => {
    // max 127 gives d = 1 exactly (an F16 value), so the codes are the rounded inputs.
    const block = Float32Array.of(127, -63.5, 2.5, -0.49, 0, 64.5, ...new Array(26).fill(1.25));
    Q8_0.roundTrip(block);
    expect(Array.from(block.subarray(0, 7))).toEqual([127, -64, 3, -0, 0, 65, 1]);
  });

  it("Q4_0 maps the largest-magnitude value to code 0 with d = max / −8 and floors x / d + 8.5 into 0..15", () => {
    // max magnitude −8 (negative): d = 1, x̂ = q − 8 with q = min(15, floor(x + 8.5)).
    const negative = Float32Array.of(-8, 3.4, 3.6, 7.9, -0.5, -7.6, ...new Array(26).fill(0));
    Q4_0.roundTrip(negative);
    expect(Array.from(negative.subarray(0, 6))).toEqual([-8, 3, 4, 7, 0, -8]);
    // max magnitude +8 (positive): d = −1, so the scale flips and +8 is reachable but −8 is not.
    const positive = Float32Array.of(8, -7.9, 2.2, ...new Array(29).fill(0));
    Q4_0.roundTrip(positive);
    expect(Array.from(positive.subarray(0, 3))).toEqual([8, -7, 2]);
  });

  it("charges whole blocks, a short last block included, and stays within half a step of every weight (plus the F16 rounding of d)", () => {
    const random = new Random(2);
    const rows = 3;
    const cols = 40;
    const values = Float32Array.from({ length: rows * cols }, () => random.gaussian());
    for (const [format, levels] of [[Q8_0, 127], [Q4_0, 8]] as const) {
      const { values: restored, bytes } = ggmlRoundTrip(format, values, rows, cols);
      expect(bytes).toBe(rows * 2 * format.blockBytes);
      for (let i = 0; i < rows; i++) {
        for (const [start, end] of [[0, 32], [32, 40]]) {
          const block = values.subarray(i * cols + start, i * cols + end);
          const step = Math.max(...Array.from(block, Math.abs)) / levels;
          // d is stored as F16, off by at most 2^-11 of itself, and a code of up to `levels` multiplies that.
          const bound = step * (0.5 + levels * 2 ** -11);
          for (let j = start; j < end; j++) expect(Math.abs(restored[i * cols + j] - values[i * cols + j])).toBeLessThanOrEqual(bound);
        }
      }
    }
  });
});
