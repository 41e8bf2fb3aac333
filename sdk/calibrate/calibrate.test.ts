import { describe, expect, it } from "vitest";
import { evalSeeds, EVAL_SEED_BASE } from "../infer/eval.js";
import { LlamaModel } from "../infer/llama.js";
import { calibrateModel, calibrationSeeds, collectLinearInputs, MAX_CALIBRATION_SEQUENCES } from "./calibrate.js";
import { defaultSampleRows, MAX_DEFAULT_SAMPLE_ROWS, MIN_DEFAULT_SAMPLE_ROWS, SAMPLE_MEMORY_BYTES } from "./linear-inputs.js";
import { TINY_LLAMA, tinyLlamaModel, tinyLlamaValues } from "./tiny-llama.js";

describe("calibration statistics", () => {
  const values = tinyLlamaValues(1);
  const weights = (name: string) => values.get(name)!;
  const sequences = [
    [1, 5, 9, 30, 2, 7, 7, 40],
    [1, 12, 3, 3, 47, 0, 18],
  ];

  it("equal max|x_j| and mean|x_j| computed directly from every input the hook saw, and sample only vectors it saw", () => {
    // Direct computation: record every input vector of every linear layer.
    const seen = new Map<string, Float32Array[]>();
    const model = LlamaModel.fromWeights(TINY_LLAMA, weights, { onLinearInput: (name, x) => (seen.get(name) ?? seen.set(name, []).get(name)!).push(x.slice()) });
    for (const sequence of sequences) {
      model.reset();
      sequence.forEach((token, pos) => model.forward(token, pos));
    }
    const capacity = 10;
    const stats = collectLinearInputs(TINY_LLAMA, weights, sequences, { sampleRows: capacity, seed: 4 });
    expect([...stats.keys()].sort()).toEqual([...seen.keys()].sort());
    for (const [name, vectors] of seen) {
      const s = stats.get(name)!;
      const cols = vectors[0].length;
      expect(s.count).toBe(vectors.length);
      expect(s.count).toBe(15);
      for (let j = 0; j < cols; j++) {
        const column = vectors.map((x) => Math.abs(x[j]));
        expect(s.absMax[j]).toBe(Math.max(...column));
        // Stored as binary32: equal to a relative 2^-24.
        expect(s.absMean[j] / (column.reduce((a, b) => a + b, 0) / column.length)).toBeCloseTo(1, 6);
      }
      expect(s.sample.count).toBe(capacity);
      const keys = new Set(vectors.map((x) => x.join(",")));
      for (let r = 0; r < capacity; r++) expect(keys.has(Array.from(s.sample.rows.subarray(r * cols, (r + 1) * cols)).join(","))).toBe(true);
    }
  });

  it("keeps by default every input vector of a small model, and for wide models as many as the memory bound allows", () => {
    for (const s of collectLinearInputs(TINY_LLAMA, weights, sequences).values()) expect(s.sample.count).toBe(15);
    expect(defaultSampleRows([64, 64, 172])).toBe(MAX_DEFAULT_SAMPLE_ROWS);
    // Seven linear layers of a 4096-wide model with a 14336-wide MLP, 32 times over.
    const widths = Array.from({ length: 32 }, () => [4096, 4096, 4096, 4096, 4096, 4096, 14336]).flat();
    const bytesPerRow = 4 * widths.reduce((a, b) => a + b, 0);
    const rows = defaultSampleRows(widths);
    expect(rows).toBeLessThan(MAX_DEFAULT_SAMPLE_ROWS);
    expect(rows * bytesPerRow).toBeLessThanOrEqual(SAMPLE_MEMORY_BYTES);
    expect((rows + 1) * bytesPerRow).toBeGreaterThan(SAMPLE_MEMORY_BYTES);
    expect(defaultSampleRows([2 ** 30])).toBe(MIN_DEFAULT_SAMPLE_ROWS);
  });

  it("is deterministic for a seed", () => {
    const a = collectLinearInputs(TINY_LLAMA, weights, sequences, { sampleRows: 4, seed: 9 });
    const b = collectLinearInputs(TINY_LLAMA, weights, sequences, { sampleRows: 4, seed: 9 });
    for (const [name, s] of a) expect(b.get(name)!.sample.rows).toEqual(s.sample.rows);
  });
});

describe("calibration sequences", () => {
  it("never use a seed of the default evaluation set", () => {
    const evaluation = new Set(evalSeeds(100_000));
    for (const seed of [0, 1, 17, 0xffffffff]) {
      const seeds = calibrationSeeds(seed, MAX_CALIBRATION_SEQUENCES);
      expect(seeds.some((s) => evaluation.has(s))).toBe(false);
      expect(Math.min(...seeds)).toBeGreaterThanOrEqual(2 * EVAL_SEED_BASE);
    }
    expect(new Set([...calibrationSeeds(0, 100), ...calibrationSeeds(1, 100)]).size).toBe(200);
  });

  it("are sampled from the model itself and calibrate every linear layer", () => {
    const model = tinyLlamaModel(2);
    const calibration = calibrateModel(model, { samples: 3, seed: 5, length: 20 });
    expect(calibration.sequences).toHaveLength(3);
    expect(calibration.sequences.every((s) => s.length === 20 && s[0] === 1)).toBe(true);
    expect(calibration.description).toMatchObject({ source: "samples", sequences: 3, tokens: 60, seed: 5 });
    expect(calibration.statistics.size).toBe(1 + 7 * TINY_LLAMA.n_layers);
    expect(calibrateModel(model, { samples: 3, seed: 5, length: 20 }).sequences).toEqual(calibration.sequences);
    expect(calibrateModel(model, { samples: 3, seed: 6, length: 20 }).sequences).not.toEqual(calibration.sequences);
  });
});
