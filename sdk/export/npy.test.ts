import { describe, expect, it } from "vitest";
import { npyHeader } from "./npy.js";
import { codeOf } from "../testing/outcome.js";

function text(header: Uint8Array): string {
  return Buffer.from(header.subarray(10)).toString("latin1");
}

describe("npyHeader", () => {
  it("writes the .npy 1.0 magic, version, length and dictionary, padded to 64 bytes", () => {
    const header = npyHeader("F32", [3, 4]);
    expect(Array.from(header.subarray(0, 8))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    expect(header.length % 64).toBe(0);
    expect(new DataView(header.buffer).getUint16(8, true)).toBe(header.length - 10);
    expect(text(header)).toBe(`{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.padEnd(header.length - 11, " ") + "\n");
  });

  it("writes 1-tuples with a comma and rank 0 as ()", () => {
    expect(text(npyHeader("I8", [7]))).toContain(`'descr': '|i1', 'fortran_order': False, 'shape': (7,), }`);
    expect(text(npyHeader("F16", []))).toContain(`'shape': (), }`);
    expect(text(npyHeader("U64", [1, 2, 3]))).toContain(`'descr': '<u8'`);
  });

  it("rejects dtypes NumPy has no type for", () => {
    for (const dtype of ["BF16", "F8_E4M3", "F8_E5M2"] as const) expect(codeOf(() => npyHeader(dtype, [2])), dtype).toBe("INVALID_ARGUMENT");
  });
});
