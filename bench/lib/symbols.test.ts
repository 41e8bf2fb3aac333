import { describe, expect, it } from "vitest";
import type { ImportedModel, TensorData } from "../../sdk/index.js";
import { concatSymbols, isQuantizedMatrix, matrixDims, quantizedSymbols } from "./symbols.js";

function f32Tensor(name: string, shape: number[], values: number[]): TensorData {
  return { name, dtype: "F32", shape, data: new Uint8Array(new Float32Array(values).buffer) };
}

describe("matrixDims", () => {
  it("uses the last dimension as columns", () => {
    expect(matrixDims([1, 1, 512, 1536])).toEqual({ rows: 512, cols: 1536 });
    expect(matrixDims([64])).toEqual({ rows: 1, cols: 64 });
    expect(matrixDims([])).toEqual({ rows: 1, cols: 1 });
    expect(matrixDims([3, 0])).toEqual({ rows: 0, cols: 0 });
  });
});

describe("quantizedSymbols", () => {
  const model: ImportedModel = {
    metadata: {},
    tensors: [
      f32Tensor("norm", [2], [1, 2]),
      f32Tensor("w", [2, 2], [1, -1, 0.5, 0]),
      { name: "ids", dtype: "I32", shape: [2, 1], data: new Uint8Array(8) },
    ],
  };

  it("takes float matrices only", () => {
    expect(model.tensors.map(isQuantizedMatrix)).toEqual([false, true, false]);
    expect(quantizedSymbols(model, 8).map((t) => t.name)).toEqual(["w"]);
  });

  it("quantises per row, symmetric around 2^(b-1)", () => {
    // Row [1, −1]: δ = 1/7 rounded up to F16, so ±1 → 8 ± 7. Row [0.5, 0]: 0.5 → 15, 0 → 8.
    const [w] = quantizedSymbols(model, 4);
    expect([...w.symbols]).toEqual([15, 1, 15, 8]);
  });

  it("concatenates symbols in order", () => {
    const joined = concatSymbols([
      { name: "a", symbols: new Uint8Array([1, 2]) },
      { name: "b", symbols: new Uint8Array([3]) },
    ]);
    expect([...joined]).toEqual([1, 2, 3]);
  });
});
