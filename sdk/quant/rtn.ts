import { QansError } from "../errors.js";
import { F16_MAX, roundUpToF16, roundUpToF32 } from "./float16.js";

/** Parameters of an `int-quant` tensor (spec §8.3), in the layout the tensor header stores. */
export interface QuantParams {
  bits: number;
  asymmetric: boolean;
  /** 0 = one group per row. */
  groupSize: number;
  scaleType: "F16" | "F32";
  /** Row-major [rows, groups]; every value exactly representable in `scaleType`. */
  deltas: Float32Array;
  /** Row-major [rows, groups]; present exactly when `asymmetric`. */
  zeroPoints?: Uint8Array;
  /** Per-input-channel scale s, one per column. */
  inputScale?: Float32Array;
}

export interface QuantizeOptions {
  bits: number;
  asymmetric?: boolean;
  /** 0 (default) = one group per row; otherwise 1 ≤ groupSize ≤ 2^24. */
  groupSize?: number;
  /** Default "auto": F16 unless some delta exceeds the F16 range. */
  scaleType?: "F16" | "F32" | "auto";
  /** Per-input-channel scale, length cols, finite and > 0; the quantiser sees W · diag(s). */
  inputScale?: Float32Array;
}

/** Largest group size the format allows (spec §13). */
export const MAX_GROUP_SIZE = 2 ** 24;

/** Number of groups per row: 1 for per-row quantisation, otherwise ceil(cols / groupSize). */
export function groupCount(cols: number, groupSize: number): number {
  return groupSize === 0 ? 1 : Math.ceil(cols / groupSize);
}

/** Round half to even on a binary64 value. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends ties towards +infinity; pull odd results of ties back down.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function invalid(message: string): never {
  throw new QansError("INVALID_ARGUMENT", `quantizeRtn: ${message}`);
}

function isCount(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

/**
 * The reference round-to-nearest quantiser (spec §15 step 6). Per group, in binary64: the scale δ
 * comes from the group's range and is rounded *up* to the scale type, so no element needs
 * clamping and every element reconstructs within δ/2 (÷ s_j) of its value, up to binary32
 * rounding. `values` is the row-major [rows, cols] matrix.
 */
export function quantizeRtn(
  values: Float32Array,
  rows: number,
  cols: number,
  options: QuantizeOptions,
): { params: QuantParams; symbols: Uint8Array } {
  const { bits, inputScale } = options;
  const asymmetric = options.asymmetric ?? false;
  const groupSize = options.groupSize ?? 0;
  const scaleOption = options.scaleType ?? "auto";

  if (!Number.isInteger(bits) || bits < 2 || bits > 8) invalid(`bits must be an integer from 2 to 8, got ${bits}`);
  if (!Number.isInteger(groupSize) || groupSize < 0 || groupSize > MAX_GROUP_SIZE) {
    invalid(`groupSize must be 0 or an integer from 1 to 2^24, got ${groupSize}`);
  }
  if (scaleOption !== "F16" && scaleOption !== "F32" && scaleOption !== "auto") {
    invalid(`scaleType must be "F16", "F32" or "auto", got ${String(scaleOption)}`);
  }
  if (!isCount(rows) || !isCount(cols)) invalid(`rows and cols must be non-negative integers, got ${rows} × ${cols}`);
  if (values.length !== rows * cols) invalid(`values has ${values.length} elements, ${rows} × ${cols} needs ${rows * cols}`);
  if (inputScale !== undefined) {
    if (inputScale.length !== cols) invalid(`inputScale has ${inputScale.length} values, cols is ${cols}`);
    for (let j = 0; j < cols; j++) {
      const s = inputScale[j];
      if (!Number.isFinite(s) || !(s > 0)) invalid(`inputScale[${j}] = ${s} is not finite and positive`);
    }
  }

  const groups = groupCount(cols, groupSize);
  const width = groupSize === 0 ? cols : groupSize;
  const levels = 2 ** bits - 1;
  const qmax = 2 ** (bits - 1) - 1;
  const symmetricZero = 2 ** (bits - 1);

  // The quantiser's view of an element: w' = fround(w · s_j).
  const scaled = (index: number, j: number): number => {
    const w = values[index];
    const v = inputScale === undefined ? w : Math.fround(w * inputScale[j]);
    if (!Number.isFinite(v)) {
      if (!Number.isFinite(w)) invalid(`values[${index}] = ${w} is not finite`);
      invalid(`values[${index}] = ${w} times inputScale[${j}] overflows binary32`);
    }
    return v;
  };

  // Pass 1: exact binary64 deltas, so the scale type can be chosen for the whole tensor.
  const exact = new Float64Array(rows * groups);
  const lows = asymmetric ? new Float64Array(rows * groups) : undefined;
  let largest = 0;
  for (let i = 0; i < rows; i++) {
    const rowBase = i * cols;
    for (let g = 0; g < groups; g++) {
      const start = g * width;
      const end = Math.min(cols, start + width);
      let lo = 0;
      let hi = 0;
      for (let j = start; j < end; j++) {
        const v = scaled(rowBase + j, j);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const d = asymmetric ? (hi - lo) / levels : Math.max(hi, -lo) / qmax;
      exact[i * groups + g] = d;
      if (lows !== undefined) lows[i * groups + g] = lo;
      if (d > largest) largest = d;
    }
  }

  let scaleType: "F16" | "F32";
  if (scaleOption === "auto") scaleType = largest > F16_MAX ? "F32" : "F16";
  else scaleType = scaleOption;
  if (scaleType === "F16" && largest > F16_MAX) {
    invalid(`a delta of ${largest} exceeds the F16 range; use scaleType "F32" or "auto"`);
  }
  const roundUp = scaleType === "F16" ? roundUpToF16 : roundUpToF32;

  const deltas = new Float32Array(rows * groups);
  const zeroPoints = asymmetric ? new Uint8Array(rows * groups) : undefined;
  const symbols = new Uint8Array(rows * cols);
  const uMin = asymmetric ? 0 : 1;

  // Pass 2: round each delta up to the scale type, then the symbols.
  for (let i = 0; i < rows; i++) {
    const rowBase = i * cols;
    for (let g = 0; g < groups; g++) {
      const start = g * width;
      const end = Math.min(cols, start + width);
      const k = i * groups + g;
      const d = exact[k];
      // An all-zero asymmetric group has no range to centre; z = 0 is the natural choice.
      let z = asymmetric ? 0 : symmetricZero;
      if (d === 0) {
        symbols.fill(z, rowBase + start, rowBase + end);
        if (zeroPoints !== undefined) zeroPoints[k] = z;
        continue;
      }
      const delta = roundUp(d);
      if (!Number.isFinite(delta)) invalid(`a delta of ${d} exceeds the ${scaleType} range`);
      deltas[k] = delta;
      if (zeroPoints !== undefined && lows !== undefined) {
        z = Math.min(levels, Math.max(0, roundHalfEven(-lows[k] / delta)));
        zeroPoints[k] = z;
      }
      for (let j = start; j < end; j++) {
        const v = scaled(rowBase + j, j);
        const u = roundHalfEven(v / delta) + z;
        symbols[rowBase + j] = u < uMin ? uMin : u > levels ? levels : u;
      }
    }
  }

  const params: QuantParams = { bits, asymmetric, groupSize, scaleType, deltas };
  if (zeroPoints !== undefined) params.zeroPoints = zeroPoints;
  if (inputScale !== undefined) params.inputScale = Float32Array.from(inputScale);
  return { params, symbols };
}
