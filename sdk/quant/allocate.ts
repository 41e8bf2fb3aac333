import { QansError } from "../errors.js";
import type { Candidate, TensorCandidates } from "./candidates.js";

/** A tensor's measured settings and the weight of its error in the model-level objective. */
export interface AllocationInput extends TensorCandidates {
  /** Multiplies the tensor's error (its sensitivity); 1 counts raw output error. */
  weight: number;
}

/** One move of the allocation: a tensor goes from its current setting to the next on its hull. */
interface Step {
  tensor: number;
  to: Candidate;
  bytes: number;
  /** Weighted error saved per byte spent. */
  gain: number;
}

/**
 * The lower convex hull of a tensor's (bytes, error) points: the settings that some trade-off
 * λ between size and error picks (minimising bytes + λ · error), cheapest first. Every other
 * setting is dominated by one of these or by a mix of two neighbours. Ties keep the earlier
 * candidate, so the result depends only on the candidates' order.
 */
export function lowerHull(candidates: readonly Candidate[]): Candidate[] {
  const sorted = candidates
    .map((candidate, index) => ({ candidate, index }))
    .filter(({ candidate }) => Number.isFinite(candidate.error) && Number.isFinite(candidate.bytes))
    .sort((a, b) => a.candidate.bytes - b.candidate.bytes || a.candidate.error - b.candidate.error || a.index - b.index)
    .map(({ candidate }) => candidate);
  const hull: Candidate[] = [];
  for (const point of sorted) {
    // Only points that lower the error are worth more bytes.
    if (hull.length > 0 && point.error >= hull[hull.length - 1].error) continue;
    while (hull.length >= 2) {
      const a = hull[hull.length - 2];
      const b = hull[hull.length - 1];
      // b is above the segment a → point (or on it): it is never the unique best trade-off.
      const cross = (b.bytes - a.bytes) * (point.error - a.error) - (b.error - a.error) * (point.bytes - a.bytes);
      if (cross <= 0) hull.pop();
      else break;
    }
    hull.push(point);
  }
  return hull;
}

/**
 * Greedy bit allocation over the tensors' hulls, in the manner of Lagrangian rate-distortion
 * allocation: every tensor starts at its smallest setting, and the moves to the next hull point
 * are taken in order of weighted error saved per byte, largest first. Because each hull is convex,
 * a tensor's moves come in its own order, and the first k moves are the optimal allocation for
 * their total size among mixes of hull points. A bigger budget takes a longer prefix of the same
 * sequence, so size grows and error falls monotonically with the budget. Deterministic: ties go
 * to the earlier tensor.
 */
export class BitAllocation {
  private readonly inputs: readonly AllocationInput[];
  private readonly hulls: Candidate[][];
  private readonly steps: Step[];
  /** Total bytes after the first k steps, k = 0..steps. */
  private readonly cumulativeBytes: Float64Array;

  constructor(inputs: readonly AllocationInput[]) {
    this.inputs = inputs;
    this.hulls = inputs.map((input) => {
      if (!(input.weight >= 0) || !Number.isFinite(input.weight)) throw new QansError("INVALID_ARGUMENT", `tensor "${input.name}": error weight ${input.weight} is not finite and ≥ 0`);
      const hull = lowerHull(input.candidates);
      if (hull.length === 0) throw new QansError("INVALID_ARGUMENT", `tensor "${input.name}" has no measured setting to allocate`);
      return hull;
    });
    const steps: Step[] = [];
    this.hulls.forEach((hull, tensor) => {
      const weight = inputs[tensor].weight;
      for (let h = 1; h < hull.length; h++) {
        const bytes = hull[h].bytes - hull[h - 1].bytes;
        steps.push({ tensor, to: hull[h], bytes, gain: (weight * (hull[h - 1].error - hull[h].error)) / bytes });
      }
    });
    // Within a tensor gains fall along the hull; the stable sort keeps that order among equal gains.
    steps.sort((a, b) => b.gain - a.gain || a.tensor - b.tensor);
    this.steps = steps;
    this.cumulativeBytes = new Float64Array(steps.length + 1);
    this.cumulativeBytes[0] = this.hulls.reduce((sum, hull) => sum + hull[0].bytes, 0);
    steps.forEach((step, k) => (this.cumulativeBytes[k + 1] = this.cumulativeBytes[k] + step.bytes));
  }

  /** Moves available: plans are indexed 0 (every tensor at its smallest) to `stepCount` (every tensor at its most accurate). */
  get stepCount(): number {
    return this.steps.length;
  }

  /** Total bytes of plan k. */
  bytesAt(k: number): number {
    return this.cumulativeBytes[this.checkStep(k)];
  }

  /** The setting of every tensor after the first k moves, by tensor name, in input order. */
  planAt(k: number): Map<string, Candidate> {
    const chosen = this.chosenAt(k);
    return new Map(this.inputs.map((input, t) => [input.name, chosen[t]]));
  }

  /** Σ weight · error of plan k: the proxy the allocation minimises. */
  weightedErrorAt(k: number): number {
    return this.chosenAt(k).reduce((total, candidate, t) => total + this.inputs[t].weight * candidate.error, 0);
  }

  /** The longest prefix whose total is at most `bytes`, or null when even plan 0 is larger. */
  largestWithin(bytes: number): number | null {
    if (!(this.cumulativeBytes[0] <= bytes)) return null;
    let lo = 0;
    let hi = this.steps.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.cumulativeBytes[mid] <= bytes) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private chosenAt(k: number): Candidate[] {
    const chosen = this.hulls.map((hull) => hull[0]);
    for (let s = 0; s < this.checkStep(k); s++) chosen[this.steps[s].tensor] = this.steps[s].to;
    return chosen;
  }

  private checkStep(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > this.steps.length) throw new QansError("INVALID_ARGUMENT", `plan ${k} is not from 0 to ${this.steps.length}`);
    return k;
  }
}
