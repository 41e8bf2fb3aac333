import { f16BitsToF32, f32ToF16Bits } from "../../sdk/quant/float16.js";

/**
 * GGUF's two simplest block formats, quantised and dequantised the way ggml's reference code does
 * (ggml-quants.c, quantize_row_q8_0_ref and quantize_row_q4_0_ref), as baselines computed by the
 * same harness as QANS. Both cut each row into blocks of 32 weights with one F16 scale d per block.
 * ggml requires rows that are a multiple of 32; a shorter last block here is quantised over the
 * weights it has and is charged a whole block's bytes.
 */
export interface GgmlBlockFormat {
  name: string;
  /** Weights per block. */
  blockWeights: number;
  /** Bytes per block: the F16 scale and the packed codes. */
  blockBytes: number;
  /** Quantises one block in place: `values` in, dequantised values out. */
  roundTrip(values: Float32Array): void;
}

const f = Math.fround;

/** Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero, as C's roundf), x̂ = q · fp16(d). 8.5 bits per weight. */
export const Q8_0: GgmlBlockFormat = {
  name: "Q8_0",
  blockWeights: 32,
  blockBytes: 2 + 32,
  roundTrip(values) {
    let amax = 0;
    for (const v of values) amax = Math.max(amax, Math.abs(v));
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    const stored = f16BitsToF32(f32ToF16Bits(d));
    for (let j = 0; j < values.length; j++) {
      const x = f(values[j] * id);
      const q = Math.sign(x) * Math.round(Math.abs(x));
      values[j] = f(q * stored);
    }
  },
};

/**
 * Q4_0: m is the value of largest magnitude (with its sign), d = m / −8, q = min(15, trunc(x / d + 8.5)),
 * x̂ = (q − 8) · fp16(d): sixteen levels, −8 · d reaching m exactly. 4.5 bits per weight.
 */
export const Q4_0: GgmlBlockFormat = {
  name: "Q4_0",
  blockWeights: 32,
  blockBytes: 2 + 16,
  roundTrip(values) {
    let amax = 0;
    let max = 0;
    for (const v of values) {
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d !== 0 ? f(1 / d) : 0;
    const stored = f16BitsToF32(f32ToF16Bits(d));
    for (let j = 0; j < values.length; j++) {
      // x / d + 8.5 is ≥ 0, so C's (int8_t) truncation is a floor.
      const q = Math.min(15, Math.trunc(f(f(values[j] * id) + 8.5)));
      values[j] = f((q - 8) * stored);
    }
  },
};

/** A row-major [rows, cols] matrix quantised and dequantised block by block along its rows, and the bytes the format stores for it. */
export function ggmlRoundTrip(format: GgmlBlockFormat, values: Float32Array, rows: number, cols: number): { values: Float32Array; bytes: number } {
  const out = Float32Array.from(values);
  const blocksPerRow = Math.ceil(cols / format.blockWeights);
  for (let i = 0; i < rows; i++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const start = i * cols + b * format.blockWeights;
      format.roundTrip(out.subarray(start, Math.min((i + 1) * cols, start + format.blockWeights)));
    }
  }
  return { values: out, bytes: rows * blocksPerRow * format.blockBytes };
}
