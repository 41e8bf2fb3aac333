import { describe, expect, it } from "vitest";
import { codeOf } from "../testing/outcome.js";
import { Sampler, XorShiftRandom, argmax } from "./sampler.js";

const logitsOf = (probabilities: number[]) => Float32Array.from(probabilities, Math.log);

function frequencies(sampler: Sampler, logits: Float32Array, draws: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits)]++;
  return counts.map((c) => c / draws);
}

describe("XorShiftRandom", () => {
  it("gives llama2.c's numbers for a seed", () => {
    // random_u32() of llama2.c's run.c after rng_seed = 42, and random_f32() after rng_seed = 1000000.
    const random = new XorShiftRandom(42);
    expect([random.nextUint32(), random.nextUint32(), random.nextUint32(), random.nextUint32()]).toEqual([1456360119, 3359763283, 3393612768, 4054632243]);
    expect(new XorShiftRandom(1000000).nextFloat()).toBeCloseTo(0.054137826, 9);
  });

  it("does not get stuck at seed 0 and refuses negative or fractional seeds", () => {
    const random = new XorShiftRandom(0);
    const values = new Set(Array.from({ length: 10 }, () => random.nextUint32()));
    expect(values.size).toBe(10);
    expect(codeOf(() => new XorShiftRandom(-1))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => new XorShiftRandom(1.5))).toBe("INVALID_ARGUMENT");
  });
});

describe("Sampler", () => {
  const logits = logitsOf([0.1, 0.2, 0.3, 0.4]);

  it("at temperature 0 takes the argmax, the first of equals, and ignores the seed", () => {
    expect(new Sampler(4, { temperature: 0, seed: 1 }).sample(logits)).toBe(3);
    expect(new Sampler(4, { temperature: 0, seed: 2 }).sample(logits)).toBe(3);
    expect(argmax(Float32Array.of(1, 5, 5, 2))).toBe(1);
  });

  it("is deterministic for a seed and differs between seeds; it leaves the logits alone", () => {
    const draw = (seed: number) => {
      const sampler = new Sampler(4, { temperature: 1, seed });
      return Array.from({ length: 50 }, () => sampler.sample(logits));
    };
    const before = logits.slice();
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
    expect(logits).toEqual(before);
  });

  it("samples in proportion to softmax(logits / temperature)", () => {
    const draws = 40000;
    const plain = frequencies(new Sampler(4, { temperature: 1, seed: 3 }), logits, draws);
    [0.1, 0.2, 0.3, 0.4].forEach((p, i) => expect(Math.abs(plain[i] - p)).toBeLessThan(0.01));
    // Temperature 0.5 squares the probabilities before normalising: 1, 4, 9, 16 over 30.
    const sharp = frequencies(new Sampler(4, { temperature: 0.5, seed: 4 }), logits, draws);
    [1, 4, 9, 16].forEach((w, i) => expect(Math.abs(sharp[i] - w / 30)).toBeLessThan(0.01));
  });

  it("with top-p samples only the smallest set of likeliest tokens whose probabilities pass p", () => {
    // Sorted: 0.5, 0.3 (sum 0.8 > 0.7), so only tokens 0 and 1, renormalised to 5/8 and 3/8.
    const sampler = new Sampler(4, { temperature: 1, topP: 0.7, seed: 5 });
    const seen = frequencies(sampler, logitsOf([0.5, 0.3, 0.15, 0.05]), 20000);
    expect(seen[2] + seen[3]).toBe(0);
    expect(Math.abs(seen[0] - 5 / 8)).toBeLessThan(0.015);
  });

  it("refuses a negative temperature and a top-p outside (0, 1]", () => {
    expect(codeOf(() => new Sampler(4, { temperature: -1 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => new Sampler(4, { temperature: NaN }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => new Sampler(4, { temperature: 1, topP: 0 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => new Sampler(4, { temperature: 1, topP: 1.5 }))).toBe("INVALID_ARGUMENT");
  });
});
