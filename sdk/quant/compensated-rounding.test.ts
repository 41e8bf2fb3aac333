import { describe, expect, it } from "vitest";
import { Random } from "../testing/random.js";
import { CompensatedRounder } from "./compensated-rounding.js";
import { dequantize } from "./dequantize.js";
import { OutputErrorMeter } from "./output-error.js";
import { quantizeRtn } from "./rtn.js";

/** Inputs whose channels are correlated (a shared factor plus noise), the case compensation exploits. */
function correlatedInputs(random: Random, count: number, cols: number): Float32Array {
  const x = new Float32Array(count * cols);
  for (let t = 0; t < count; t++) {
    const shared = random.gaussian();
    for (let j = 0; j < cols; j++) x[t * cols + j] = shared * (1 + j / cols) + 0.3 * random.gaussian();
  }
  return x;
}

describe("CompensatedRounder", () => {
  const random = new Random(12);
  const rows = 20;
  const cols = 48;
  const count = 200;
  const w = Float32Array.from({ length: rows * cols }, () => random.gaussian() * 0.1);
  const sample = { rows: correlatedInputs(random, count, cols), count };
  const rounder = new CompensatedRounder(cols, sample);

  it("returns points of the reference quantiser's grid, which it maps back to the same values and deltas", () => {
    for (const [bits, groupSize] of [[4, 0], [3, 16], [8, 0]]) {
      const rounded = rounder.round(w, rows, bits, groupSize)!;
      const direct = quantizeRtn(w, rows, cols, { bits, groupSize });
      const again = quantizeRtn(rounded, rows, cols, { bits, groupSize });
      expect(again.params.deltas).toEqual(direct.params.deltas);
      const restored = dequantize(again.params, again.symbols, rows, cols);
      expect(new Uint32Array(restored.buffer)).toEqual(new Uint32Array(rounded.buffer));
    }
  });

  it("gives a smaller output error than rounding to nearest on the same grid", () => {
    const meter = new OutputErrorMeter(cols, sample);
    for (const bits of [3, 4, 6]) {
      const nearest = quantizeRtn(w, rows, cols, { bits });
      const nearestError = meter.error(w, dequantize(nearest.params, nearest.symbols, rows, cols));
      expect(meter.error(w, rounder.round(w, rows, bits, 0)!)).toBeLessThan(0.7 * nearestError);
    }
  });

  it("carries the first column's rounding error into the second as least squares does: w1 + (h01 / h11) · (w0 − ŵ0)", () => {
    // Two channels, so the compensation can be written out: with H = XᵀX + damping, the best ŵ1
    // given ŵ0 minimises (e0, e1) H (e0, e1)ᵀ over e1, giving e1 = −(h01 / h11) e0.
    const x = Float32Array.of(1, 0.8, 0.5, 0.7, -1, -0.6, 0.2, 0.1);
    const twoChannels = new CompensatedRounder(2, { rows: x, count: 4 });
    let h00 = 0;
    let h01 = 0;
    let h11 = 0;
    for (let t = 0; t < 4; t++) {
      h00 += x[2 * t] * x[2 * t];
      h01 += x[2 * t] * x[2 * t + 1];
      h11 += x[2 * t + 1] * x[2 * t + 1];
    }
    h11 += 0.01 * ((h00 + h11) / 2) + 1e-12;
    // Column 0 is the row's largest weight, so it keeps its round-to-nearest symbol +7; column 1 is compensated.
    const row = Float32Array.of(0.7, 0.23);
    const [w0, w1] = row;
    const delta = quantizeRtn(row, 1, 2, { bits: 4 }).params.deltas[0];
    const rounded = twoChannels.round(row, 1, 4, 0)!;
    expect(rounded[0]).toBe(7 * delta);
    const target = w1 + (h01 / h11) * (w0 - 7 * delta);
    expect(rounded[1]).toBe(Math.fround(Math.round(target / delta) * delta));
  });
});
