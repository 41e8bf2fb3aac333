import { describe, expect, it } from "vitest";
import { QansError } from "../errors.js";
import {
  chooseFreqTable,
  log2Fix,
  makeFreqTable,
  normalizeFrequencies,
  parseFreqTable,
  presenceForm,
  serializeFreqTable,
  serializedTableSize,
  TABLE_FLAGS,
  tablePays,
  type FreqTable,
} from "./freq-table.js";
import { entropyBits } from "./histogram.js";
import { codeOf } from "../testing/outcome.js";
import { Random } from "../testing/random.js";

/** §10.4 transcribed literally, all in BigInt, as an independent check of the implementation. */
function referenceNormalize(counts: ArrayLike<number>, k: number): number[] {
  const M = 1n << BigInt(k);
  const C = Array.from(counts, (c) => BigInt(c));
  const T = C.reduce((a, b) => a + b, 0n);
  const f = C.map((c) => (c === 0n ? 0n : (c * M) / T));
  const bumped = f.map((v, s) => C[s] > 0n && v === 0n);
  for (let s = 0; s < f.length; s++) if (bumped[s]) f[s] = 1n;
  let d = M - f.reduce((a, b) => a + b, 0n);
  if (d > 0n) {
    const ranked = C.map((c, s) => ({ s, r: (c * M) % T }))
      .filter(({ s }) => C[s] > 0n && !bumped[s])
      .sort((a, b) => (a.r === b.r ? a.s - b.s : a.r > b.r ? -1 : 1));
    for (let j = 0n; j < d; j++) f[ranked[Number(j)].s] += 1n;
  }
  while (d < 0n) {
    let pick = -1;
    for (let s = 0; s < f.length; s++) {
      if (C[s] === 0n || f[s] <= 1n) continue;
      if (pick === -1) pick = s;
      else {
        const lhs = C[s] * f[pick];
        const rhs = C[pick] * f[s];
        if (lhs < rhs || (lhs === rhs && s < pick)) pick = s;
      }
    }
    f[pick] -= 1n;
    d += 1n;
  }
  return f.map(Number);
}

function checkTable(counts: ArrayLike<number>, f: Uint32Array, k: number): void {
  let sum = 0;
  for (let s = 0; s < counts.length; s++) {
    if (counts[s] > 0) {
      expect(f[s]).toBeGreaterThanOrEqual(1);
      expect(f[s]).toBeLessThan(1 << k);
    } else expect(f[s]).toBe(0);
    sum += f[s];
  }
  expect(sum).toBe(1 << k);
}

function randomCounts(r: Random, size: number): number[] {
  const kind = r.int(5);
  const counts = new Array<number>(size).fill(0);
  for (let s = 0; s < size; s++) {
    if (r.next() < 0.3) continue;
    if (kind === 0) counts[s] = 1 + r.int(10);
    else if (kind === 1) counts[s] = Math.floor(2 ** (r.next() * 40));
    else if (kind === 2) counts[s] = r.int(2 ** 53);
    else if (kind === 3) counts[s] = Math.floor(1e6 * Math.exp(-s / 4)) + 1;
    else counts[s] = r.next() < 0.1 ? r.int(1e9) : 1;
  }
  const first = r.int(size);
  counts[first] = Math.max(counts[first], 1);
  counts[(first + 1) % size] = Math.max(counts[(first + 1) % size], 1);
  return counts;
}

const adversarial: Array<[string, number[]]> = [
  ["one dominant symbol and 255 singletons", [1e12, ...new Array<number>(255).fill(1)]],
  ["one dominant symbol and 255 singletons, dominant last", [...new Array<number>(255).fill(1), 2 ** 52]],
  ["two symbols", [1, 1]],
  ["two very unequal symbols", [1, 2 ** 53 - 1]],
  ["counts near 2^53", [2 ** 53 - 1, 2 ** 53 - 2, 2 ** 53 - 3, 1]],
  ["all 256 equal", new Array<number>(256).fill(7)],
  ["all 256 near 2^53", Array.from({ length: 256 }, (_, s) => 2 ** 53 - 1 - s)],
  ["geometric", Array.from({ length: 256 }, (_, s) => Math.floor(2 ** 52 / 2 ** (s / 5)) + 1)],
  ["ties everywhere", [3, 3, 3, 0, 3, 3, 3]],
  ["many singletons, two medium", [...new Array<number>(254).fill(1), 600, 600]],
];

describe("normalizeFrequencies", () => {
  it("handles adversarial histograms at every k and matches the reference", () => {
    for (const [, counts] of adversarial) {
      for (let k = 10; k <= 15; k++) {
        const f = normalizeFrequencies(counts, k);
        checkTable(counts, f, k);
        expect(Array.from(f)).toEqual(referenceNormalize(counts, k));
      }
    }
  });

  it("gives the expected table for a dominant symbol with 255 singletons at k = 10", () => {
    const counts = [1e9, ...new Array<number>(255).fill(1)];
    const f = normalizeFrequencies(counts, 10);
    // 255 singletons are bumped to 1; the dominant symbol gets the rest.
    expect(f[0]).toBe(1024 - 255);
    for (let s = 1; s < 256; s++) expect(f[s]).toBe(1);
  });

  it("sums to 2^k, keeps present symbols ≥ 1 and matches the reference on random histograms", () => {
    const r = new Random(1);
    for (let trial = 0; trial < 600; trial++) {
      const size = [2, 3, 8, 32, 256][trial % 5];
      const counts = randomCounts(r, size);
      const k = 10 + (trial % 6);
      const f = normalizeFrequencies(counts, k);
      checkTable(counts, f, k);
      expect(Array.from(f)).toEqual(referenceNormalize(counts, k));
    }
  });

  it("is deterministic", () => {
    const counts = randomCounts(new Random(9), 256);
    const a = normalizeFrequencies(counts, 12);
    const b = normalizeFrequencies(Float64Array.from(counts), 12);
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it("rejects fewer than 2 present symbols, bad k and bad counts", () => {
    expect(codeOf(() => normalizeFrequencies([0, 5, 0], 12))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => normalizeFrequencies([0, 0], 12))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => normalizeFrequencies([1, 1], 9))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => normalizeFrequencies([1, 1], 16))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => normalizeFrequencies([1, -1], 12))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => normalizeFrequencies([1, 0.5], 12))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => normalizeFrequencies([1, 2 ** 53], 12))).toBe("INVALID_ARGUMENT");
  });
});

describe("log2Fix", () => {
  function referenceLog2Fix(f: number): number {
    const e = BigInt(31 - Math.clz32(f));
    let y = BigInt(f) << (16n - e);
    let r = e << 16n;
    for (let bit = 15n; bit >= 0n; bit--) {
      y = (y * y) >> 16n;
      if (y >= 1n << 17n) {
        y >>= 1n;
        r |= 1n << bit;
      }
    }
    return Number(r);
  }

  it("matches a BigInt transcription of §15 for every f in 1..2^15", () => {
    for (let f = 1; f <= 1 << 15; f++) expect(log2Fix(f)).toBe(referenceLog2Fix(f));
  });

  it("is exact at powers of two and close to log2 elsewhere", () => {
    for (let e = 0; e <= 15; e++) expect(log2Fix(2 ** e)).toBe(e * 65536);
    for (let f = 1; f <= 1 << 15; f += 37) {
      const v = log2Fix(f);
      expect(Math.abs(v - Math.log2(f) * 65536)).toBeLessThan(4);
    }
  });

  it("rejects arguments outside 1..2^15", () => {
    expect(() => log2Fix(0)).toThrow(QansError);
    expect(() => log2Fix(32769)).toThrow(QansError);
    expect(() => log2Fix(1.5)).toThrow(QansError);
  });
});

describe("serialisation", () => {
  it("round trips random tables at every width and k, at an offset", () => {
    const r = new Random(3);
    for (let trial = 0; trial < 300; trial++) {
      const width = 1 + (trial % 8);
      const k = 10 + r.int(6);
      const counts = randomCounts(r, 1 << width);
      const table = makeFreqTable(k, width, normalizeFrequencies(counts, k));
      const { flag, bytes } = serializeFreqTable(table);
      expect(flag).toBe(TABLE_FLAGS[presenceForm(table.freqs, width)]);
      expect(bytes.length).toBe(serializedTableSize(table.freqs, width));
      const framed = new Uint8Array(bytes.length + 10);
      framed.set(bytes, 5);
      const { table: back, next } = parseFreqTable(framed, 5, framed.length, width, flag, "t");
      expect(next).toBe(5 + bytes.length);
      expect(back.k).toBe(k);
      expect(back.width).toBe(width);
      expect(Array.from(back.freqs)).toEqual(Array.from(table.freqs));
      expect(Array.from(back.cum)).toEqual(Array.from(table.cum));
    }
  });

  it("writes the documented layouts, runs only when strictly smaller", () => {
    // Width 2: k, bitmap 0b1010, 1000 = 0x3E8 → E8 07, 24 → 18. Runs would be 1 + 2 x 2 bytes.
    const sparse = serializeFreqTable(makeFreqTable(10, 2, [0, 1000, 0, 24]));
    expect(sparse.flag).toBe(TABLE_FLAGS.bitmap);
    expect(Array.from(sparse.bytes)).toEqual([10, 0b1010, 0xe8, 0x07, 0x18]);
    // Width 8, symbols 118..120 present: k, one run (gap 118, length 3 − 1), then 3 frequencies,
    // against 32 bytes of bitmap.
    const byteTable = (present: Record<number, number>) => {
      const freqs = new Array<number>(256).fill(0);
      for (const [symbol, f] of Object.entries(present)) freqs[Number(symbol)] = f;
      return serializeFreqTable(makeFreqTable(10, 8, freqs));
    };
    const runs = byteTable({ 118: 100, 119: 900, 120: 24 });
    expect(runs.flag).toBe(TABLE_FLAGS.runs);
    expect(Array.from(runs.bytes)).toEqual([10, 1, 118, 2, 0x64, 0x84, 0x07, 0x18]);
    // Two runs: symbols 0..1 and 200; the second gap counts from the end of the first (2), and
    // 198 takes a 2-byte varint.
    const twoRuns = byteTable({ 0: 512, 1: 256, 200: 256 });
    expect(twoRuns.flag).toBe(TABLE_FLAGS.runs);
    expect(Array.from(twoRuns.bytes)).toEqual([10, 2, 0, 1, 0xc6, 0x01, 0, 0x80, 0x04, 0x80, 0x02, 0x80, 0x02]);
  });

  it("picks the bitmap when alternating symbols make runs longer", () => {
    const freqs = Array.from({ length: 256 }, (_, s) => (s % 2 === 0 ? 8 : 0));
    const table = makeFreqTable(10, 8, freqs);
    expect(presenceForm(table.freqs, 8)).toBe("bitmap");
    const { flag, bytes } = serializeFreqTable(table);
    expect(flag).toBe(TABLE_FLAGS.bitmap);
    expect(parseFreqTable(bytes, 0, bytes.length, 8, flag, "t").table.freqs).toEqual(table.freqs);
  });

  it("computes cum in makeFreqTable and rejects inconsistent tables", () => {
    const t = makeFreqTable(10, 2, [100, 0, 900, 24]);
    expect(Array.from(t.cum)).toEqual([0, 100, 100, 1000, 1024]);
    expect(() => makeFreqTable(10, 2, [1024, 0, 0, 0])).toThrow(QansError);
    expect(() => makeFreqTable(10, 2, [100, 0, 900, 23])).toThrow(QansError);
    expect(() => makeFreqTable(10, 2, [512, 512])).toThrow(QansError);
  });
});

describe("parseFreqTable errors", () => {
  const WHERE = 'tensor "w" stream 0';

  function expectBad(bytes: number[] | Uint8Array, width: number, message?: RegExp, end?: number, flag = TABLE_FLAGS.bitmap): void {
    const data = Uint8Array.from(bytes);
    let error: unknown;
    try {
      parseFreqTable(data, 0, end ?? data.length, width, flag, WHERE);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QansError);
    const q = error as QansError;
    expect(q.code).toBe("BAD_FREQ_TABLE");
    expect(q.message).toContain(WHERE);
    if (message) expect(q.message).toMatch(message);
  }

  it("rejects k = 9 and k = 16", () => {
    expectBad([9, 0b11, 0x80, 0x02, 0x80, 0x02], 1, /k = 9/);
    expectBad([16, 0b11, 0x80, 0x02, 0x80, 0x02], 1, /k = 16/);
  });

  it("rejects sums of 2^k − 1 and 2^k + 1", () => {
    // 511 = FF 03, 512 = 80 04, 513 = 81 04
    expectBad([10, 0b11, 0xff, 0x03, 0x80, 0x04], 1, /sum to 1023/);
    expectBad([10, 0b11, 0x81, 0x04, 0x80, 0x04], 1, /sum to 1025/);
  });

  it("rejects a zero frequency for a present symbol", () => {
    expectBad([10, 0b111, 0x00, 0x80, 0x04, 0x80, 0x04], 2, /frequency 0/);
  });

  it("rejects f = 2^k", () => {
    expectBad([10, 0b11, 0x80, 0x08, 0x01], 1, /not below/);
  });

  it("rejects a single present symbol and an empty bitmap", () => {
    expectBad([10, 0b01, 0x80, 0x08], 1, /1 present symbol/);
    expectBad([10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, /0 present/);
  });

  it("rejects non-minimal and 4-byte varints", () => {
    // 512 written as 80 84 00 instead of 80 04.
    expectBad([10, 0b11, 0x80, 0x84, 0x00, 0x80, 0x04], 1, /non-minimal/);
    // 1 written as 81 00.
    expectBad([10, 0b11, 0x81, 0x00, 0xff, 0x07], 1, /non-minimal/);
    expectBad([10, 0b11, 0x80, 0x80, 0x80, 0x00, 0x80, 0x04], 1, /longer than 3 bytes/);
    expectBad([10, 0b11, 0x80, 0x80, 0x80], 1, /longer than 3 bytes/);
  });

  it("rejects bitmap bits beyond 2^w for w < 3", () => {
    expectBad([10, 0b111, 0x80, 0x04, 0x80, 0x04, 0x01], 1, /beyond/);
    expectBad([10, 0b10011, 0x80, 0x04, 0x80, 0x04, 0x01], 2, /beyond/);
    expectBad([10, 0b1000_0000 | 0b11, 0x80, 0x04, 0x80, 0x04], 2, /beyond/);
  });

  it("rejects every truncation and a table running past `end`, in both presence forms", () => {
    const r = new Random(11);
    const contiguous = (width: number): FreqTable => {
      const counts = new Array<number>(1 << width).fill(0);
      for (let s = (1 << width) > 2 ? 1 : 0; s < Math.min(1 << width, 40); s++) counts[s] = 1 + r.int(1000);
      return makeFreqTable(15, width, normalizeFrequencies(counts, 15));
    };
    const tables = [1, 3, 8].flatMap((width) => [makeFreqTable(15, width, normalizeFrequencies(randomCounts(r, 1 << width), 15)), contiguous(width)]);
    const flags = new Set<number>();
    for (const table of tables) {
      const { flag, bytes } = serializeFreqTable(table);
      flags.add(flag);
      for (let cut = 0; cut < bytes.length; cut++) {
        expectBad(bytes.subarray(0, cut), table.width, undefined, undefined, flag);
        expectBad(bytes, table.width, undefined, cut, flag);
      }
    }
    expect([...flags].sort()).toEqual([TABLE_FLAGS.bitmap, TABLE_FLAGS.runs]);
  });

  describe("presence runs", () => {
    const runs = TABLE_FLAGS.runs;
    // Frequencies 512, 512 as 80 04 80 04.
    it("rejects no runs and more runs than the alphabet allows", () => {
      expectBad([10, 0, 0x80, 0x04, 0x80, 0x04], 2, /no runs/, undefined, runs);
      expectBad([10, 3, 0, 0, 1, 0, 1, 0, 0x80, 0x04, 0x80, 0x04, 0x80, 0x04], 2, /3 runs, more than the 2/, undefined, runs);
      expectBad([10, 2, 0, 0, 1, 0, 0x80, 0x04, 0x80, 0x04], 1, /2 runs, more than the 1/, undefined, runs);
    });

    it("rejects runs that are not maximal", () => {
      expectBad([10, 2, 0, 0, 0, 0, 0x80, 0x04, 0x80, 0x04], 2, /without a gap/, undefined, runs);
    });

    it("rejects runs past the alphabet", () => {
      expectBad([10, 1, 3, 1, 0x80, 0x04, 0x80, 0x04], 2, /past the 4 symbols/, undefined, runs);
      expectBad([10, 1, 0, 4, 0x80, 0x04, 0x80, 0x04], 2, /past the 4 symbols/, undefined, runs);
      expectBad([10, 2, 0, 0, 2, 1, 0x80, 0x04, 0x80, 0x04], 2, /past the 4 symbols/, undefined, runs);
    });

    it("rejects a single present symbol and non-minimal run varints", () => {
      expectBad([10, 1, 2, 0, 0x80, 0x08], 2, /1 present symbol/, undefined, runs);
      expectBad([10, 0x81, 0x00, 0, 1, 0x80, 0x04, 0x80, 0x04], 2, /non-minimal/, undefined, runs);
      expectBad([10, 1, 0x80, 0x00, 1, 0x80, 0x04, 0x80, 0x04], 2, /non-minimal/, undefined, runs);
    });

    it("reads a valid run table", () => {
      const bytes = Uint8Array.of(10, 2, 0, 0, 1, 0, 0x80, 0x04, 0x80, 0x04);
      const { table, next } = parseFreqTable(bytes, 0, bytes.length, 2, runs, WHERE);
      expect(Array.from(table.freqs)).toEqual([512, 0, 512, 0]);
      expect(next).toBe(bytes.length);
    });
  });

  it("reports a range outside the buffer or an unknown flag as INVALID_ARGUMENT", () => {
    const bytes = Uint8Array.of(10, 0b11, 0x80, 0x04, 0x80, 0x04);
    const bitmap = TABLE_FLAGS.bitmap;
    expect(codeOf(() => parseFreqTable(bytes, 0, 7, 1, bitmap, WHERE))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => parseFreqTable(bytes, 4, 3, 1, bitmap, WHERE))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => parseFreqTable(bytes, 0, 6, 1, 3, WHERE))).toBe("INVALID_ARGUMENT");
    expect(parseFreqTable(bytes, 0, 6, 1, bitmap, WHERE).next).toBe(6);
  });
});

describe("chooseFreqTable and tablePays", () => {
  function referenceCost(counts: ArrayLike<number>, width: number, k: number): bigint {
    const f = referenceNormalize(counts, k);
    // The smaller of the two presence forms, runs computed here from §10.3 directly.
    let runBytes = 0;
    let runCount = 0;
    for (let s = 0, prevEnd = 0; s < f.length; s++) {
      if (f[s] === 0 || (s > 0 && f[s - 1] !== 0)) continue;
      let e = s;
      while (e < f.length && f[e] !== 0) e++;
      runBytes += (s - prevEnd < 128 ? 1 : 2) + (e - s - 1 < 128 ? 1 : 2);
      runCount++;
      prevEnd = e;
    }
    runBytes += runCount < 128 ? 1 : 2;
    let bytes = 1 + Math.min(Math.ceil(2 ** width / 8), runBytes);
    let cost = 0n;
    for (let s = 0; s < f.length; s++) {
      if (f[s] === 0) continue;
      bytes += f[s] < 128 ? 1 : f[s] < 16384 ? 2 : 3;
      cost += BigInt(counts[s]) * BigInt(k * 65536 - log2Fix(f[s]));
    }
    return cost + BigInt(8 * 65536 * bytes);
  }

  it("returns null for fewer than 2 distinct symbols", () => {
    expect(chooseFreqTable([0, 0, 0, 0], 2)).toBeNull();
    expect(chooseFreqTable([0, 9, 0, 0], 2)).toBeNull();
  });

  it("breaks ties towards the smaller k", () => {
    // [1, 1]: the data costs 2 bits at every k and the table is 6 bytes for k = 10..14.
    const chosen = chooseFreqTable([1, 1], 1)!;
    expect(chosen.table.k).toBe(10);
    expect(chosen.costBits2e16).toBe(referenceCost([1, 1], 1, 10));
  });

  it("takes the k of least cost as §15 defines it", () => {
    const r = new Random(21);
    for (let trial = 0; trial < 40; trial++) {
      const width = [2, 5, 8][trial % 3];
      const counts = randomCounts(r, 1 << width);
      const chosen = chooseFreqTable(counts, width)!;
      let bestK = 10;
      let best = referenceCost(counts, width, 10);
      for (let k = 11; k <= 15; k++) {
        const c = referenceCost(counts, width, k);
        if (c < best) {
          best = c;
          bestK = k;
        }
      }
      expect(chosen.table.k).toBe(bestK);
      expect(chosen.costBits2e16).toBe(best);
      expect(Array.from(chosen.table.freqs)).toEqual(referenceNormalize(counts, bestK));
    }
  });

  it("codes smooth histograms within 0.1% of their order-0 entropy", () => {
    const shapes: Array<[string, (s: number) => number]> = [
      ["laplacian int8", (s) => Math.exp(-Math.abs(((s + 128) & 0xff) - 128) / 8)],
      ["wide laplacian int8", (s) => Math.exp(-Math.abs(((s + 128) & 0xff) - 128) / 20)],
      ["gaussian", (s) => Math.exp(-(((s - 128) / 30) ** 2) / 2)],
      ["bf16 exponent-like", (s) => Math.exp(-(((s - 118) / 3) ** 2) / 2)],
      ["uniform-ish", (s) => 1 + 0.2 * Math.sin(s / 10)],
    ];
    for (const [name, shape] of shapes) {
      for (const total of [2 ** 16, 2 ** 20, 2 ** 24]) {
        let z = 0;
        for (let s = 0; s < 256; s++) z += shape(s);
        const counts = Array.from({ length: 256 }, (_, s) => Math.round((total * shape(s)) / z));
        const chosen = chooseFreqTable(counts, 8)!;
        const { k, freqs } = chosen.table;
        let coded = 0;
        for (let s = 0; s < 256; s++) if (counts[s] > 0) coded += counts[s] * (k - Math.log2(freqs[s]));
        const h = entropyBits(counts);
        expect(coded / h, `${name}, ${total} symbols, k = ${k}`).toBeLessThan(1.001);
      }
    }
  });

  it("applies the §15 step 5 threshold", () => {
    const unit = 1n << 19n;
    expect(tablePays(10n * unit, 128, 139)).toBe(true);
    expect(tablePays(10n * unit, 128, 138)).toBe(false);
    expect(tablePays(10n * unit + 1n, 128, 139)).toBe(false);
    expect(tablePays(10n * unit + 1n, 128, 140)).toBe(true);
    expect(tablePays(0n, 384, 385)).toBe(true);
    expect(tablePays(0n, 384, 384)).toBe(false);
    expect(tablePays(0n, 4, 5)).toBe(true);
  });
});
