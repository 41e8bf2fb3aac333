import type { NativeWeightSpec } from "../native/addon.js";
import { dequantize } from "../quant/dequantize.js";
import type { QuantParams } from "../quant/rtn.js";
import { orderedDotRows } from "./product-order.js";

/** A matrix whose weights are int-quant symbols (spec §8.3): its shape and parameters. */
export interface QuantMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly params: QuantParams;
}

/** Bytes a holder keeps for the parameters: deltas (binary32), zero points, input scale. */
export function quantParamBytes(params: QuantParams): number {
  return params.deltas.byteLength + (params.zeroPoints?.byteLength ?? 0) + (params.inputScale?.byteLength ?? 0);
}

/** The parameter fields of a native weight spec. */
export function nativeQuantFields(params: QuantParams): Pick<NativeWeightSpec, "bits" | "groupSize" | "deltas" | "zeroPoints" | "inputScale"> {
  return { bits: params.bits, groupSize: params.groupSize, deltas: params.deltas, zeroPoints: params.zeroPoints ?? null, inputScale: params.inputScale ?? null };
}

/**
 * The TypeScript product of rows [first, first + count) whose symbols start at symbols[at]: each
 * row dequantised into `row` (at least cols values) by the reference dequantiser, then multiplied with the
 * n inputs in the product order. out[i * rows + r], as `LinearWeight.matmul`.
 */
export function symbolRowsProduct(
  m: QuantMatrix,
  symbols: Uint8Array,
  at: number,
  first: number,
  count: number,
  xs: Float32Array,
  n: number,
  out: Float32Array,
  row: Float32Array,
): void {
  const { rows, cols, params } = m;
  const values = row.length === cols ? row : row.subarray(0, cols);
  for (let r = 0; r < count; r++) {
    const start = at + r * cols;
    dequantize(params, symbols.subarray(start, start + cols), rows, cols, values, (first + r) * cols);
    orderedDotRows(values, 0, 1, cols, xs, n, out, first + r, rows);
  }
}
