import { QansError } from "../errors.js";
import { gramMatrix } from "./gram.js";

/**
 * Measures a linear layer's output error ‖(W − Ŵ) Xᵀ‖² over calibration inputs X (one row per
 * input vector, `cols` wide), the quantity the quantisation search trades against coded size.
 * The same sum is computed directly (rows · n · cols operations) or through the Gram matrix XᵀX
 * (rows · cols² operations), whichever is cheaper for the sample size. Without a sample the error
 * is ‖W − Ŵ‖², as if every input were a unit vector: the weight-only proxy.
 */
export class OutputErrorMeter {
  private readonly x: Float64Array | null;
  private readonly gram: Float64Array | null;
  readonly samples: number;

  constructor(
    readonly cols: number,
    sample?: { rows: Float32Array; count: number },
  ) {
    if (sample === undefined || sample.count === 0) {
      this.x = null;
      this.gram = null;
      this.samples = 0;
      return;
    }
    const { rows, count } = sample;
    if (rows.length !== count * cols) throw new QansError("INVALID_ARGUMENT", `OutputErrorMeter: ${rows.length} sample values, ${count} × ${cols} expected`);
    this.samples = count;
    this.x = Float64Array.from(rows);
    this.gram = count > cols ? gramMatrix(this.x, count, cols) : null;
  }

  /** ‖(W − Ŵ) Xᵀ‖² for row-major [rows, cols] matrices W (`original`) and Ŵ. */
  error(original: Float32Array, reconstructed: Float32Array): number {
    const { cols } = this;
    if (original.length !== reconstructed.length || original.length % Math.max(1, cols) !== 0) {
      throw new QansError("INVALID_ARGUMENT", `OutputErrorMeter: matrices of ${original.length} and ${reconstructed.length} elements, ${cols} columns`);
    }
    const rows = cols === 0 ? 0 : original.length / cols;
    const d = new Float64Array(cols);
    let total = 0;
    for (let i = 0; i < rows; i++) {
      const base = i * cols;
      for (let j = 0; j < cols; j++) d[j] = original[base + j] - reconstructed[base + j];
      total += this.rowError(d);
    }
    return total;
  }

  /** ‖W Xᵀ‖²: the error of reconstructing every weight as zero, the scale of the layer's output. */
  energy(original: Float32Array): number {
    return this.error(original, new Float32Array(original.length));
  }

  private rowError(d: Float64Array): number {
    const { cols, x, gram } = this;
    if (x === null) {
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += d[j] * d[j];
      return sum;
    }
    let sum = 0;
    if (gram !== null) {
      // dᵀGd over the upper triangle: G is symmetric, so each off-diagonal term counts twice.
      let cross = 0;
      for (let j = 0; j < cols; j++) {
        const dj = d[j];
        if (dj === 0) continue;
        const base = j * cols;
        let dot = 0;
        for (let k = j + 1; k < cols; k++) dot += gram[base + k] * d[k];
        sum += dj * dj * gram[base + j];
        cross += dj * dot;
      }
      return sum + 2 * cross;
    }
    for (let t = 0; t < this.samples; t++) {
      const base = t * cols;
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += x[base + j] * d[j];
      sum += dot * dot;
    }
    return sum;
  }
}
