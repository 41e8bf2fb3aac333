import { QansError } from "../errors.js";

/** Memory for weights: a number of bytes, or a percentage of the weights' fully decoded size. */
export type MemoryBudget = { bytes: number } | { percent: number };

/** The budget in bytes, for weights that take `decodedBytes` fully decoded. */
export function budgetBytes(budget: MemoryBudget, decodedBytes: number): number {
  return "bytes" in budget ? budget.bytes : Math.floor((budget.percent / 100) * decodedBytes);
}

/**
 * Checks that the budget holds every weight decoded (INVALID_ARGUMENT otherwise), for a caller that
 * only holds weights decoded; `loadPlannedModel` (planned-model.ts) instead keeps some weights
 * compressed to meet a smaller budget.
 */
export function requireFullyResident(budget: MemoryBudget, decodedBytes: number): void {
  const bytes = budgetBytes(budget, decodedBytes);
  if (bytes < decodedBytes) {
    const asked = "percent" in budget ? `${budget.percent}% (${bytes} bytes)` : `${bytes} bytes`;
    throw new QansError(
      "INVALID_ARGUMENT",
      `a memory budget of ${asked} is less than the ${decodedBytes} bytes the weights take fully decoded`,
    );
  }
}
