import { beforeAll, describe, expect, it } from "vitest";
import { isQansError } from "../errors.js";
import { evaluateAgainst } from "../infer/eval.js";
import { LlamaModel } from "../infer/llama.js";
import { summarizeReport } from "../inspect.js";
import { MemorySink } from "../io/sink.js";
import { MemorySource } from "../io/source.js";
import { packModel } from "../pack.js";
import { readQuantizationRecord, tensorEntry } from "../quant/quantization-record.js";
import { QansReader } from "../reader.js";
import { verifySource } from "../verify.js";
import { applyPlan, type QuantizationPlan } from "./apply.js";
import { calibrateModel, type CalibrationData } from "./calibrate.js";
import { modelWeights } from "./model-weights.js";
import { planQuantization, QuantizationSearch } from "./plan.js";
import { tinyLlamaModel } from "./tiny-llama.js";

const model = tinyLlamaModel(3);
const quantisedElements = model.tensors.filter((t) => t.shape.length === 2).reduce((sum, t) => sum + t.shape[0] * t.shape[1], 0);
let calibration: CalibrationData;
/** A coarser grid than the default, to keep the tests fast; the default's extra points change no behaviour tested here. */
const grid = { bits: [3, 4, 5, 6, 8], groupSizes: [0, 32], alphas: [null, 0, 0.5, 1], prunes: [0, 0.1, 0.3] };

beforeAll(() => {
  calibration = calibrateModel(model, { samples: 4, seed: 1, length: 48 });
});

async function pack(plan: QuantizationPlan): Promise<Uint8Array> {
  const planned = applyPlan(model, plan);
  const sink = new MemorySink();
  await packModel(planned.model, sink, { encodingsFor: planned.encodingsFor });
  return sink.bytes();
}

async function inspect(bytes: Uint8Array) {
  return summarizeReport(await verifySource(new MemorySource(bytes, "packed")));
}

describe("planQuantization with a target", () => {
  it("meets a bits-per-weight target, measured on the packed file", async () => {
    const search = QuantizationSearch.create(model, { calibration, grid });
    for (const bpw of [8, 10]) {
      const plan = await search.plan({ bitsPerWeight: bpw });
      const summary = await inspect(await pack(plan));
      const quantised = summary.tensors.filter((t) => t.encoding === "int-quant");
      expect(quantised).toHaveLength(plan.settings.size);
      const bits = quantised.reduce((sum, t) => sum + t.storedBytes * 8, 0);
      expect(bits / quantisedElements).toBeLessThanOrEqual(bpw);
      expect(bits / quantisedElements).toBeGreaterThan(bpw - 1.5);
    }
  });

  it("meets a file-size target, is deterministic, and gives a larger file for a larger target", async () => {
    const search = QuantizationSearch.create(model, { calibration, grid });
    const sizes: number[] = [];
    for (const bytes of [10000, 13000, 17000]) {
      const file = await pack(await search.plan({ bytes }));
      expect(file.length).toBeLessThanOrEqual(bytes);
      sizes.push(file.length);
    }
    expect(sizes[1]).toBeGreaterThan(sizes[0]);
    expect(sizes[2]).toBeGreaterThan(sizes[1]);
    const again = await planQuantization(model, { target: { bytes: 13000 }, calibration, grid });
    expect(again.settings).toEqual((await search.plan({ bytes: 13000 })).settings);
  });

  it("meets a KL-divergence target, checked by running the packed file against the original", async () => {
    const maxKld = 0.01;
    const plan = await planQuantization(model, { target: { maxKld }, calibration, grid });
    const reader = await QansReader.open(new MemorySource(await pack(plan), "packed"));
    const quantised = await LlamaModel.load(reader);
    const reference = LlamaModel.fromWeights(calibration.architecture, modelWeights(model).get);
    const measured = evaluateAgainst(quantised, reference, calibration.sequences).meanKld;
    expect(measured).toBeLessThanOrEqual(maxKld);
    expect(plan.target).toMatchObject({ max_kld: maxKld });
    expect(plan.target!.calibration_kld).toBeCloseTo(measured, 10);
    // The record in the file names every quantised tensor with its setting.
    const recorded = readQuantizationRecord((await reader.metadata()).metadata);
    expect(recorded).toEqual(new Map([...plan.settings].map(([name, setting]) => [name, tensorEntry(setting)])));
  });

  it("without calibration, allocates on weight statistics only: no scales, a KL target refused", async () => {
    const plan = await planQuantization(model, { target: { bitsPerWeight: 9 }, grid });
    expect([...plan.settings.values()].every((s) => s.alpha === null)).toBe(true);
    await expect(planQuantization(model, { target: { maxKld: 0.1 } })).rejects.toSatisfy((e) => isQansError(e) && e.code === "INVALID_ARGUMENT");
    await expect(planQuantization(model, { target: { bitsPerWeight: 0.5 } })).rejects.toSatisfy((e) => isQansError(e) && e.code === "INVALID_ARGUMENT");
  });
});

describe("planQuantization at a fixed bit width", () => {
  it("keeps the width and group size, searches the scale per tensor with calibration, and prunes as asked", async () => {
    const plan = await planQuantization(model, { bits: 6, groupSize: 0, prune: 0.1, calibration });
    expect(plan.settings.size).toBe(1 + 7 * 2);
    for (const setting of plan.settings.values()) expect(setting).toMatchObject({ bits: 6, groupSize: 0, prune: 0.1 });
    // The outlier channel of the model's activations makes scaling pay somewhere.
    expect([...plan.settings.values()].some((s) => s.alpha !== null)).toBe(true);
    const summary = await inspect(await pack(plan));
    for (const t of summary.tensors.filter((t) => t.quant)) {
      expect(t.quant!.inputScale).toBe(plan.settings.get(t.name)!.alpha !== null);
      expect(t.quantization).toEqual({ alpha: plan.settings.get(t.name)!.alpha, prune: 0.1, rounding: "nearest" });
    }
    const uncalibrated = await planQuantization(model, { bits: 6, prune: 0.1 });
    expect([...uncalibrated.settings.values()].every((s) => s.alpha === null && s.prune === 0.1)).toBe(true);
  });

  it("searches the tied embedding without a scale, prunes it by |W|, and rounds it with the classifier's inputs", async () => {
    const embedding = "model.embed_tokens.weight";
    const tensor = model.tensors.find((t) => t.name === embedding)!;
    const scaled = await planQuantization(model, { bits: 4, groupSize: 0, calibration, grid: { alphas: [1], prunes: [0], roundings: ["nearest"] } });
    expect(scaled.settings.get(embedding)!.alpha).toBeNull();
    expect([...scaled.settings.values()].some((s) => s.alpha === 1)).toBe(true);
    // Pruning by |W|: the same zeros as pruning without calibration.
    const pruned = applyPlan(model, await planQuantization(model, { bits: 8, groupSize: 0, prune: 0.3, calibration, grid: { alphas: [null], roundings: ["nearest"] } }));
    const weightOnly = applyPlan(model, await planQuantization(model, { bits: 8, groupSize: 0, prune: 0.3 }));
    const data = (planned: typeof pruned) => planned.model.tensors.find((t) => t.name === embedding)!.data;
    expect(data(pruned)).toEqual(data(weightOnly));
    expect(data(pruned)).not.toEqual(tensor.data);
    const rounded = await planQuantization(model, { bits: 3, groupSize: 0, calibration, grid: { alphas: [null], prunes: [0], roundings: ["compensated"] } });
    expect(rounded.settings.get(embedding)!.rounding).toBe("compensated");
  });
});
