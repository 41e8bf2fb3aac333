import { QansError } from "../errors.js";

/** Limits shared by every importer and exporter (spec §13). */
export const MAX_RANK = 8;
export const MAX_ELEMENTS = 2n ** 48n;

export interface CheckedShape {
  shape: number[];
  /** Exact element count; a bigint so that products never round. */
  elements: bigint;
}

/**
 * Validates an untrusted shape: an array of at most {@link MAX_RANK} non-negative integers (JSON
 * numbers or bigints) whose dimensions and product stay within {@link MAX_ELEMENTS}. Malformed
 * shapes are BAD_SHAPE; oversized ones LIMIT_EXCEEDED.
 */
export function checkShape(value: unknown, where: string): CheckedShape {
  if (!Array.isArray(value)) throw new QansError("BAD_SHAPE", `${where}: shape must be an array of integers`);
  if (value.length > MAX_RANK) {
    throw new QansError("LIMIT_EXCEEDED", `${where}: shape has ${value.length} dimensions, more than ${MAX_RANK}`);
  }
  const shape: number[] = [];
  let elements = 1n;
  for (const dim of value) {
    const isInteger = typeof dim === "bigint" || (typeof dim === "number" && Number.isInteger(dim));
    if (!isInteger || dim < 0) {
      throw new QansError("BAD_SHAPE", `${where}: shape entry ${String(dim)} is not a non-negative integer`);
    }
    const big = BigInt(dim);
    if (big > MAX_ELEMENTS) throw new QansError("LIMIT_EXCEEDED", `${where}: dimension ${big} exceeds 2^48`);
    shape.push(Number(big));
    elements *= big;
  }
  if (elements > MAX_ELEMENTS) {
    throw new QansError("LIMIT_EXCEEDED", `${where}: ${elements} elements exceed 2^48`);
  }
  return { shape, elements };
}
