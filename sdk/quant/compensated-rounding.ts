import { QansError } from "../errors.js";
import { gramMatrix } from "./gram.js";
import { groupCount, quantizeRtn } from "./rtn.js";

/** Added to the diagonal of XᵀX, as a fraction of its mean, so that the inverse exists (GPTQ's dampening). */
const DAMPENING = 0.01;

/**
 * Error-compensated rounding on the reference quantiser's grid (spec §17.5), after GPTQ (Frantar
 * et al., 2022): the columns of a row are rounded one after the other, those of the largest input
 * energy first (GPTQ's "act order"), and each rounding error is carried into the columns not yet
 * rounded through the inverse of H = XᵀX, so that the layer's output error ‖(W − Ŵ) Xᵀ‖² ends up
 * smaller than with independent rounding at the same symbols' cost. The grid is the §15 step 7 quantiser's own (the same deltas), and in each group the weight
 * that sets the group's range keeps its round-to-nearest symbol ±(2^(b−1) − 1), so the values
 * returned are points of that grid which the reference quantiser maps back to exactly these
 * symbols and deltas: packing them needs nothing but the ordinary quantiser.
 */
export class CompensatedRounder {
  /** Columns in the order they are rounded: by decreasing H_jj, ties to the lower index. */
  private readonly order: Int32Array;
  /** Upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) for H with rows and columns in `order`, row-major [cols, cols]. */
  private readonly factor: Float64Array;

  constructor(
    readonly cols: number,
    sample: { rows: Float32Array; count: number },
  ) {
    if (sample.rows.length !== sample.count * cols) throw new QansError("INVALID_ARGUMENT", `CompensatedRounder: ${sample.rows.length} sample values, ${sample.count} × ${cols} expected`);
    const h = dampedGram(sample.rows, sample.count, cols);
    this.order = Int32Array.from({ length: cols }, (_, j) => j).sort((a, b) => h[b * cols + b] - h[a * cols + a] || a - b);
    const permuted = new Float64Array(cols * cols);
    for (let p = 0; p < cols; p++) for (let q = 0; q < cols; q++) permuted[p * cols + q] = h[this.order[p] * cols + this.order[q]];
    this.factor = inverseCholeskyFactor(permuted, cols);
  }

  /**
   * The weights of a row-major [rows, cols] matrix rounded with compensation to `bits` bits, per
   * row or in groups of `groupSize`, as binary32 values on the reference quantiser's grid; null when
   * the tensor needs F32 scales (then a multiple of a delta need not be exact in binary32).
   */
  round(values: Float32Array, rows: number, bits: number, groupSize: number): Float32Array | null {
    const { cols, factor, order } = this;
    const { params } = quantizeRtn(values, rows, cols, { bits, groupSize });
    if (params.scaleType !== "F16") return null;
    const qmax = 2 ** (bits - 1) - 1;
    const groups = groupCount(cols, groupSize);
    const width = groupSize === 0 ? cols : groupSize;
    const out = new Float32Array(rows * cols);
    const row = new Float64Array(cols);
    const anchors = new Int32Array(groups);
    for (let i = 0; i < rows; i++) {
      const base = i * cols;
      for (let j = 0; j < cols; j++) row[j] = values[base + j];
      // The anchor of a group is its first weight of largest magnitude: the one the delta came from.
      anchors.fill(-1);
      for (let j = 0; j < cols; j++) {
        const g = Math.floor(j / width);
        if (anchors[g] < 0 || Math.abs(values[base + j]) > Math.abs(values[base + anchors[g]])) anchors[g] = j;
      }
      for (let p = 0; p < cols; p++) {
        const j = order[p];
        const g = Math.floor(j / width);
        const delta = params.deltas[i * groups + g];
        let q = 0;
        if (delta > 0) {
          q = j === anchors[g] ? Math.sign(values[base + j]) * qmax : Math.max(-qmax, Math.min(qmax, Math.round(row[j] / delta)));
        }
        // q · delta is exact in binary32 (at most 7 + 11 significant bits); a zero is +0, as dequantisation gives it.
        const v = q === 0 ? 0 : q * delta;
        out[base + j] = v;
        const error = (row[j] - v) / factor[p * cols + p];
        for (let q = p + 1; q < cols; q++) row[order[q]] -= error * factor[p * cols + q];
      }
    }
    return out;
  }
}

function dampedGram(x: Float32Array, count: number, cols: number): Float64Array {
  const h = gramMatrix(x, count, cols);
  let trace = 0;
  for (let j = 0; j < cols; j++) trace += h[j * cols + j];
  // A tiny absolute floor keeps H positive definite when the sample has no energy at all.
  const damp = DAMPENING * (trace / Math.max(1, cols)) + 1e-12;
  for (let j = 0; j < cols; j++) h[j * cols + j] += damp;
  return h;
}

/** Cholesky factor L of a symmetric positive definite matrix (lower, H = LLᵀ). */
function cholesky(h: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = h[i * n + j];
      for (let k = 0; k < j; k++) sum -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(sum > 0)) throw new QansError("INVALID_ARGUMENT", "CompensatedRounder: XᵀX is not positive definite");
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j];
      }
    }
  }
  return l;
}

/** U with H⁻¹ = UᵀU, U upper triangular: the Cholesky factor of H⁻¹ that GPTQ's updates use. */
function inverseCholeskyFactor(h: Float64Array, n: number): Float64Array {
  const l = cholesky(h, n);
  // L⁻¹ (lower), then H⁻¹ = L⁻ᵀ L⁻¹, then its upper factor.
  const li = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    li[i * n + i] = 1 / l[i * n + i];
    for (let j = 0; j < i; j++) {
      let sum = 0;
      for (let k = j; k < i; k++) sum -= l[i * n + k] * li[k * n + j];
      li[i * n + j] = sum / l[i * n + i];
    }
  }
  const inverse = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let sum = 0;
      for (let k = j; k < n; k++) sum += li[k * n + i] * li[k * n + j];
      inverse[i * n + j] = sum;
      inverse[j * n + i] = sum;
    }
  }
  // Upper Cholesky of A = H⁻¹: U[i][i] = sqrt(A[i][i] − Σ_k<i U[k][i]²), U[i][j] = (A[i][j] − Σ_k<i U[k][i] U[k][j]) / U[i][i].
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    let diagonal = inverse[i * n + i];
    for (let k = 0; k < i; k++) diagonal -= u[k * n + i] * u[k * n + i];
    if (!(diagonal > 0)) throw new QansError("INVALID_ARGUMENT", "CompensatedRounder: H⁻¹ is not positive definite");
    const uii = Math.sqrt(diagonal);
    u[i * n + i] = uii;
    for (let j = i + 1; j < n; j++) {
      let sum = inverse[i * n + j];
      for (let k = 0; k < i; k++) sum -= u[k * n + i] * u[k * n + j];
      u[i * n + j] = sum / uii;
    }
  }
  return u;
}
