import { describe, expect, it } from "vitest";
import { isQansError } from "../errors.js";
import { Random } from "../testing/random.js";
import { prunedPerRow, pruneRows } from "./prune.js";

describe("pruneRows", () => {
  const random = new Random(21);
  const rows = 12;
  const cols = 30;
  const w = Float32Array.from({ length: rows * cols }, () => random.gaussian());
  const channelMax = Float32Array.from({ length: cols }, () => Math.exp(random.gaussian()));

  it("zeroes exactly floor(p · cols + 1/2) weights of every row, those of the lowest |W_ij| · max|X_j|", () => {
    for (const p of [0.05, 0.1, 0.3, 0.5]) {
      const count = Math.floor(p * cols + 0.5);
      const pruned = pruneRows(w, rows, cols, p, channelMax);
      for (let i = 0; i < rows; i++) {
        const kept: number[] = [];
        const zeroed: number[] = [];
        for (let j = 0; j < cols; j++) {
          const score = Math.abs(w[i * cols + j]) * channelMax[j];
          if (pruned[i * cols + j] === 0) zeroed.push(score);
          else {
            expect(pruned[i * cols + j]).toBe(w[i * cols + j]);
            kept.push(score);
          }
        }
        expect(zeroed.length).toBe(count);
        if (count > 0) expect(Math.max(...zeroed)).toBeLessThanOrEqual(Math.min(...kept));
      }
    }
    expect(prunedPerRow(30, 0.05)).toBe(2);
    expect(prunedPerRow(30, 0)).toBe(0);
  });

  it("keeps a small weight on a channel with large activations and prunes a larger one on a quiet channel", () => {
    const pruned = pruneRows(Float32Array.of(0.1, 0.5, 2, 3), 1, 4, 0.25, Float32Array.of(100, 1, 1, 1));
    expect(Array.from(pruned)).toEqual([Math.fround(0.1), 0, 2, 3]);
    // Without activation statistics the score is |W|.
    expect(Array.from(pruneRows(Float32Array.of(0.1, 0.5, 2, 3), 1, 4, 0.25))).toEqual([0, 0.5, 2, 3]);
  });

  it("breaks ties towards the lower column and leaves the input unchanged", () => {
    const input = Float32Array.of(1, -1, 1, -1);
    expect(Array.from(pruneRows(input, 1, 4, 0.5))).toEqual([0, 0, 1, -1]);
    expect(Array.from(input)).toEqual([1, -1, 1, -1]);
  });

  it("rejects a fraction outside [0, 1] and mismatched statistics", () => {
    for (const bad of [() => pruneRows(w, rows, cols, 1.5), () => pruneRows(w, rows, cols, 0.1, new Float32Array(3))]) {
      try {
        bad();
        expect.unreachable();
      } catch (error) {
        expect(isQansError(error) && error.code).toBe("INVALID_ARGUMENT");
      }
    }
  });
});
