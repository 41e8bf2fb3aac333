import { describe, expect, it } from "vitest";
import { floatPlaneWidths, mergeFloatPlanes, splitFloatPlanes } from "./float-planes.js";
import type { DType } from "../tensor/dtype.js";
import { Random } from "../testing/random.js";

function allPatterns16(): Uint8Array {
  const bytes = new Uint8Array(65536 * 2);
  for (let v = 0; v < 65536; v++) {
    bytes[2 * v] = v & 0xff;
    bytes[2 * v + 1] = v >>> 8;
  }
  return bytes;
}

function f32Bytes(patterns: number[]): Uint8Array {
  const bytes = new Uint8Array(patterns.length * 4);
  const view = new DataView(bytes.buffer);
  patterns.forEach((v, i) => view.setUint32(i * 4, v >>> 0, true));
  return bytes;
}

/** The spec §8.2 table, written out per element as an independent reference. */
function referencePlanes(dtype: "BF16" | "F16" | "F32", v: number): number[] {
  switch (dtype) {
    case "BF16":
      return [(v >> 7) & 0xff, ((v >> 8) & 0x80) | (v & 0x7f)];
    case "F16":
      return [(v >> 10) & 0x1f, v & 0xff, ((v >> 13) & 0x4) | ((v >> 8) & 0x3)];
    case "F32":
      return [(v >>> 23) & 0xff, v & 0xff, (v >>> 8) & 0xff, ((v >>> 24) & 0x80) | ((v >>> 16) & 0x7f)];
  }
}

function checkAgainstSpec(dtype: "BF16" | "F16" | "F32", bytes: Uint8Array): void {
  const size = dtype === "F32" ? 4 : 2;
  const planes = splitFloatPlanes(dtype, bytes);
  const widths = floatPlaneWidths(dtype);
  expect(planes.length).toBe(widths.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad: number[] = [];
  for (let i = 0; i < bytes.length / size; i++) {
    const v = size === 4 ? view.getUint32(i * 4, true) : view.getUint16(i * 2, true);
    const want = referencePlanes(dtype, v);
    for (let p = 0; p < planes.length; p++) {
      if (planes[p][i] !== want[p] || planes[p][i] >= 2 ** widths[p]) bad.push(i);
    }
  }
  expect(bad).toEqual([]);
  const out = new Uint8Array(bytes.length);
  mergeFloatPlanes(dtype, planes, out);
  expect(Buffer.from(out).equals(Buffer.from(bytes))).toBe(true);
}

describe("floatPlaneWidths", () => {
  it("gives the spec's stream widths", () => {
    expect(floatPlaneWidths("BF16")).toEqual([8, 8]);
    expect(floatPlaneWidths("F16")).toEqual([5, 8, 3]);
    expect(floatPlaneWidths("F32")).toEqual([8, 8, 8, 8]);
  });

  it("returns a fresh array each time", () => {
    floatPlaneWidths("F16").push(1);
    expect(floatPlaneWidths("F16")).toEqual([5, 8, 3]);
  });

  it("rejects dtypes float-planes does not allow", () => {
    for (const dtype of ["F64", "I8", "U16", "F8_E4M3"] as DType[]) {
      expect(() => floatPlaneWidths(dtype)).toThrow(expect.objectContaining({ code: "BAD_DTYPE" }));
      expect(() => splitFloatPlanes(dtype, new Uint8Array(8))).toThrow(expect.objectContaining({ code: "BAD_DTYPE" }));
      expect(() => mergeFloatPlanes(dtype, [], new Uint8Array(0))).toThrow(expect.objectContaining({ code: "BAD_DTYPE" }));
    }
  });
});

describe("float-planes", () => {
  it("splits all 65536 BF16 patterns per the spec table and merges them back bit-exactly", () => {
    checkAgainstSpec("BF16", allPatterns16());
  });

  it("splits all 65536 F16 patterns per the spec table and merges them back bit-exactly", () => {
    checkAgainstSpec("F16", allPatterns16());
  });

  it("round-trips F32 specials: NaN payloads, infinities, subnormals, signed zeros", () => {
    checkAgainstSpec(
      "F32",
      f32Bytes([
        0x7fc00001, 0xffbfffff, 0x7f800001, 0xff800001, 0x7fffffff, 0x7f800000, 0xff800000, 0x00000000, 0x80000000,
        0x00000001, 0x807fffff, 0x00400000, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000,
      ]),
    );
  });

  it("round-trips random F32 bit patterns", () => {
    const random = new Random(0x9e3779b9);
    checkAgainstSpec("F32", f32Bytes(Array.from({ length: 200_000 }, () => random.uint32())));
  });

  it("puts the exponent in stream 0 and the sign in the top bit of the last stream", () => {
    const [e, m0, m1, top] = splitFloatPlanes("F32", f32Bytes([0xc0490fdb])); // −π
    expect([e[0], m0[0], m1[0], top[0]]).toEqual([0x80, 0xdb, 0x0f, 0x80 | 0x49]);
    const [e16, lo16, hi16] = splitFloatPlanes("F16", new Uint8Array([0x48, 0xc2])); // −3.140625
    expect([e16[0], lo16[0], hi16[0]]).toEqual([0x10, 0x48, 0x4 | 0x2]);
  });

  it("accepts unaligned input and merges block by block into slices of the output", () => {
    const random = new Random(7);
    for (const dtype of ["BF16", "F16", "F32"] as const) {
      const size = dtype === "F32" ? 4 : 2;
      const n = 1000;
      const backing = random.bytes(n * size + 1);
      const bytes = backing.subarray(1);
      const planes = splitFloatPlanes(dtype, bytes);
      const out = new Uint8Array(n * size + 3).subarray(3);
      const block = 128;
      for (let start = 0; start < n; start += block) {
        const end = Math.min(n, start + block);
        mergeFloatPlanes(
          dtype,
          planes.map((p) => p.subarray(start, end)),
          out.subarray(start * size, end * size),
        );
      }
      expect(Buffer.from(out).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it("handles empty input", () => {
    const planes = splitFloatPlanes("F16", new Uint8Array(0));
    expect(planes.map((p) => p.length)).toEqual([0, 0, 0]);
    mergeFloatPlanes("F16", planes, new Uint8Array(0));
  });

  it("rejects ragged input, a wrong plane count, mismatched planes and a wrong output size", () => {
    const invalid = expect.objectContaining({ code: "INVALID_ARGUMENT" });
    expect(() => splitFloatPlanes("F32", new Uint8Array(6))).toThrow(invalid);
    expect(() => splitFloatPlanes("BF16", new Uint8Array(3))).toThrow(invalid);
    const planes = splitFloatPlanes("F32", new Uint8Array(16));
    expect(() => mergeFloatPlanes("F32", planes.slice(0, 3), new Uint8Array(16))).toThrow(invalid);
    expect(() => mergeFloatPlanes("F32", [planes[0], planes[1], planes[2], new Uint8Array(3)], new Uint8Array(16))).toThrow(invalid);
    expect(() => mergeFloatPlanes("F32", planes, new Uint8Array(12))).toThrow(invalid);
  });
});
