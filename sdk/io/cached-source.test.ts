import { describe, expect, it } from "vitest";
import { CachedSource } from "./cached-source.js";
import { MemorySource, type ByteRange } from "./source.js";
import { codeOf } from "../testing/outcome.js";
import { Random } from "../testing/random.js";

/** Counts the ranges the cache asks of the underlying source. */
class CountingSource extends MemorySource {
  readonly reads: ByteRange[] = [];
  override async read(offset: number, length: number, what?: string): Promise<Uint8Array> {
    this.reads.push({ offset, length });
    return super.read(offset, length, what);
  }
}

function bytes(n: number): Uint8Array {
  const r = new Random(7);
  return Uint8Array.from({ length: n }, () => r.int(256));
}

describe("CachedSource", () => {
  it("returns the underlying bytes for random reads and stays within its budget", async () => {
    const data = bytes(100_003);
    const inner = new CountingSource(data);
    const cache = new CachedSource(inner, { budgetBytes: 8192, pageBytes: 1024 });
    const r = new Random(3);
    for (let i = 0; i < 2000; i++) {
      const offset = r.int(data.length);
      const length = r.int(Math.min(10_000, data.length - offset) + 1);
      const got = await cache.read(offset, length, "t");
      expect(Buffer.from(got).equals(Buffer.from(data.subarray(offset, offset + length))), `${offset}+${length}`).toBe(true);
      expect(cache.heldBytes).toBeLessThanOrEqual(8192);
    }
    expect(cache.hits).toBeGreaterThan(0);
  });

  it("serves repeated reads from memory and fetches each run of missing pages as one range", async () => {
    const data = bytes(10_000);
    const inner = new CountingSource(data);
    const cache = new CachedSource(inner, { budgetBytes: 1 << 20, pageBytes: 1024 });
    await cache.read(1500, 3000, "t");
    expect(inner.reads).toEqual([{ offset: 1024, length: 4096 }]);
    await cache.read(1100, 3900, "t");
    expect(inner.reads).toHaveLength(1);
    // Pages 0 and 5..6 are missing, 1..4 are held: two ranges.
    await cache.read(0, 7000, "t");
    expect(inner.reads.slice(1)).toEqual([
      { offset: 0, length: 1024 },
      { offset: 5120, length: 2048 },
    ]);
    // The last page is short: it ends at the end of the file.
    await cache.read(9990, 10, "t");
    expect(inner.reads[inner.reads.length - 1]).toEqual({ offset: 9216, length: 784 });
  });

  it("evicts the least recently used page first", async () => {
    const inner = new CountingSource(bytes(8192));
    const cache = new CachedSource(inner, { budgetBytes: 2048, pageBytes: 1024 });
    await cache.read(0, 1, "t"); // page 0
    await cache.read(1024, 1, "t"); // page 1
    await cache.read(0, 1, "t"); // page 0 again: now the most recent
    await cache.read(2048, 1, "t"); // page 2 evicts page 1
    const before = inner.reads.length;
    await cache.read(0, 1, "t");
    expect(inner.reads.length).toBe(before);
    await cache.read(1024, 1, "t");
    expect(inner.reads.length).toBe(before + 1);
  });

  it("passes reads larger than the budget and invalid reads straight through", async () => {
    const data = bytes(5000);
    const inner = new CountingSource(data);
    const cache = new CachedSource(inner, { budgetBytes: 1024, pageBytes: 512 });
    const big = await cache.read(100, 2000, "t");
    expect(Buffer.from(big).equals(Buffer.from(data.subarray(100, 2100)))).toBe(true);
    expect(cache.heldBytes).toBe(0);
    expect(await cache.read(10, 0, "t")).toHaveLength(0);
    expect(await cache.read(4999, 2, "t").then(() => "ok", (e) => e.code)).toBe("TRUNCATED");
    expect(await cache.read(-1, 2, "t").then(() => "ok", (e) => e.code)).toBe("INVALID_ARGUMENT");
  });

  it("rejects a page size that is not a power of two and a negative budget", () => {
    const inner = new MemorySource(new Uint8Array(10));
    expect(codeOf(() => new CachedSource(inner, { budgetBytes: 100, pageBytes: 1000 }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => new CachedSource(inner, { budgetBytes: -1 }))).toBe("INVALID_ARGUMENT");
  });
});
