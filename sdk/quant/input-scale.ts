import { QansError } from "../errors.js";

/**
 * The range of the per-input-channel scale after normalisation. Far outside it, w · s_j would
 * lose the weight's precision in binary32 or overflow; the search never wants such values anyway.
 */
const MIN_SCALE = 2 ** -24;
const MAX_SCALE = 2 ** 24;

function invalid(message: string): never {
  throw new QansError("INVALID_ARGUMENT", `inputScaleFor: ${message}`);
}

/** max over rows of |W[i, j]| for each column j of a row-major [rows, cols] matrix. */
export function columnAbsMax(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(cols);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = Math.abs(values[base + j]);
      if (v > out[j]) out[j] = v;
    }
  }
  return out;
}

/**
 * Replaces zero statistics with the smallest positive one, so that a channel that never fires (or
 * a column of zero weights) gets a finite scale instead of 0 or infinity: it is treated as the
 * least important channel. Null when every statistic is zero.
 */
function floorZeros(stats: Float32Array): Float64Array | null {
  let smallest = Infinity;
  for (const v of stats) if (v > 0 && v < smallest) smallest = v;
  if (smallest === Infinity) return null;
  return Float64Array.from(stats, (v) => (v > 0 ? v : smallest));
}

/**
 * The per-input-channel scale of compression-aware quantisation (spec §17):
 * `s_j = max|X_j|^a / max|W_:,j|^(1−a)`, divided by the geometric mean of all s_j so that the
 * scales are centred on 1 (the quantiser's grid depends only on their ratios, and centring keeps
 * `w · s_j` well inside binary32), clamped to [2^−24, 2^24] and rounded to binary32, the type the
 * file stores. Returns null when either statistic is zero for every channel: nothing to balance.
 */
export function inputScaleFor(activationMax: Float32Array, weightColumnMax: Float32Array, alpha: number): Float32Array | null {
  if (activationMax.length !== weightColumnMax.length) {
    invalid(`${activationMax.length} activation statistics, ${weightColumnMax.length} weight columns`);
  }
  if (!(alpha >= 0 && alpha <= 1)) invalid(`alpha must be from 0 to 1, got ${alpha}`);
  for (const stats of [activationMax, weightColumnMax]) {
    for (let j = 0; j < stats.length; j++) if (!(stats[j] >= 0) || !Number.isFinite(stats[j])) invalid(`statistic ${j} is ${stats[j]}, not finite and ≥ 0`);
  }
  const x = floorZeros(activationMax);
  const w = floorZeros(weightColumnMax);
  if (x === null || w === null) return null;
  const cols = x.length;
  // In logarithms: exact enough, and immune to overflow of the powers.
  const logs = new Float64Array(cols);
  let mean = 0;
  for (let j = 0; j < cols; j++) {
    logs[j] = alpha * Math.log2(x[j]) - (1 - alpha) * Math.log2(w[j]);
    mean += logs[j];
  }
  mean /= cols;
  const out = new Float32Array(cols);
  for (let j = 0; j < cols; j++) out[j] = Math.min(MAX_SCALE, Math.max(MIN_SCALE, 2 ** (logs[j] - mean)));
  return out;
}
