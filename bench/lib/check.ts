import { createHash } from "node:crypto";
import type { QuantParams } from "../../sdk/index.js";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Relative size of one binary32 rounding error bound, doubled to cover the optional division by s_j (spec §8.3 step 4). */
const ROUNDING = 2 ** -23;
/** Smallest binary32 subnormal: the absolute rounding error near zero. */
const TINY = 2 ** -149;

export interface HalfStepCheck {
  elements: number;
  violations: number;
  /** Largest |restored − original| as a fraction of the element's step δ / s_j; 0 for an all-zero tensor. */
  worstStepFraction: number;
  firstViolation: { index: number; original: number; restored: number; allowed: number } | null;
}

/**
 * Checks the round-to-nearest guarantee of spec §15 step 6: each element of an int-quant tensor is
 * reconstructed within half its step δ[i, g(j)] / s_j of the original, up to the binary32
 * rounding of the reconstruction itself. `original` and `restored` are the row-major [rows, cols]
 * matrix; the deltas come from the tensor header, so a wrong scale in the file is caught too.
 */
export function checkWithinHalfStep(original: Float32Array, restored: Float32Array, quant: QuantParams, rows: number, cols: number): HalfStepCheck {
  if (original.length !== rows * cols || restored.length !== rows * cols) {
    throw new Error(`checkWithinHalfStep: ${original.length} and ${restored.length} elements for a ${rows} × ${cols} matrix`);
  }
  const groups = quant.groupSize === 0 ? 1 : Math.ceil(cols / quant.groupSize);
  let violations = 0;
  let worst = 0;
  let firstViolation: HalfStepCheck["firstViolation"] = null;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const index = i * cols + j;
      const g = quant.groupSize === 0 ? 0 : Math.floor(j / quant.groupSize);
      const step = quant.deltas[i * groups + g] / (quant.inputScale ? quant.inputScale[j] : 1);
      const error = Math.abs(restored[index] - original[index]);
      const allowed = step / 2 + ROUNDING * Math.abs(restored[index]) + TINY;
      if (step > 0) worst = Math.max(worst, error / step);
      else if (error > 0) worst = Infinity;
      if (!(error <= allowed)) {
        violations++;
        firstViolation ??= { index, original: original[index], restored: restored[index], allowed };
      }
    }
  }
  return { elements: rows * cols, violations, worstStepFraction: worst, firstViolation };
}
