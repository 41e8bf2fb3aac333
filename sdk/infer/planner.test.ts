import { describe, expect, it } from "vitest";
import { QansError } from "../errors.js";
import { codeOf } from "../testing/outcome.js";
import { blockBalance } from "./holder-costs.js";
import type { HolderKind } from "./holders.js";
import { planHolders, type PlanTensor } from "./planner.js";

/** A tensor of `weights` weights under a synthetic cost model: F32 4 bytes a weight, int8 1, compressed `ratio`. */
function tensor(name: string, weights: number, seconds: Record<HolderKind, number>, ratio = 0.5): PlanTensor {
  return {
    name,
    options: [
      { kind: "f32", bytes: 4 * weights, seconds: seconds.f32 },
      { kind: "int8", bytes: weights, seconds: seconds.int8 },
      { kind: "compressed", bytes: Math.round(ratio * weights), seconds: seconds.compressed },
    ],
  };
}

// Compressed products cost decoding: more per weight the worse the tensor compresses.
const model: PlanTensor[] = [
  tensor("a", 1000, { f32: 1.0, int8: 1.2, compressed: 3.0 }),
  tensor("b", 4000, { f32: 4.0, int8: 4.4, compressed: 6.0 }, 0.4),
  tensor("c", 2000, { f32: 2.0, int8: 2.1, compressed: 8.0 }, 0.6),
  tensor("d", 500, { f32: 0.5, int8: 0.6, compressed: 0.7 }, 0.3),
];
const FIXED = 100;
const bytesOf = (plan: ReturnType<typeof planHolders>) => FIXED + model.reduce((sum, t) => sum + t.options.find((o) => o.kind === plan.choices.get(t.name))!.bytes, 0);

describe("planHolders", () => {
  it("keeps every tensor in its fastest holder when the budget allows it", () => {
    const plan = planHolders(model, 1e9, FIXED);
    expect([...plan.choices.values()]).toEqual(["f32", "f32", "f32", "f32"]);
    expect(plan.steps).toEqual([]);
    expect(plan.bytes).toBe(FIXED + 4 * 7500);
    expect(plan.seconds).toBeCloseTo(7.5, 12);
  });

  it("meets every budget from the fastest plan's size down to the smallest, at the bytes it reports", () => {
    const fastest = FIXED + 4 * 7500;
    const smallest = FIXED + 500 + 1600 + 1200 + 150;
    for (let budget = fastest; budget >= smallest; budget -= 97) {
      const plan = planHolders(model, budget, FIXED);
      expect(plan.bytes, `budget ${budget}`).toBeLessThanOrEqual(budget);
      expect(plan.bytes).toBe(bytesOf(plan));
      expect(plan.minimumBytes).toBe(smallest);
    }
  });

  it("demotes greedily by bytes freed per second added, largest ratio first", () => {
    // Just above every tensor in int8 and compressed where that is cheapest: the demotions run long.
    const plan = planHolders(model, FIXED + 4000, FIXED);
    const demotions = plan.steps.filter((step) => step.bytesSaved > 0);
    const ratio = (step: { bytesSaved: number; secondsAdded: number }) => (step.secondsAdded <= 0 ? Infinity : step.bytesSaved / step.secondsAdded);
    // Each demotion was the best available when it was made, so over the tensors it touched the
    // ratios never rise; the first is the best of all first moves.
    const firstMoves = model.flatMap((t) => t.options.filter((o) => o.kind !== "f32").map((o) => (4 * (t.options[0].bytes / 4) - o.bytes) / (o.seconds - t.options[0].seconds)));
    expect(ratio(demotions[0])).toBeCloseTo(Math.max(...firstMoves), 9);
    for (let i = 1; i < demotions.length; i++) expect(ratio(demotions[i]), `step ${i}`).toBeLessThanOrEqual(ratio(demotions[i - 1]) + 1e-9);
    // The sequence of this model, worked out by hand: f32 → int8 frees 3 bytes a weight for 0.1-0.4 s.
    expect(demotions.slice(0, 4).map((s) => `${s.name}:${s.to}`)).toEqual(["c:int8", "b:int8", "a:int8", "d:int8"]);
  });

  it("spends what the last demotion freed beyond the budget on faster holders", () => {
    // 2000 bytes over: c to int8 is the best demotion (6000 bytes for 0.1 s); nothing faster fits after it.
    const budget = FIXED + 4 * 7500 - 2000;
    const plan = planHolders(model, budget, FIXED);
    expect([...plan.choices.values()]).toEqual(["f32", "f32", "int8", "f32"]);
    expect(plan.seconds).toBeCloseTo(7.6, 12);
    // 40 bytes over: "small" goes first (30 bytes for 0.0001 s) but is not enough; "big" then frees
    // 3000, and "small" fits back in F32.
    const overshoot = planHolders([tensor("big", 1000, { f32: 1, int8: 1.05, compressed: 5 }), tensor("small", 10, { f32: 0.01, int8: 0.0101, compressed: 0.6 })], 4000, 0);
    expect(overshoot.steps.map((step) => `${step.name}:${step.from}>${step.to}`)).toEqual(["small:f32>int8", "big:f32>int8", "small:int8>f32"]);
    expect(overshoot.steps[2].bytesSaved).toBe(-30);
    expect(overshoot.choices.get("small")).toBe("f32");
    expect(overshoot.bytes).toBe(1040);
  });

  it("refuses a budget below every tensor in its smallest holder with INVALID_ARGUMENT naming both", () => {
    const smallest = FIXED + 500 + 1600 + 1200 + 150;
    expect(() => planHolders(model, smallest - 1, FIXED)).toThrow(QansError);
    expect(codeOf(() => planHolders(model, smallest - 1, FIXED))).toBe("INVALID_ARGUMENT");
    expect(() => planHolders(model, smallest - 1, FIXED, "10% (3449 bytes)")).toThrow(/a memory budget of 10% \(3449 bytes\) is less than the 3550 bytes/);
    expect(planHolders(model, smallest, FIXED).bytes).toBe(smallest);
    expect(codeOf(() => planHolders([{ name: "x", options: [] }], 100))).toBe("INVALID_ARGUMENT");
  });
});

describe("blockBalance", () => {
  it("is the busiest thread's share over an even share when threads take blocks in turn", () => {
    const block = (count: number) => ({ count });
    expect(blockBalance([block(10), block(10)], 2)).toBe(1);
    expect(blockBalance([block(10), block(10), block(10)], 2)).toBeCloseTo(20 / 15, 12);
    expect(blockBalance([block(10), block(10), block(10), block(10), block(5)], 2)).toBeCloseTo(25 / 22.5, 12);
    expect(blockBalance([block(10)], 2)).toBe(2);
    expect(blockBalance([block(10), block(3)], 1)).toBe(1);
    expect(blockBalance([], 4)).toBe(1);
  });
});
