import { QansError } from "../errors.js";
import { f16BitsToF32, f32ToF16Bits } from "./float16.js";
import { groupCount, MAX_GROUP_SIZE, type QuantParams } from "./rtn.js";

/**
 * Checks `int-quant` parameters against spec §8.3 for a [rows, cols] matrix, throwing BAD_HEADER
 * with `where` in the message. Readers call this once per tensor header, so {@link dequantize}
 * can stay free of per-value checks.
 */
export function validateQuantParams(params: QuantParams, rows: number, cols: number, where: string): void {
  const fail = (message: string): never => {
    throw new QansError("BAD_HEADER", `${where}: ${message}`);
  };
  const { bits, groupSize, scaleType, deltas, zeroPoints, inputScale } = params;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) fail(`bits ${bits} is not from 2 to 8`);
  if (!Number.isInteger(groupSize) || groupSize < 0 || groupSize > MAX_GROUP_SIZE) {
    fail(`group size ${groupSize} is not 0 or from 1 to 2^24`);
  }
  if (scaleType !== "F16" && scaleType !== "F32") fail(`scale type ${String(scaleType)} is not F16 or F32`);
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
    fail(`shape ${rows} × ${cols} is not a matrix`);
  }
  const count = rows * groupCount(cols, groupSize);
  if (deltas.length !== count) fail(`${deltas.length} deltas, expected ${count}`);
  for (let k = 0; k < count; k++) {
    const d = deltas[k];
    if (!Number.isFinite(d) || !(d >= 0)) fail(`delta ${k} is ${d}, not finite and ≥ 0`);
    if (scaleType === "F16" && f16BitsToF32(f32ToF16Bits(d)) !== d) fail(`delta ${k} = ${d} is not an F16 value`);
  }
  if (params.asymmetric) {
    if (zeroPoints === undefined) fail("asymmetric parameters without zero points");
    else {
      if (zeroPoints.length !== count) fail(`${zeroPoints.length} zero points, expected ${count}`);
      const limit = 2 ** bits;
      for (let k = 0; k < count; k++) {
        if (zeroPoints[k] >= limit) fail(`zero point ${k} is ${zeroPoints[k]}, not below 2^${bits}`);
      }
    }
  } else if (zeroPoints !== undefined) {
    fail("symmetric parameters with zero points");
  }
  if (inputScale !== undefined) {
    if (inputScale.length !== cols) fail(`${inputScale.length} input scales, expected ${cols}`);
    for (let j = 0; j < cols; j++) {
      const s = inputScale[j];
      if (!Number.isFinite(s) || !(s > 0)) fail(`input scale ${j} is ${s}, not finite and > 0`);
    }
  }
}

function invalid(message: string): never {
  throw new QansError("INVALID_ARGUMENT", `dequantize: ${message}`);
}

/**
 * Reconstructs elements `[firstElement, firstElement + symbols.length)` of the flattened
 * [rows, cols] matrix (element e is row floor(e / cols), column e mod cols), bit-exactly as spec
 * §8.3 prescribes. `symbols` holds that slice's symbols; `out`, when given, must have the same
 * length. Parameter values are trusted: check them with {@link validateQuantParams} first.
 */
export function dequantize(
  params: QuantParams,
  symbols: Uint8Array,
  rows: number,
  cols: number,
  out?: Float32Array,
  firstElement = 0,
): Float32Array {
  const { bits, asymmetric, groupSize, deltas, zeroPoints, inputScale } = params;
  const count = symbols.length;
  const result = out ?? new Float32Array(count);
  if (result.length !== count) invalid(`output has ${result.length} elements, symbols has ${count}`);
  if (!Number.isSafeInteger(firstElement) || firstElement < 0 || firstElement + count > rows * cols) {
    invalid(`elements [${firstElement}, ${firstElement + count}) are outside the ${rows} × ${cols} matrix`);
  }
  if (count === 0) return result;
  const groups = groupCount(cols, groupSize);
  if (deltas.length !== rows * groups) invalid(`${deltas.length} deltas, expected ${rows * groups}`);
  if (asymmetric && (zeroPoints === undefined || zeroPoints.length !== rows * groups)) {
    invalid(`asymmetric parameters need ${rows * groups} zero points`);
  }
  if (inputScale !== undefined && inputScale.length !== cols) invalid(`${inputScale.length} input scales, expected ${cols}`);

  const width = groupSize === 0 ? cols : groupSize;
  const symmetricZero = 2 ** (bits - 1);
  let row = Math.floor(firstElement / cols);
  let j = firstElement - row * cols;
  let k = 0;
  while (k < count) {
    const rowBase = row * groups;
    let g = groupSize === 0 ? 0 : Math.floor(j / groupSize);
    let boundary = Math.min(cols, (g + 1) * width);
    while (j < cols && k < count) {
      const d = deltas[rowBase + g];
      const z = asymmetric ? (zeroPoints as Uint8Array)[rowBase + g] : symmetricZero;
      const stop = Math.min(boundary, j + (count - k));
      // The fround calls are the spec's binary32 roundings; a double product of a small integer
      // and a binary32 value is exact, and rounding a double quotient of binary32 operands to
      // binary32 equals binary32 division, so this is the spec's arithmetic bit for bit.
      if (inputScale === undefined) {
        for (; j < stop; j++, k++) result[k] = Math.fround(Math.fround(symbols[k] - z) * d);
      } else {
        for (; j < stop; j++, k++) {
          const p = Math.fround(Math.fround(symbols[k] - z) * d);
          result[k] = Math.fround(p / inputScale[j]);
        }
      }
      g++;
      boundary = Math.min(cols, boundary + width);
    }
    if (j === cols) {
      j = 0;
      row++;
    }
  }
  return result;
}
