import { describe, expect, it } from "vitest";
import { QansError, type QansErrorCode } from "../errors.js";
import { packBits, packedSize, unpackBits } from "./bitpack.js";
import { Random } from "../testing/random.js";

/** §9 read literally: bit t of the string is bit t mod 8 of byte floor(t / 8). */
function referencePack(symbols: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((symbols.length * width) / 8));
  for (let i = 0; i < symbols.length; i++) {
    for (let b = 0; b < width; b++) {
      const t = i * width + b;
      if ((symbols[i] >> b) & 1) out[t >> 3] |= 1 << (t & 7);
    }
  }
  return out;
}

function errorOf(fn: () => unknown): QansError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof QansError) return e;
    throw e;
  }
  return undefined;
}

const WHERE = 'tensor "x" stream 1 block 0';

describe("bit packing", () => {
  it("round trips every width and every length from 0 to 70, matching the spec's bit order", () => {
    const r = new Random(1);
    for (let width = 1; width <= 8; width++) {
      for (let n = 0; n <= 70; n++) {
        const symbols = new Uint8Array(n);
        for (let i = 0; i < n; i++) symbols[i] = r.int(1 << width);
        const packed = packBits(symbols, width);
        expect(packed.length).toBe(packedSize(n, width));
        expect(Array.from(packed)).toEqual(Array.from(referencePack(symbols, width)));
        const out = new Uint8Array(n + 3).fill(0xee);
        unpackBits(packed, n, width, out, WHERE);
        expect(Array.from(out.subarray(0, n))).toEqual(Array.from(symbols));
        expect(Array.from(out.subarray(n))).toEqual([0xee, 0xee, 0xee]);
      }
    }
  });

  it("round trips long inputs", () => {
    const r = new Random(2);
    for (let width = 1; width <= 8; width++) {
      const symbols = new Uint8Array(100_003);
      for (let i = 0; i < symbols.length; i++) symbols[i] = r.int(1 << width);
      const out = new Uint8Array(symbols.length);
      unpackBits(packBits(symbols, width), symbols.length, width, out, WHERE);
      expect(Buffer.from(out).equals(Buffer.from(symbols))).toBe(true);
    }
  });

  it("packs known values", () => {
    expect(Array.from(packBits(Uint8Array.of(1, 0, 1, 1, 0, 0, 0, 0, 1), 1))).toEqual([0b1101, 0b1]);
    expect(Array.from(packBits(Uint8Array.of(0x5, 0xa, 0x3), 4))).toEqual([0xa5, 0x03]);
    // 7 → bits 0–2, 0 → bits 3–5, 5 = 0b101 → bits 6 and 8.
    expect(Array.from(packBits(Uint8Array.of(7, 0, 5), 3))).toEqual([0b01000111, 0b1]);
  });

  it("rejects symbols wider than the width", () => {
    for (let width = 1; width < 8; width++) {
      const symbols = Uint8Array.of(0, 1 << width, 0);
      expect(errorOf(() => packBits(symbols, width))?.code).toBe("INVALID_ARGUMENT");
    }
    expect(errorOf(() => packBits(new Uint8Array(1), 0))?.code).toBe("INVALID_ARGUMENT");
    expect(errorOf(() => packBits(new Uint8Array(1), 9))?.code).toBe("INVALID_ARGUMENT");
  });

  it("rejects payload lengths other than ceil(n·w / 8) as BAD_BLOCK", () => {
    for (let width = 1; width <= 8; width++) {
      for (const n of [0, 1, 7, 8, 9, 33]) {
        const size = packedSize(n, width);
        for (const wrong of [size - 1, size + 1]) {
          if (wrong < 0) continue;
          const e = errorOf(() => unpackBits(new Uint8Array(wrong), n, width, new Uint8Array(n), WHERE));
          expect(e?.code).toBe("BAD_BLOCK");
          expect(e?.message).toContain(WHERE);
        }
      }
    }
  });

  it("rejects every set bit after the last symbol as NONZERO_PADDING", () => {
    for (let width = 1; width <= 8; width++) {
      for (let n = 1; n <= 9; n++) {
        const used = (n * width) % 8;
        if (used === 0) continue;
        const packed = packBits(new Uint8Array(n), width);
        for (let bit = used; bit < 8; bit++) {
          const bad = packed.slice();
          bad[bad.length - 1] |= 1 << bit;
          const out = new Uint8Array(n).fill(0xee);
          const e = errorOf(() => unpackBits(bad, n, width, out, WHERE));
          expect(e?.code as QansErrorCode).toBe("NONZERO_PADDING");
          expect(e?.message).toContain(WHERE);
          expect(out[0]).toBe(0xee);
        }
      }
    }
  });

  it("rejects invalid arguments", () => {
    const packed = packBits(new Uint8Array(10), 3);
    expect(errorOf(() => unpackBits(packed, 10, 3, new Uint8Array(9), WHERE))?.code).toBe("INVALID_ARGUMENT");
    expect(errorOf(() => unpackBits(packed, -1, 3, new Uint8Array(9), WHERE))?.code).toBe("INVALID_ARGUMENT");
    expect(errorOf(() => unpackBits(packed, 10, 0, new Uint8Array(10), WHERE))?.code).toBe("INVALID_ARGUMENT");
  });
});
