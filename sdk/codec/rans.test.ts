import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QansError, type QansErrorCode } from "../errors.js";
import { makeFreqTable, normalizeFrequencies, type FreqTable } from "./freq-table.js";
import { entropyBits, histogram } from "./histogram.js";
import { laneCode, RansDecoder, ransEncode, referenceLanes } from "./rans.js";
import { codeOf, type Outcome } from "../testing/outcome.js";
import { Random } from "../testing/random.js";

const L = 1 << 15;
const LANE_COUNTS = [1, 2, 4, 8, 16, 32];

function skewed(n: number, width: number, r: Random): Uint8Array {
  const out = new Uint8Array(n);
  const mask = (1 << width) - 1;
  const scale = Math.max(0.3, (1 << width) / 16);
  for (let i = 0; i < n; i++) out[i] = Math.round(r.laplacian(scale)) & mask;
  return out;
}

function uniform(n: number, width: number, r: Random): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r.int(1 << width);
  return out;
}

/** A table for `symbols` at scale k in which at least symbols 0 and 2^w − 1 are also present. */
function tableFor(symbols: Uint8Array, width: number, k: number): FreqTable {
  const counts = histogram(symbols, 1 << width);
  counts[0]++;
  counts[(1 << width) - 1]++;
  return makeFreqTable(k, width, normalizeFrequencies(counts, k));
}

/** §10.2's encoder transcribed line by line, with the initial state as a parameter. */
function referenceEncode(sym: Uint8Array, table: FreqTable, lanes: number, initial = L): { payload: Uint8Array; words: number } {
  const { k, freqs: f, cum: c } = table;
  const x: number[] = new Array<number>(lanes).fill(initial);
  const words: number[] = [];
  for (let i = sym.length - 1; i >= 0; i--) {
    const l = i % lanes;
    const s = sym[i];
    if (x[l] >= f[s] * 2 ** (31 - k)) {
      words.push(x[l] % 65536);
      x[l] = Math.floor(x[l] / 65536);
    }
    x[l] = Math.floor(x[l] / f[s]) * 2 ** k + (x[l] % f[s]) + c[s];
  }
  const payload = new Uint8Array(4 * lanes + 2 * words.length);
  const view = new DataView(payload.buffer);
  for (let l = 0; l < lanes; l++) view.setUint32(4 * l, x[l], true);
  words.reverse().forEach((w, j) => view.setUint16(4 * lanes + 2 * j, w, true));
  return { payload, words: words.length };
}

function roundTrip(symbols: Uint8Array, table: FreqTable, lanes: number): Uint8Array {
  const payload = ransEncode(symbols, table, lanes);
  const out = new Uint8Array(symbols.length);
  new RansDecoder(table).decode(payload, symbols.length, lanes, out, "t");
  return out;
}

describe("lane counts", () => {
  it("gives the reference profile's lanes(n) (§15 step 4)", () => {
    const cases: [number, number][] = [[0, 1], [1, 1], [2047, 1], [2048, 2], [4095, 2], [4096, 4], [8192, 8], [16383, 8], [16384, 16], [32767, 16], [32768, 32], [1 << 20, 32]];
    for (const [n, lanes] of cases) expect(referenceLanes(n), `n = ${n}`).toBe(lanes);
  });

  it("maps lane counts to the lane codes of §9 and rejects others", () => {
    expect(LANE_COUNTS.map(laneCode)).toEqual([5, 4, 3, 2, 1, 0]);
    for (const bad of [0, 3, 64, 1.5, -32]) expect(codeOf(() => laneCode(bad)), String(bad)).toBe("INVALID_ARGUMENT");
  });
});

describe("rANS round trips", () => {
  const lengths = [0, 1, 31, 32, 33, 4095, 4097, 100_000];

  it("round trips every k and width, skewed and uniform, and matches the spec's encoder", () => {
    const r = new Random(5);
    for (let width = 1; width <= 8; width++) {
      for (const n of lengths) {
        for (const gen of [skewed, uniform]) {
          const symbols = gen(n, width, r);
          for (let k = 10; k <= 15; k++) {
            const table = tableFor(symbols, width, k);
            const payload = ransEncode(symbols, table, 32);
            const ref = referenceEncode(symbols, table, 32);
            expect(payload.length).toBe(128 + 2 * ref.words);
            expect(payload.length).toBeLessThanOrEqual(128 + 2 * n);
            expect(Buffer.from(payload).equals(Buffer.from(ref.payload))).toBe(true);
            const out = new Uint8Array(n);
            new RansDecoder(table).decode(payload, n, 32, out, "t");
            expect(Buffer.from(out).equals(Buffer.from(symbols))).toBe(true);
          }
        }
      }
    }
  });

  it("round trips every lane count at lengths around it, and matches the spec's encoder", () => {
    const r = new Random(15);
    for (const lanes of LANE_COUNTS) {
      for (const n of [0, 1, lanes - 1, lanes, lanes + 1, 3 * lanes + 2, 5000]) {
        for (const width of [1, 4, 8]) {
          const symbols = skewed(n, width, r);
          for (const k of [10, 15]) {
            const table = tableFor(symbols, width, k);
            const payload = ransEncode(symbols, table, lanes);
            const ref = referenceEncode(symbols, table, lanes);
            expect(payload.length, `${lanes} lanes, n = ${n}`).toBe(4 * lanes + 2 * ref.words);
            expect(Buffer.from(payload).equals(Buffer.from(ref.payload)), `${lanes} lanes, n = ${n}`).toBe(true);
            expect(Buffer.from(roundTrip(symbols, table, lanes)).equals(Buffer.from(symbols))).toBe(true);
          }
        }
      }
    }
  });

  it("pays 4 bytes of states per lane", () => {
    const symbols = skewed(2048, 8, new Random(16));
    const table = tableFor(symbols, 8, 12);
    const one = ransEncode(symbols, table, 1).length;
    const all = ransEncode(symbols, table, 32).length;
    // Each of the 31 further states costs 4 bytes, of which on average about one carries
    // information that would otherwise be in the words.
    expect(all - one).toBeGreaterThan(2 * 31);
    expect(all - one).toBeLessThanOrEqual(4 * 31 + 2);
  });

  it("is deterministic", () => {
    const symbols = skewed(10_000, 8, new Random(2));
    const table = tableFor(symbols, 8, 12);
    expect(Buffer.from(ransEncode(symbols, table, 32)).equals(Buffer.from(ransEncode(symbols, table, 32)))).toBe(true);
  });

  it("compresses skewed data close to its entropy", () => {
    const symbols = skewed(1 << 16, 8, new Random(3));
    const table = tableFor(symbols, 8, 12);
    const payload = ransEncode(symbols, table, 32);
    // The 32 stored states cost 128 bytes; the words should be within 1% of the entropy.
    const dataBits = (payload.length - 128) * 8;
    expect(dataBits).toBeLessThan(entropyBits(histogram(symbols)) * 1.01);
  });

  it("reuses one decoder across blocks and leaves the rest of `out` untouched", () => {
    const r = new Random(4);
    const symbols = skewed(3 * 4096 + 17, 6, r);
    const table = tableFor(symbols, 6, 11);
    const decoder = new RansDecoder(table);
    const out = new Uint8Array(symbols.length + 5).fill(0xaa);
    for (let start = 0; start < symbols.length; start += 4096) {
      const block = symbols.subarray(start, start + 4096);
      const lanes = referenceLanes(block.length);
      decoder.decode(ransEncode(block, table, lanes), block.length, lanes, out.subarray(start), `block ${start / 4096}`);
    }
    expect(Buffer.from(out.subarray(0, symbols.length)).equals(Buffer.from(symbols))).toBe(true);
    expect(Array.from(out.subarray(symbols.length))).toEqual([0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
  });

  it("decode(encode(x)) = x for arbitrary arrays, widths and k", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 10, max: 15 }),
        fc.constantFrom(...LANE_COUNTS),
        (raw, width, k, lanes) => {
          const symbols = raw.map((v) => v & ((1 << width) - 1));
          const out = roundTrip(symbols, tableFor(symbols, width, k), lanes);
          return Buffer.from(out).equals(Buffer.from(symbols));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("rANS hand-computed examples", () => {
  it("codes 3 symbols without renormalisation", () => {
    // k = 10, f = [768, 256], c = [0, 768], symbols [0, 1, 0] on lanes 0, 1, 2; every lane starts at
    // L = 32768 and none reaches f << 21, so no word is written:
    //   symbol 0: floor(32768 / 768) = 42, 32768 mod 768 = 512  → 42·1024 + 512 + 0   = 43520
    //   symbol 1: floor(32768 / 256) = 128, 32768 mod 256 = 0   → 128·1024 + 0 + 768 = 131840
    // Lanes 3..31 stay at 32768. The payload is the 32 states, 128 bytes.
    const table = makeFreqTable(10, 1, [768, 256]);
    const payload = ransEncode(Uint8Array.of(0, 1, 0), table, 32);
    const expected = new Uint8Array(128);
    const view = new DataView(expected.buffer);
    for (let l = 0; l < 32; l++) view.setUint32(4 * l, L, true);
    view.setUint32(0, 43520, true);
    view.setUint32(4, 131840, true);
    view.setUint32(8, 43520, true);
    expect(Array.from(payload)).toEqual(Array.from(expected));
    // Decoding lane 0: slot = 43520 & 1023 = 512 → symbol 0; x = 768·42 + 512 − 0 = 32768 = L.
    const out = new Uint8Array(3);
    new RansDecoder(table).decode(payload, 3, 32, out, "t");
    expect(Array.from(out)).toEqual([0, 1, 0]);
  });

  it("codes the same 3 symbols on one lane", () => {
    // Backwards on lane 0: symbol 0 → 43520 (as above); symbol 1: 43520 < 256 << 21, so
    // floor(43520 / 256) = 170, 43520 mod 256 = 0 → 170·1024 + 0 + 768 = 174848; symbol 0:
    // floor(174848 / 768) = 227, 174848 mod 768 = 512 → 227·1024 + 512 = 232960. One 4-byte state.
    const table = makeFreqTable(10, 1, [768, 256]);
    const payload = ransEncode(Uint8Array.of(0, 1, 0), table, 1);
    expect(Array.from(payload)).toEqual([0x00, 0x8e, 0x03, 0x00]);
    const out = new Uint8Array(3);
    new RansDecoder(table).decode(payload, 3, 1, out, "t");
    expect(Array.from(out)).toEqual([0, 1, 0]);
  });

  it("codes 33 symbols with one renormalisation word", () => {
    // k = 10, f = [1023, 1], c = [0, 1023]; symbols 0 and 32 are 1 (both on lane 0), others 0.
    // Backwards: i = 32, lane 0, x = 32768 < 1 << 21 → x = 32768·1024 + 0 + 1023 = 33555455.
    //   i = 31..1, lanes 31..1, symbol 0: floor(32768/1023) = 32, 32768 mod 1023 = 32
    //     → 32·1024 + 32 = 32800.
    //   i = 0, lane 0, symbol 1: 33555455 ≥ 2^21 → word 33555455 & 0xFFFF = 0x03FF, x = 512;
    //     then x = 512·1024 + 0 + 1023 = 525311.
    // Payload: x0 = 525311, x1..x31 = 32800, then the word FF 03: 130 bytes.
    const table = makeFreqTable(10, 1, [1023, 1]);
    const symbols = new Uint8Array(33);
    symbols[0] = 1;
    symbols[32] = 1;
    const payload = ransEncode(symbols, table, 32);
    const expected = new Uint8Array(130);
    const view = new DataView(expected.buffer);
    view.setUint32(0, 525311, true);
    for (let l = 1; l < 32; l++) view.setUint32(4 * l, 32800, true);
    view.setUint16(128, 0x03ff, true);
    expect(Array.from(payload)).toEqual(Array.from(expected));
    // Decoding lane 0: slot 1023 → symbol 1, x = 525311 >> 10 = 512 < L, reads 0x03FF → 33555455;
    // at i = 32: slot 1023 → symbol 1, x = 33555455 >> 10 = 32768 = L.
    const out = new Uint8Array(33);
    new RansDecoder(table).decode(payload, 33, 32, out, "t");
    expect(Array.from(out)).toEqual(Array.from(symbols));
  });

  it("writes a state of L per lane for an empty block", () => {
    const table = makeFreqTable(10, 1, [512, 512]);
    for (const lanes of LANE_COUNTS) {
      const payload = ransEncode(new Uint8Array(0), table, lanes);
      expect(payload.length).toBe(4 * lanes);
      const view = new DataView(payload.buffer);
      for (let l = 0; l < lanes; l++) expect(view.getUint32(4 * l, true)).toBe(L);
      new RansDecoder(table).decode(payload, 0, lanes, new Uint8Array(0), "t");
    }
  });
});

describe.each([32, 4, 1])("rANS errors on %i lanes", (lanes) => {
  const states = 4 * lanes;
  const WHERE = 'tensor "x" stream 0 block 3';
  const r = new Random(8);
  const symbols = skewed(5000, 8, r);
  const table = tableFor(symbols, 8, 12);
  const good = ransEncode(symbols, table, lanes);
  const decoder = new RansDecoder(table);

  function decodeCode(payload: Uint8Array, count = symbols.length): Outcome {
    return codeOf(() => decoder.decode(payload, count, lanes, new Uint8Array(count), WHERE));
  }

  function expectError(payload: Uint8Array, code: QansErrorCode, count = symbols.length): void {
    let error: unknown;
    try {
      decoder.decode(payload, count, lanes, new Uint8Array(count), WHERE);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QansError);
    expect((error as QansError).code).toBe(code);
    expect((error as QansError).message).toContain(WHERE);
  }

  it("decodes the uncorrupted payload", () => {
    expect(decodeCode(good)).toBe("no error");
    expect(good.length).toBeLessThan(states + 2 * symbols.length);
  });

  it("rejects stored states below L and at or above 2^31", () => {
    for (const lane of [0, lanes >> 1, lanes - 1]) {
      const below = good.slice();
      new DataView(below.buffer).setUint32(4 * lane, L - 1, true);
      expectError(below, "BAD_FINAL_STATE");
      const zero = good.slice();
      new DataView(zero.buffer).setUint32(4 * lane, 0, true);
      expectError(zero, "BAD_FINAL_STATE");
      const high = good.slice();
      new DataView(high.buffer).setUint32(4 * lane, 2 ** 31, true);
      expectError(high, "BAD_FINAL_STATE");
      const max = good.slice();
      new DataView(max.buffer).setUint32(4 * lane, 2 ** 32 - 1, true);
      expectError(max, "BAD_FINAL_STATE");
    }
  });

  it("reports an appended word as TRAILING_DATA", () => {
    const longer = new Uint8Array(good.length + 2);
    longer.set(good);
    expectError(longer, "TRAILING_DATA");
  });

  it("reports a removed last word as BLOCK_OVERRUN", () => {
    expectError(good.subarray(0, good.length - 2), "BLOCK_OVERRUN");
  });

  it("reports lanes that do not end at L as BAD_FINAL_STATE", () => {
    const { payload } = referenceEncode(symbols, table, lanes, L + 1);
    expectError(payload, "BAD_FINAL_STATE");
  });

  it("rejects payload lengths outside [4N, 4N + 2n] and odd lengths as BAD_BLOCK", () => {
    expectError(good.subarray(0, states - 2), "BAD_BLOCK");
    expectError(good.subarray(0, states - 1), "BAD_BLOCK");
    expectError(new Uint8Array(0), "BAD_BLOCK");
    expectError(good.subarray(0, good.length - 1), "BAD_BLOCK");
    const small = ransEncode(Uint8Array.of(1, 2, 3), table, lanes);
    const tooLong = new Uint8Array(states + 2 * 3 + 2);
    tooLong.set(small);
    expectError(tooLong, "BAD_BLOCK", 3);
    expectError(new Uint8Array(states + 2), "BAD_BLOCK", 0);
  });

  it("rejects a too-small output buffer and unencodable symbols as INVALID_ARGUMENT", () => {
    expect(codeOf(() => decoder.decode(good, symbols.length, lanes, new Uint8Array(10), WHERE))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => decoder.decode(good, -1, lanes, new Uint8Array(10), WHERE))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => decoder.decode(good, symbols.length, 3, new Uint8Array(symbols.length), WHERE))).toBe("INVALID_ARGUMENT");
    const narrow = makeFreqTable(10, 2, [512, 0, 512, 0]);
    expect(codeOf(() => ransEncode(Uint8Array.of(0, 1), narrow, lanes))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => ransEncode(Uint8Array.of(0, 4), narrow, lanes))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => ransEncode(Uint8Array.of(0, 2), narrow, 64))).toBe("INVALID_ARGUMENT");
  });

  it("throws only QansErrors on corrupted and random payloads", () => {
    const allowed = new Set(["no error", "BAD_FINAL_STATE", "BLOCK_OVERRUN", "TRAILING_DATA", "BAD_BLOCK"]);
    const seen = new Set<string>();
    for (let trial = 0; trial < 400; trial++) {
      const flipped = good.slice();
      const flips = 1 + r.int(4);
      for (let j = 0; j < flips; j++) flipped[r.int(flipped.length)] ^= 1 << r.int(8);
      const code = decodeCode(flipped);
      seen.add(code);
      expect(allowed.has(code), code).toBe(true);
    }
    for (let trial = 0; trial < 2000; trial++) {
      const count = r.int(300);
      const length = r.int(states + 12 + 2 * count);
      const payload = new Uint8Array(length);
      for (let i = 0; i < length; i++) payload[i] = r.int(256);
      // Half the time make the states valid so the decode loop itself runs on garbage.
      if (length >= states && trial % 2 === 0) {
        for (let l = 0; l < lanes; l++) payload[4 * l + 3] &= 0x7f;
      }
      const narrowTable = trial % 3 === 0 ? makeFreqTable(15, 1, [1, 32767]) : table;
      const code = codeOf(() => new RansDecoder(narrowTable).decode(payload, count, lanes, new Uint8Array(count), WHERE));
      seen.add(code);
      expect(allowed.has(code), code).toBe(true);
    }
    expect(seen.has("foreign error")).toBe(false);
    for (const code of ["BAD_FINAL_STATE", "BLOCK_OVERRUN", "TRAILING_DATA", "BAD_BLOCK"]) expect(seen.has(code), code).toBe(true);
  });
});
