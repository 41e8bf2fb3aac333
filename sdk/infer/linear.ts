import { QansError } from "../errors.js";
import type { ModelReader } from "../reader.js";
import type { MatrixSpec } from "./architecture.js";

/**
 * A weight matrix as the decoder uses it: products with vectors, and single rows for the token
 * embedding. How the weights are held (decoded F32, int8, or compressed and decoded block by block)
 * is the implementation's business, so each tensor can be held its own way.
 */
export interface LinearWeight {
  readonly rows: number;
  readonly cols: number;
  /** Bytes this holder keeps in memory for the weight. */
  readonly residentBytes: number;
  /** out[r] = sum over c of W[r, c] * x[c], for `cols` inputs and `rows` outputs. */
  matvec(x: Float32Array, out: Float32Array): void;
  /** `n` products at once: `xs` holds n input vectors back to back, `out` n output vectors. */
  matmul?(xs: Float32Array, n: number, out: Float32Array): void;
  /** Copies row `r` into `out` (`cols` values): the token embedding's lookup. */
  row(r: number, out: Float32Array): void;
}

/** Makes the holder of one matrix of a model being loaded from a file. */
export type LinearLoader = (reader: ModelReader, spec: MatrixSpec) => Promise<LinearWeight>;

/** A matrix kept decoded as F32, row-major. */
export class ResidentF32Linear implements LinearWeight {
  readonly residentBytes: number;

  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly values: Float32Array,
  ) {
    if (values.length !== rows * cols) {
      throw new QansError("INVALID_ARGUMENT", `a ${rows} x ${cols} matrix needs ${rows * cols} values, got ${values.length}`);
    }
    this.residentBytes = values.byteLength;
  }

  matvec(x: Float32Array, out: Float32Array): void {
    const { rows, cols, values } = this;
    let r = 0;
    // Four rows at a time share each load of x, and their four sums proceed independently.
    for (; r + 4 <= rows; r += 4) {
      const b0 = r * cols;
      const b1 = b0 + cols;
      const b2 = b1 + cols;
      const b3 = b2 + cols;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let c = 0; c < cols; c++) {
        const xc = x[c];
        s0 += values[b0 + c] * xc;
        s1 += values[b1 + c] * xc;
        s2 += values[b2 + c] * xc;
        s3 += values[b3 + c] * xc;
      }
      out[r] = s0;
      out[r + 1] = s1;
      out[r + 2] = s2;
      out[r + 3] = s3;
    }
    for (; r < rows; r++) {
      const base = r * cols;
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += values[base + c] * x[c];
      out[r] = sum;
    }
  }

  matmul(xs: Float32Array, n: number, out: Float32Array): void {
    const { rows, cols } = this;
    for (let i = 0; i < n; i++) this.matvec(xs.subarray(i * cols, (i + 1) * cols), out.subarray(i * rows, (i + 1) * rows));
  }

  row(r: number, out: Float32Array): void {
    const { cols, values } = this;
    // A loop rather than set(subarray(...)), which would allocate a view per token.
    for (let c = 0, base = r * cols; c < cols; c++) out[c] = values[base + c];
  }
}

/** The default holder: the tensor read and decoded to F32 once, and kept. */
export const loadResidentF32: LinearLoader = async (reader, spec) => new ResidentF32Linear(spec.rows, spec.cols, await reader.readFloat32(spec.name));
