import { describe, expect, it } from "vitest";
import { reconstructPrepared, prepareTensor, type QuantSetting } from "../quant/setting.js";
import { calibrateModel } from "./calibrate.js";
import { QuantizedModelEvaluator } from "./model-eval.js";
import { modelWeights } from "./model-weights.js";
import { tinyLlamaModel } from "./tiny-llama.js";

describe("QuantizedModelEvaluator", () => {
  const model = tinyLlamaModel(3);
  const calibration = calibrateModel(model, { samples: 4, seed: 1, length: 48 });
  const weights = modelWeights(model);
  const name = "model.layers.0.mlp.down_proj.weight";
  const tensor = model.tensors.find((t) => t.name === name)!;

  it("reconstructs each setting as prepareTensor does, keeping settings that differ only in rounding apart", () => {
    const evaluator = new QuantizedModelEvaluator(calibration.architecture, weights, model.tensors, calibration.statistics);
    const nearest: QuantSetting = { bits: 3, groupSize: 0, alpha: null, prune: 0 };
    const compensated: QuantSetting = { ...nearest, rounding: "compensated" };
    const stats = calibration.statistics.get(name);
    const expected = (setting: QuantSetting) => reconstructPrepared(prepareTensor(tensor, setting, stats, weights.get(name)));
    // The order matters: a cache keyed without the rounding would hand back the first for the second.
    expect(evaluator.reconstruct(name, nearest)).toEqual(expected(nearest));
    expect(evaluator.reconstruct(name, compensated)).toEqual(expected(compensated));
    expect(evaluator.reconstruct(name, compensated)).not.toEqual(expected(nearest));
  });
});
