import { QansError } from "../errors.js";
import { matrixShape } from "../format/layout.js";
import { fromFloat32, toFloat32 } from "../tensor/convert.js";
import { isFloatPlaneDType } from "../tensor/dtype.js";
import type { TensorEncoding } from "../tensor/frame-encode.js";
import { elementCount, type TensorData } from "../tensor/tensor.js";
import { CompensatedRounder } from "./compensated-rounding.js";
import { columnAbsMax, inputScaleFor } from "./input-scale.js";
import { pruneRows } from "./prune.js";
import { dequantize } from "./dequantize.js";
import { MAX_GROUP_SIZE, quantizeRtn } from "./rtn.js";

/** How one tensor is quantised by compression-aware quantisation (spec §17). */
export interface QuantSetting {
  /** 2 to 8. */
  bits: number;
  /** 0 = one scale per row. */
  groupSize: number;
  /** Exponent a of the per-input-channel scale; null = no scale stored. */
  alpha: number | null;
  /** Fraction of each row zeroed before quantisation, 0 to 1. */
  prune: number;
  /**
   * How weights are rounded to the grid: to nearest (the default), or with error compensation
   * (`CompensatedRounder`), which needs an F32 tensor, a calibration sample, no scale and no pruning.
   */
  rounding?: "nearest" | "compensated";
}

/** Activation statistics of a linear layer's input channels, from calibration. */
export interface ChannelStatistics {
  /** max_t |X_tj| per input channel j. */
  absMax: Float32Array;
  /** A sample of input rows, row-major [count, cols]: for output error and compensated rounding. */
  sample?: { rows: Float32Array; count: number };
}

/** A tensor prepared for packing under a setting: pruned values and the int-quant encoding to use. */
export interface PreparedTensor {
  /** The tensor with pruned weights set to zero, in its own dtype; the input itself when nothing was pruned. */
  tensor: TensorData;
  /** The pruned values as binary32 (the quantiser's input). */
  values: Float32Array;
  encoding: TensorEncoding & { encoding: "int-quant" };
}

function invalid(where: string, message: string): never {
  throw new QansError("INVALID_ARGUMENT", `${where}: ${message}`);
}

/** Throws INVALID_ARGUMENT unless `setting` is a setting this module can apply. */
export function checkSetting(setting: QuantSetting, where: string): void {
  const { bits, groupSize, alpha, prune } = setting;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) invalid(where, `bits must be an integer from 2 to 8, got ${bits}`);
  if (!Number.isInteger(groupSize) || groupSize < 0 || groupSize > MAX_GROUP_SIZE) invalid(where, `group size must be 0 or from 1 to 2^24, got ${groupSize}`);
  if (alpha !== null && !(alpha >= 0 && alpha <= 1)) invalid(where, `alpha must be null or from 0 to 1, got ${alpha}`);
  if (!(prune >= 0 && prune <= 1)) invalid(where, `prune must be from 0 to 1, got ${prune}`);
  const rounding = setting.rounding ?? "nearest";
  if (rounding !== "nearest" && rounding !== "compensated") invalid(where, `rounding must be "nearest" or "compensated", got ${String(rounding)}`);
  if (rounding === "compensated" && (alpha !== null || prune !== 0)) invalid(where, "compensated rounding is searched without a scale and without pruning");
}

/** A float matrix (rank ≥ 2): the tensors compression-aware quantisation applies to. */
export function isQuantizable(tensor: TensorData): boolean {
  return isFloatPlaneDType(tensor.dtype) && tensor.shape.length >= 2;
}

/**
 * Applies a setting to a tensor: prunes it (spec §17.4), then computes the per-input-channel scale
 * (§17.3) from the pruned weights' column maxima and the activation maxima; or, for compensated
 * rounding (§17.5), replaces its values by the rounded grid points. A setting with alpha needs
 * statistics; a scale that comes out undefined (all statistics zero) is left out, which
 * reconstructs the same as s = 1. `original` may pass the tensor's values as binary32, converted once.
 */
export function prepareTensor(tensor: TensorData, setting: QuantSetting, stats?: ChannelStatistics, original?: Float32Array): PreparedTensor {
  const where = `tensor "${tensor.name}"`;
  checkSetting(setting, where);
  if (!isQuantizable(tensor)) invalid(where, `${tensor.dtype} ${JSON.stringify(tensor.shape)} is not a float matrix`);
  const { rows, cols } = matrixShape(tensor.shape, elementCount(tensor.shape));
  if (stats !== undefined && stats.absMax.length !== cols) invalid(where, `${stats.absMax.length} channel statistics for ${cols} input channels`);
  if (setting.alpha !== null && stats === undefined) invalid(where, "a per-input-channel scale (alpha) needs activation statistics from calibration");
  const values = original ?? toFloat32(tensor.dtype, tensor.data);
  if (setting.rounding === "compensated") return prepareCompensated(tensor, setting, values, rows, cols, stats);
  const pruned = setting.prune > 0 ? pruneRows(values, rows, cols, setting.prune, stats?.absMax) : values;
  const inputScale = setting.alpha !== null && stats !== undefined ? inputScaleFor(stats.absMax, columnAbsMax(pruned, rows, cols), setting.alpha) : null;
  const encoding: PreparedTensor["encoding"] = { encoding: "int-quant", bits: setting.bits, groupSize: setting.groupSize };
  if (inputScale !== null) encoding.inputScale = inputScale;
  const prepared = pruned === values ? tensor : { ...tensor, data: fromFloat32(tensor.dtype, pruned) };
  return { tensor: prepared, values: pruned, encoding };
}

/** The weights a reader reconstructs (spec §8.3) from a prepared tensor: quantised as packing would, then dequantised. */
export function reconstructPrepared(prepared: PreparedTensor): Float32Array {
  const { rows, cols } = matrixShape(prepared.tensor.shape, prepared.values.length);
  const { params, symbols } = quantizeRtn(prepared.values, rows, cols, prepared.encoding);
  return dequantize(params, symbols, rows, cols);
}

const rounders = new WeakMap<object, CompensatedRounder>();

/**
 * A tensor rounded with error compensation: its values replaced by grid points that the reference
 * quantiser maps to the chosen symbols. They are exact only in binary32, so the tensor must be F32.
 */
function prepareCompensated(tensor: TensorData, setting: QuantSetting, values: Float32Array, rows: number, cols: number, stats: ChannelStatistics | undefined): PreparedTensor {
  const where = `tensor "${tensor.name}"`;
  if (tensor.dtype !== "F32") invalid(where, `compensated rounding needs an F32 tensor, this one is ${tensor.dtype}`);
  const sample = stats?.sample;
  if (sample === undefined || sample.count === 0) invalid(where, "compensated rounding needs a calibration sample of the layer's inputs");
  let rounder = rounders.get(sample);
  if (rounder === undefined) {
    rounder = new CompensatedRounder(cols, sample);
    rounders.set(sample, rounder);
  }
  const rounded = rounder.round(values, rows, setting.bits, setting.groupSize);
  if (rounded === null) invalid(where, "compensated rounding needs F16 scales; this tensor's range needs F32 ones");
  return {
    tensor: { ...tensor, data: fromFloat32("F32", rounded) },
    values: rounded,
    encoding: { encoding: "int-quant", bits: setting.bits, groupSize: setting.groupSize },
  };
}
