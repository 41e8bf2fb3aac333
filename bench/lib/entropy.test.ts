import { describe, expect, it } from "vitest";
import type { TensorData } from "../../sdk/index.js";
import { bf16BoundBits, castModelToBf16, modelBf16Bound, symbolEntropyBytes } from "./entropy.js";

/** Little-endian bytes of BF16 bit patterns. */
function bf16(...patterns: number[]): Uint8Array {
  return new Uint8Array(patterns.flatMap((p) => [p & 0xff, p >>> 8]));
}

describe("bf16BoundBits", () => {
  it("equals a hand-computed bound on a tiny tensor", () => {
    // 1.0, 1.0, 2.0, −1.0: exponent fields 127, 127, 128, 127 (the sign lives in the other plane).
    // H0 = 3·log2(4/3) + 1·log2(4) bits, plus 8 bits for each of the 4 sign-and-mantissa bytes.
    const expected = 3 * Math.log2(4 / 3) + 2 + 32;
    expect(bf16BoundBits(bf16(0x3f80, 0x3f80, 0x4000, 0xbf80))).toBeCloseTo(expected, 12);
    expect(expected).toBeCloseTo(35.245112498, 8);
  });

  it("is 8 bits per element when every exponent is the same", () => {
    expect(bf16BoundBits(bf16(0x3f80, 0x3f81, 0xbfff, 0x3f80))).toBe(32);
  });
});

describe("modelBf16Bound", () => {
  it("adds BF16 bounds and counts other dtypes at their raw size", () => {
    const tensors: TensorData[] = [
      { name: "w", dtype: "BF16", shape: [2, 2], data: bf16(0x3f80, 0x3f80, 0x4000, 0xbf80) },
      { name: "shape", dtype: "I32", shape: [2], data: new Uint8Array(8) },
    ];
    const { modelBytes, boundBytes } = modelBf16Bound(tensors);
    expect(modelBytes).toBe(16);
    expect(boundBytes).toBeCloseTo((3 * Math.log2(4 / 3) + 2 + 32) / 8 + 8, 12);
  });
});

describe("castModelToBf16", () => {
  it("rounds float tensors to BF16 and leaves integer tensors alone", () => {
    // 1 + 3·2^-8 lies halfway between BF16 neighbours 1 + 2^-7 (odd) and 1 + 2^-6 (even).
    const f32 = new Uint8Array(new Float32Array([1, -2.5, 1 + 3 * 2 ** -8]).buffer);
    const ints = new Uint8Array([1, 0, 0, 0]);
    const model = castModelToBf16({
      metadata: {},
      tensors: [
        { name: "w", dtype: "F32", shape: [3], data: f32 },
        { name: "n", dtype: "I32", shape: [1], data: ints },
      ],
    });
    expect(model.tensors[0].dtype).toBe("BF16");
    expect([...model.tensors[0].data]).toEqual([0x80, 0x3f, 0x20, 0xc0, 0x82, 0x3f]);
    expect(model.tensors[1].dtype).toBe("I32");
    expect(model.tensors[1].data).toBe(ints);
  });
});

describe("symbolEntropyBytes", () => {
  it("is one bit per symbol for two equally likely symbols", () => {
    expect(symbolEntropyBytes(new Uint8Array([1, 2, 1, 2, 2, 1, 1, 2]), 2)).toBe(1);
  });
});
