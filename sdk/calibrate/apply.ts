import type { PackOptions } from "../pack.js";
import { encodeQuantizationRecord, QUANTIZATION_METADATA_KEY, tensorEntry, type QuantizationRecord } from "../quant/quantization-record.js";
import { prepareTensor, type ChannelStatistics, type QuantSetting } from "../quant/setting.js";
import type { TensorEncoding } from "../tensor/frame-encode.js";
import type { ImportedModel } from "../tensor/tensor.js";

/** A per-tensor choice of settings, and what it was chosen with. */
export interface QuantizationPlan {
  settings: Map<string, QuantSetting>;
  /** Activation statistics, when calibrated: the scales and pruning scores are computed from them. */
  statistics?: ReadonlyMap<string, ChannelStatistics>;
  /** Informative members of the file's record (spec §17.7). */
  calibration?: Record<string, string | number>;
  target?: Record<string, string | number>;
}

export interface PlannedModel {
  /** The model with planned tensors pruned, and the record of the settings in its metadata. */
  model: ImportedModel;
  /** Give this to pack as `PackOptions.encodingsFor`. */
  encodingsFor: NonNullable<PackOptions["encodingsFor"]>;
}

/** The `qans.quantization` record of a plan (spec §17.7). */
export function planRecord(plan: QuantizationPlan): QuantizationRecord {
  const record: QuantizationRecord = { tensors: Object.fromEntries([...plan.settings].map(([name, setting]) => [name, tensorEntry(setting)])) };
  if (plan.calibration) record.calibration = plan.calibration;
  if (plan.target) record.target = plan.target;
  return record;
}

/**
 * Applies a plan to a model for packing: each planned tensor is pruned (its values are what pack
 * quantises) and gets its int-quant encoding with the per-input-channel scale; the others are left
 * to the pack mode. The settings are recorded under `qans.quantization` in the metadata.
 */
export function applyPlan(model: ImportedModel, plan: QuantizationPlan): PlannedModel {
  const encodings = new Map<string, TensorEncoding>();
  const tensors = model.tensors.map((tensor) => {
    const setting = plan.settings.get(tensor.name);
    if (setting === undefined) return tensor;
    const prepared = prepareTensor(tensor, setting, plan.statistics?.get(tensor.name));
    encodings.set(tensor.name, prepared.encoding);
    return prepared.tensor;
  });
  const metadata = { ...model.metadata, [QUANTIZATION_METADATA_KEY]: encodeQuantizationRecord(planRecord(plan)) };
  return {
    model: { ...model, metadata, tensors },
    encodingsFor: (tensor) => {
      const encoding = encodings.get(tensor.name);
      return encoding === undefined ? undefined : [encoding];
    },
  };
}
