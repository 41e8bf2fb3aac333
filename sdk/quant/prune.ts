import { QansError } from "../errors.js";

function invalid(message: string): never {
  throw new QansError("INVALID_ARGUMENT", `pruneRows: ${message}`);
}

/** Weights zeroed in each row of `cols` columns at prune fraction p: floor(p · cols + 1/2). */
export function prunedPerRow(cols: number, fraction: number): number {
  if (!(fraction >= 0 && fraction <= 1)) invalid(`fraction must be from 0 to 1, got ${fraction}`);
  return Math.min(cols, Math.floor(fraction * cols + 0.5));
}

/**
 * Zeroes the lowest-scoring `prunedPerRow(cols, fraction)` weights of each row of a row-major
 * [rows, cols] matrix and returns the pruned copy. The score is the l-infinity pruning score of
 * spec §17, `|W'_ij| · max_t |X_tj / s_j|`, which equals `|W_ij| · max_t |X_tj|` whatever the
 * scale s: scaling a column moves weight into it and activation out of it in equal measure, so
 * pruning can be decided before the scale. `channelMax` holds max_t |X_tj| per column; without it
 * (no calibration) the score is |W_ij|. Ties go to the lower column index, so the result is
 * deterministic.
 */
export function pruneRows(values: Float32Array, rows: number, cols: number, fraction: number, channelMax?: Float32Array): Float32Array {
  if (values.length !== rows * cols) invalid(`values has ${values.length} elements, ${rows} × ${cols} needs ${rows * cols}`);
  if (channelMax !== undefined && channelMax.length !== cols) invalid(`channelMax has ${channelMax.length} values, cols is ${cols}`);
  const count = prunedPerRow(cols, fraction);
  const out = Float32Array.from(values);
  if (count === 0) return out;
  const scores = new Float64Array(cols);
  const order = new Uint32Array(cols);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      scores[j] = Math.abs(values[base + j]) * (channelMax === undefined ? 1 : channelMax[j]);
      order[j] = j;
    }
    order.sort((a, b) => scores[a] - scores[b] || a - b);
    for (let k = 0; k < count; k++) out[base + order[k]] = 0;
  }
  return out;
}
