import { describe, expect, it } from "vitest";
import { parseSeedArg } from "./seed-arg.js";

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
