import { describe, expect, it } from "vitest";
import { crc32c } from "./crc32c.js";
import { Random } from "../testing/random.js";

function bitwiseCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let b = 0; b < 8; b++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe("crc32c", () => {
  it("gives the check value 0xE3069283 for ASCII 123456789", () => {
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  });

  it("is 0 for empty input and leaves a previous value unchanged", () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(0), 0xdeadbeef)).toBe(0xdeadbeef);
  });

  it("returns unsigned values", () => {
    for (let n = 0; n < 64; n++) {
      const v = crc32c(new Random(n + 1).bytes(n));
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(2 ** 32);
      expect(Number.isInteger(v)).toBe(true);
    }
  });

  it("matches a bit-by-bit implementation on random data of every length up to 300", () => {
    for (let n = 0; n <= 300; n++) {
      const data = new Random(7 * n + 3).bytes(n);
      expect(crc32c(data)).toBe(bitwiseCrc32c(data));
    }
    const big = new Random(99).bytes(100_003);
    expect(crc32c(big)).toBe(bitwiseCrc32c(big));
  });

  it("handles views at unaligned offsets", () => {
    const base = new Random(5).bytes(1000);
    for (let off = 0; off < 9; off++) {
      const view = base.subarray(off, off + 517);
      expect(crc32c(view)).toBe(bitwiseCrc32c(view));
    }
  });

  it("is incremental at every split point", () => {
    const data = new Random(42).bytes(150);
    const whole = crc32c(data);
    for (let cut = 0; cut <= data.length; cut++) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    }
    let running = 0;
    for (let i = 0; i < data.length; i += 13) running = crc32c(data.subarray(i, i + 13), running);
    expect(running).toBe(whole);
  });
});
