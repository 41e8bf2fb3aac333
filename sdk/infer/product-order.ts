/**
 * The one order of operations in which every weight holder computes its products (the TypeScript
 * reference of native/src/dot_rows.h), so that F32, int8-symbol and compressed holders, native or
 * not, at any instruction-set level and on any number of threads, give the same binary32 outputs
 * bit for bit. For a row w and an input x of `cols` binary32 values:
 *   1. each product w[c] * x[c] is formed in binary64, where it is exact;
 *   2. partial sum j (0..15) adds the products of columns j, j + 16, j + 32, ... in increasing
 *      order, from +0, each addition rounded to binary64;
 *   3. the partial sums are combined in a fixed tree: for step 8, 4, 2, 1, partial j += partial
 *      j + step for j < step;
 *   4. partial 0 is rounded once to binary32 when it is stored.
 * JavaScript numbers are binary64 and V8 never fuses a multiply with an add, so the code below is
 * that definition.
 */

/** Partial sums of the order. */
export const DOT_PARTIALS = 16;

/** The dot of w[wAt, wAt + cols) and x[xAt, xAt + cols), in the order above (not yet rounded). */
export function orderedDot(w: Float32Array, wAt: number, x: Float32Array, xAt: number, cols: number): number {
  let p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0;
  let p8 = 0, p9 = 0, p10 = 0, p11 = 0, p12 = 0, p13 = 0, p14 = 0, p15 = 0;
  const full = cols - (cols % DOT_PARTIALS);
  for (let c = 0; c < full; c += DOT_PARTIALS) {
    const a = wAt + c;
    const b = xAt + c;
    p0 += w[a] * x[b];
    p1 += w[a + 1] * x[b + 1];
    p2 += w[a + 2] * x[b + 2];
    p3 += w[a + 3] * x[b + 3];
    p4 += w[a + 4] * x[b + 4];
    p5 += w[a + 5] * x[b + 5];
    p6 += w[a + 6] * x[b + 6];
    p7 += w[a + 7] * x[b + 7];
    p8 += w[a + 8] * x[b + 8];
    p9 += w[a + 9] * x[b + 9];
    p10 += w[a + 10] * x[b + 10];
    p11 += w[a + 11] * x[b + 11];
    p12 += w[a + 12] * x[b + 12];
    p13 += w[a + 13] * x[b + 13];
    p14 += w[a + 14] * x[b + 14];
    p15 += w[a + 15] * x[b + 15];
  }
  // The last columns, fewer than 16, go to partial sums 0, 1, ... in turn.
  const rest = cols - full;
  const a = wAt + full;
  const b = xAt + full;
  if (rest > 0) p0 += w[a] * x[b];
  if (rest > 1) p1 += w[a + 1] * x[b + 1];
  if (rest > 2) p2 += w[a + 2] * x[b + 2];
  if (rest > 3) p3 += w[a + 3] * x[b + 3];
  if (rest > 4) p4 += w[a + 4] * x[b + 4];
  if (rest > 5) p5 += w[a + 5] * x[b + 5];
  if (rest > 6) p6 += w[a + 6] * x[b + 6];
  if (rest > 7) p7 += w[a + 7] * x[b + 7];
  if (rest > 8) p8 += w[a + 8] * x[b + 8];
  if (rest > 9) p9 += w[a + 9] * x[b + 9];
  if (rest > 10) p10 += w[a + 10] * x[b + 10];
  if (rest > 11) p11 += w[a + 11] * x[b + 11];
  if (rest > 12) p12 += w[a + 12] * x[b + 12];
  if (rest > 13) p13 += w[a + 13] * x[b + 13];
  if (rest > 14) p14 += w[a + 14] * x[b + 14];
  p0 += p8;
  p1 += p9;
  p2 += p10;
  p3 += p11;
  p4 += p12;
  p5 += p13;
  p6 += p14;
  p7 += p15;
  p0 += p4;
  p1 += p5;
  p2 += p6;
  p3 += p7;
  p0 += p2;
  p1 += p3;
  return p0 + p1;
}

/**
 * out[outAt + i * outStride + r] = row r of w (rows back to back from wAt) . input i of xs (inputs
 * back to back), for r < rows and i < n, each rounded to binary32 as it is stored.
 */
export function orderedDotRows(
  w: Float32Array,
  wAt: number,
  rows: number,
  cols: number,
  xs: Float32Array,
  n: number,
  out: Float32Array,
  outAt: number,
  outStride: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) out[outAt + i * outStride + r] = orderedDot(w, wAt + r * cols, xs, i * cols, cols);
  }
}
