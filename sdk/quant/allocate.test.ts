import { describe, expect, it } from "vitest";
import { Random } from "../testing/random.js";
import { BitAllocation, lowerHull, type AllocationInput } from "./allocate.js";
import type { Candidate } from "./candidates.js";

function candidate(bytes: number, error: number, bits = 4): Candidate {
  return { bits, groupSize: 0, alpha: null, prune: 0, bytes, error };
}

/** Random (bytes, error) clouds shaped like rate-distortion curves: error falls about 4x per 1000 bytes, with scatter. */
function randomTensors(seed: number, count: number): AllocationInput[] {
  const random = new Random(seed);
  return Array.from({ length: count }, (_, t) => {
    const scale = Math.exp(2 * random.gaussian());
    const candidates = Array.from({ length: 30 }, (_, c) => {
      const bytes = 500 + 1000 * (c % 7) + Math.floor(200 * random.next());
      return { ...candidate(bytes, scale * 4 ** (-bytes / 1000) * (1 + 0.5 * random.next()), 2 + (c % 7)), prune: c / 100 };
    });
    return { name: `t${t}`, elements: 4096, energy: 1, candidates, weight: Math.exp(random.gaussian()) };
  });
}

describe("lowerHull", () => {
  it("keeps exactly the points that minimise bytes + λ · error for some λ", () => {
    const random = new Random(8);
    const points = Array.from({ length: 60 }, () => candidate(Math.floor(random.next() * 1000), random.next()));
    const hull = lowerHull(points);
    // Brute force over a fine grid of λ: every minimiser must be on the hull.
    const minimisers = new Set<Candidate>();
    for (let e = -6; e <= 6; e += 0.001) {
      const lambda = 10 ** e;
      let best = points[0];
      for (const p of points) {
        const cost = p.bytes + lambda * p.error;
        const bestCost = best.bytes + lambda * best.error;
        if (cost < bestCost || (cost === bestCost && (p.bytes < best.bytes || (p.bytes === best.bytes && p.error < best.error)))) best = p;
      }
      minimisers.add(best);
    }
    for (const m of minimisers) expect(hull).toContain(m);
    // And the hull is convex, sizes rising and errors falling.
    for (let h = 1; h < hull.length; h++) {
      expect(hull[h].bytes).toBeGreaterThan(hull[h - 1].bytes);
      expect(hull[h].error).toBeLessThan(hull[h - 1].error);
      if (h >= 2) {
        const slope = (a: Candidate, b: Candidate) => (a.error - b.error) / (b.bytes - a.bytes);
        expect(slope(hull[h - 1], hull[h])).toBeLessThan(slope(hull[h - 2], hull[h - 1]));
      }
    }
  });
});

describe("BitAllocation", () => {
  const inputs = randomTensors(4, 12);
  const allocation = new BitAllocation(inputs);

  it("takes the longest plan within a target and no longer", () => {
    for (const budget of [20_000, 35_000, 50_000, 70_000]) {
      const k = allocation.largestWithin(budget)!;
      const plan = allocation.planAt(k);
      const total = [...plan.values()].reduce((sum, c) => sum + c.bytes, 0);
      expect(total).toBe(allocation.bytesAt(k));
      expect(total).toBeLessThanOrEqual(budget);
      if (k < allocation.stepCount) expect(allocation.bytesAt(k + 1)).toBeGreaterThan(budget);
    }
    expect(allocation.largestWithin(allocation.bytesAt(0) - 1)).toBeNull();
  });

  it("is monotone: more bytes never give more weighted error, and each tensor only moves up its hull", () => {
    let previousError = Infinity;
    let previousBytes = -Infinity;
    let previousPlan = allocation.planAt(0);
    for (let k = 0; k <= allocation.stepCount; k++) {
      expect(allocation.bytesAt(k)).toBeGreaterThan(previousBytes);
      expect(allocation.weightedErrorAt(k)).toBeLessThanOrEqual(previousError);
      const plan = allocation.planAt(k);
      for (const [name, chosen] of plan) expect(chosen.bytes).toBeGreaterThanOrEqual(previousPlan.get(name)!.bytes);
      previousBytes = allocation.bytesAt(k);
      previousError = allocation.weightedErrorAt(k);
      previousPlan = plan;
    }
  });

  it("is deterministic and independent of how the candidates are ordered", () => {
    const shuffled = inputs.map((input) => ({ ...input, candidates: [...input.candidates].reverse() }));
    const again = new BitAllocation(shuffled);
    for (const k of [0, 7, 31, allocation.stepCount]) expect(again.planAt(k)).toEqual(allocation.planAt(k));
  });

  it("beats every uniform choice of the same size on weighted error", () => {
    // A uniform plan: the same hull position for every tensor, counted from the cheapest.
    for (let position = 0; position < 4; position++) {
      const plan = inputs.map((input) => {
        const hull = lowerHull(input.candidates);
        return hull[Math.min(position, hull.length - 1)];
      });
      const bytes = plan.reduce((sum, c) => sum + c.bytes, 0);
      const error = plan.reduce((sum, c, t) => sum + inputs[t].weight * c.error, 0);
      const k = allocation.largestWithin(bytes)!;
      expect(allocation.weightedErrorAt(k)).toBeLessThanOrEqual(error);
    }
  });
});
