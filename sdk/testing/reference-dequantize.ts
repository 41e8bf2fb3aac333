import type { QuantParams } from "../quant/rtn.js";

/**
 * Spec §8.3's reconstruction written out operation by operation in binary32, independent of the
 * SDK's dequantiser, so tests and the conformance generator can check it against the spec's text.
 */
export function referenceDequantize(q: QuantParams, symbols: Uint8Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const groups = q.groupSize === 0 ? 1 : Math.ceil(cols / q.groupSize);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const k = i * groups + (q.groupSize === 0 ? 0 : Math.floor(j / q.groupSize));
      const z = q.asymmetric ? q.zeroPoints![k] : 2 ** (q.bits - 1);
      const a = Math.fround(symbols[i * cols + j] - z);
      const d = Math.fround(q.deltas[k]);
      let p = Math.fround(a * d);
      if (q.inputScale) p = Math.fround(p / q.inputScale[j]);
      out[i * cols + j] = p;
    }
  }
  return out;
}
