import { describe, expect, it } from "vitest";
import { parseSeedArg, seededRandom } from "./random.js";

describe("seededRandom", () => {
  it("repeats its sequence for a seed and stays in [0, 1)", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const first = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(first);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(43)()).not.toBe(first[0]);
  });
});

describe("parseSeedArg", () => {
  it("reads both spellings and reports absence", () => {
    expect(parseSeedArg(["--seed", "7"])).toBe(7);
    expect(parseSeedArg(["--keep", "--seed=4294967295"])).toBe(4294967295);
    expect(parseSeedArg(["--keep"])).toBeNull();
  });

  it("rejects a missing or malformed value", () => {
    expect(() => parseSeedArg(["--seed"])).toThrow(/--seed/);
    expect(() => parseSeedArg(["--seed", "-1"])).toThrow(/--seed/);
    expect(() => parseSeedArg(["--seed=4294967296"])).toThrow(/--seed/);
  });
});
