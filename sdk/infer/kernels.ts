/**
 * The decoder's arithmetic on F32 vectors. Dot products and sums of squares are carried in double
 * precision (JavaScript numbers) and rounded once when stored; the attention's weighted sum of
 * values accumulates in the F32 output, as a float loop would. Nothing here allocates: callers own
 * every buffer.
 */

/** out = weight * x / sqrt(mean(x^2) + eps), over the first `weight.length` values. `out` may be `x`. */
export function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, eps: number): void {
  const n = weight.length;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += x[i] * x[i];
  const scale = 1 / Math.sqrt(squares / n + eps);
  for (let i = 0; i < n; i++) out[i] = weight[i] * (scale * x[i]);
}

/**
 * The rotary angles of position `pos`: for pair p of a head of `headSize`, the angle is
 * pos * theta^(-2p / headSize). Writes headSize / 2 cosines and sines.
 */
export function ropeAngles(pos: number, headSize: number, theta: number, cos: Float32Array, sin: Float32Array): void {
  const half = headSize / 2;
  for (let p = 0; p < half; p++) {
    const angle = pos * Math.pow(theta, (-2 * p) / headSize);
    cos[p] = Math.cos(angle);
    sin[p] = Math.sin(angle);
  }
}

/**
 * Rotates each of `heads` heads of `vec` in the half-split layout of spec §6.2 (Hugging Face's
 * rotate-half): component p pairs with component p + headSize/2.
 */
export function applyRope(vec: Float32Array, heads: number, headSize: number, cos: Float32Array, sin: Float32Array): void {
  const half = headSize / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * headSize;
    for (let p = 0; p < half; p++) {
      const a = vec[base + p];
      const b = vec[base + p + half];
      vec[base + p] = a * cos[p] - b * sin[p];
      vec[base + p + half] = a * sin[p] + b * cos[p];
    }
  }
}

/** Softmax of the first `n` values of `x`, in place. */
export function softmaxInPlace(x: Float32Array, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[i] - max);
    x[i] = e;
    sum += e;
  }
  const inverse = 1 / sum;
  for (let i = 0; i < n; i++) x[i] *= inverse;
}

/**
 * Causal attention of one position over `length` cached positions, for every query head.
 * `keys` and `values` hold one row of `kvHeads * headSize` values per position; query head h reads
 * key/value head floor(h / groupSize) (grouped-query attention). `scores` needs `length` values.
 */
export function attention(
  out: Float32Array,
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  length: number,
  heads: number,
  headSize: number,
  groupSize: number,
  scores: Float32Array,
): void {
  const kvDim = (heads / groupSize) * headSize;
  const scale = 1 / Math.sqrt(headSize);
  for (let h = 0; h < heads; h++) {
    const qBase = h * headSize;
    const kvBase = Math.floor(h / groupSize) * headSize;
    for (let t = 0; t < length; t++) {
      const kBase = t * kvDim + kvBase;
      let dot = 0;
      for (let i = 0; i < headSize; i++) dot += q[qBase + i] * keys[kBase + i];
      scores[t] = dot * scale;
    }
    softmaxInPlace(scores, length);
    out.fill(0, qBase, qBase + headSize);
    for (let t = 0; t < length; t++) {
      const a = scores[t];
      const vBase = t * kvDim + kvBase;
      for (let i = 0; i < headSize; i++) out[qBase + i] += a * values[vBase + i];
    }
  }
}

/** gate = silu(gate) * up, the SwiGLU activation; silu(x) = x / (1 + e^-x). */
export function swiglu(gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** x += y, elementwise. */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}
