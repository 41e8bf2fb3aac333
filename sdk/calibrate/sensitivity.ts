import { matrixShape } from "../format/layout.js";
import { OutputErrorMeter } from "../quant/output-error.js";
import type { QuantSetting } from "../quant/setting.js";
import { elementCount, type TensorData } from "../tensor/tensor.js";
import type { LinearInputStatistics } from "./linear-inputs.js";
import type { QuantizedModelEvaluator } from "./model-eval.js";

/** The setting each tensor is probed at: coarse enough that its effect on the model is well above rounding noise. */
export const PROBE_SETTING: QuantSetting = { bits: 4, groupSize: 0, alpha: null, prune: 0 };

/** Calibration sequences and tokens per sequence used by the probes: a few short ones, since there is one probe per tensor. */
export const PROBE_SEQUENCES = 4;
export const PROBE_TOKENS = 128;

/**
 * How much the model's output moves per unit of each tensor's layer error: the tensor alone is
 * quantised at PROBE_SETTING, the model's mean KL divergence from the unquantised model is measured
 * on a few calibration sequences, and divided by the layer error that setting causes. The
 * allocation then minimises Σ weight · error, a prediction of the model's KL divergence, which
 * layer errors alone do not give: their units and their effect on the output differ from layer
 * to layer by orders of magnitude.
 */
export function probeSensitivities(
  evaluator: QuantizedModelEvaluator,
  tensors: readonly TensorData[],
  statistics: ReadonlyMap<string, LinearInputStatistics> | undefined,
  sequences: readonly (readonly number[])[],
): number[] {
  const probeSet = sequences.slice(0, PROBE_SEQUENCES).map((sequence) => sequence.slice(0, PROBE_TOKENS));
  const weights = tensors.map((tensor) => {
    const { cols } = matrixShape(tensor.shape, elementCount(tensor.shape));
    const meter = new OutputErrorMeter(cols, statistics?.get(tensor.name)?.sample);
    const error = meter.error(evaluator.original(tensor.name), evaluator.reconstruct(tensor.name, PROBE_SETTING));
    if (!(error > 0)) return 0;
    return evaluator.evaluate(new Map([[tensor.name, PROBE_SETTING]]), probeSet).meanKld / error;
  });
  // A probe can measure no divergence for a tensor the model barely uses on the probe sequences;
  // it gets the least sensitivity measured, not none, so that its error still costs something.
  const positive = weights.filter((w) => w > 0);
  const least = positive.length > 0 ? Math.min(...positive) : 1;
  return weights.map((w) => (w > 0 ? w : least));
}
