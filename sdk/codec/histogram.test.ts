import { describe, expect, it } from "vitest";
import { QansError } from "../errors.js";
import { addHistogram, distinctSymbols, entropyBits, histogram } from "./histogram.js";
import { Random } from "../testing/random.js";

describe("histogram", () => {
  it("counts every symbol exactly", () => {
    const random = new Random(1);
    const symbols = Uint8Array.from({ length: 10_007 }, () => random.int(200));
    const expected = new Float64Array(256);
    for (const v of symbols) expected[v]++;
    expect(Array.from(histogram(symbols))).toEqual(Array.from(expected));
  });

  it("handles short and empty inputs", () => {
    expect(Array.from(histogram(new Uint8Array(0), 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(histogram(Uint8Array.of(3, 1, 3), 4))).toEqual([0, 1, 0, 2]);
  });

  it("rejects symbols outside the alphabet and bad alphabet sizes", () => {
    expect(() => histogram(Uint8Array.of(0, 4), 4)).toThrow(QansError);
    expect(() => histogram(new Uint8Array(1), 0)).toThrow(QansError);
    expect(() => histogram(new Uint8Array(1), 257)).toThrow(QansError);
  });

  it("accumulates with addHistogram", () => {
    const into = histogram(Uint8Array.of(1, 2, 2), 8);
    addHistogram(into, Uint8Array.of(2, 7, 7, 7, 0));
    expect(Array.from(into)).toEqual([1, 1, 3, 0, 0, 0, 0, 3]);
    expect(() => addHistogram(into, Uint8Array.of(8))).toThrow(QansError);
  });

  it("computes order-0 entropy and distinct symbols", () => {
    expect(entropyBits([0, 0])).toBe(0);
    expect(entropyBits([5, 0])).toBe(0);
    expect(entropyBits([4, 4])).toBeCloseTo(8, 12);
    expect(entropyBits([1, 1, 2])).toBeCloseTo(6, 12);
    expect(distinctSymbols([0, 3, 0, 1])).toBe(2);
    expect(distinctSymbols(new Float64Array(256))).toBe(0);
  });
});
