/**
 * XᵀX of the row-major [count, cols] sample X, in binary64, symmetric: the upper triangle is summed
 * over the rows in order (zeros skipped), then mirrored. The output-error meter and compensated
 * rounding both work from it.
 */
export function gramMatrix(x: Float32Array | Float64Array, count: number, cols: number): Float64Array {
  const gram = new Float64Array(cols * cols);
  for (let t = 0; t < count; t++) {
    const base = t * cols;
    for (let j = 0; j < cols; j++) {
      const xj = x[base + j];
      if (xj === 0) continue;
      const row = j * cols;
      for (let k = j; k < cols; k++) gram[row + k] += xj * x[base + k];
    }
  }
  for (let j = 0; j < cols; j++) for (let k = 0; k < j; k++) gram[j * cols + k] = gram[k * cols + j];
  return gram;
}
