import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeBlock, StreamDecoder, type EncodedBlock } from "../codec/block-codec.js";
import { makeFreqTable, normalizeFrequencies, type FreqTable } from "../codec/freq-table.js";
import { nativeKernelSet, typescriptKernels as ts, useKernels, type Kernels } from "../codec/kernels.js";
import { RANS_L, RANS_MAX_LANES, ransStateBytes, referenceLanes } from "../codec/rans.js";
import { quantizeRtn, type QuantParams } from "../quant/rtn.js";
import { codeOf, type Outcome } from "../testing/outcome.js";
import { sameBytes, specialFloatTensor } from "../testing/fixtures.js";
import { Random } from "../testing/random.js";
import { nativeAddon } from "./addon.js";

/**
 * The native kernels against the TypeScript reference, byte for byte, at every dispatch level this
 * CPU has. Skipped when the addon is not in use (QANS_NATIVE=0, or not built: see addon.test.ts).
 */

const addon = nativeAddon();
const native = nativeKernelSet();
const levels = addon?.simdInfo().available ?? [];
const initialLevel = addon?.simdInfo().level;

/** Same bytes, compared as bytes whatever the element type (so NaN payloads and −0 count). */
function sameContents(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return sameBytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
}

/** Outcome of both kernel sets: equal when both succeed or both throw the same code. */
function outcomes(run: (k: Kernels) => unknown): { typescript: Outcome; native: Outcome } {
  return { typescript: codeOf(() => run(ts)), native: codeOf(() => run(native!)) };
}

function expectSameOutcome(run: (k: Kernels) => unknown, label: string): Outcome {
  const { typescript, native: nat } = outcomes(run);
  expect(nat, label).toBe(typescript);
  return typescript;
}

/** A table over 2^width symbols with random weights (some zero) and symbols drawn from it. */
function randomTable(random: Random, width: number, k: number): FreqTable {
  const size = 1 << width;
  const counts = new Float64Array(size);
  for (let s = 0; s < size; s++) counts[s] = random.next() < 0.25 ? 0 : Math.floor(1 + 1000 * random.next() ** 4);
  // Two symbols at least, or there is no table.
  counts[0] ||= 1;
  counts[size - 1] ||= 1;
  const present = counts.filter((c) => c > 0).length;
  if (present > 1 << k) throw new Error("unreachable: at most 256 symbols");
  return makeFreqTable(k, width, normalizeFrequencies(counts, k));
}

function drawSymbols(random: Random, table: FreqTable, count: number): Uint8Array {
  const slotSymbol = new Uint8Array(1 << table.k);
  for (let s = 0; s < table.freqs.length; s++) slotSymbol.fill(s, table.cum[s], table.cum[s + 1]);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = slotSymbol[random.int(1 << table.k)];
  return out;
}

/** Every lane count a block can have (spec §10.1). */
const LANES = [32, 16, 8, 4, 2, 1];

/**
 * Block lengths for each lane count: none, one symbol, a round of lanes and one symbol either side,
 * two rounds and one, and lengths the reference writer gives that many lanes (§15 step 4). On 32
 * lanes the last is three default-size blocks (2^17 symbols each) and a partial round.
 */
function ransLengths(lanes: number): number[] {
  const around = [0, 1, lanes - 1, lanes, lanes + 1, 2 * lanes + 1];
  const lengths = lanes === RANS_MAX_LANES ? [...around, 4095, 4097, 3 * 4096 + 2 * 32 + 5, 3 * 2 ** 17 + 5] : [...around, 1000, 1024 * lanes, 2048 * lanes - 1];
  return [...new Set(lengths)];
}

describe.skipIf(!native)("native and TypeScript kernels agree", () => {
  afterAll(() => {
    addon!.setSimdLevel(initialLevel!);
  });

  // The TypeScript results do not depend on the level: computed once, compared at every level.
  const rans: { width: number; k: number; lanes: number; table: FreqTable; symbols: Uint8Array; encoded: Uint8Array }[] = [];
  beforeAll(() => {
    const random = new Random(0x5eed);
    for (let width = 1; width <= 8; width++) {
      for (let k = 10; k <= 15; k++) {
        const table = randomTable(random, width, k);
        for (const lanes of LANES) {
          for (const length of ransLengths(lanes)) {
            const symbols = drawSymbols(random, table, length);
            rans.push({ width, k, lanes, table, symbols, encoded: ts.ransEncode(symbols, table, lanes) });
          }
        }
      }
    }
  });

  describe.each(levels)("at dispatch level %s", (level) => {
    beforeAll(() => {
      expect(addon!.setSimdLevel(level)).toBe(level);
    });

    it("rANS: encoder output and decoder output for every width 1..8, k 10..15, lane count and length", () => {
      expect(rans.length).toBe(8 * 6 * LANES.reduce((sum, lanes) => sum + ransLengths(lanes).length, 0));
      for (const { width, k, lanes, table, symbols, encoded } of rans) {
        const label = `width ${width}, k ${k}, ${lanes} lanes, ${symbols.length} symbols`;
        expect(encoded.length, label).toBeGreaterThanOrEqual(ransStateBytes(lanes));
        const mine = native!.ransEncode(symbols, table, lanes);
        expect(sameBytes(mine, encoded), label).toBe(true);
        const out = new Uint8Array(symbols.length);
        native!.ransDecoder(table).decode(encoded, symbols.length, lanes, out, "test");
        expect(sameBytes(out, symbols), label).toBe(true);
      }
    });

    it("rANS: corrupt payloads fail with the same code, and leave the same symbols before the error, on every lane count", () => {
      const random = new Random(77);
      const seen = new Map<number, Set<Outcome>>(LANES.map((lanes) => [lanes, new Set<Outcome>()]));
      for (const { table, lanes, symbols, encoded } of rans) {
        const n = symbols.length;
        if (n < Math.min(33, 2 * lanes + 1)) continue;
        const states = ransStateBytes(lanes);
        const variants: [string, Uint8Array, number, number][] = [];
        const low = encoded.slice();
        low.set([(RANS_L - 1) & 0xff, (RANS_L - 1) >> 8, 0, 0], 4 * random.int(lanes));
        variants.push(["a stored state below L", low, n, lanes]);
        const high = encoded.slice();
        high[4 * random.int(lanes) + 3] = 0x80;
        variants.push(["a stored state of 2^31", high, n, lanes]);
        const extra = new Uint8Array(encoded.length + 2);
        extra.set(encoded);
        extra.set([random.int(256), random.int(256)], encoded.length);
        variants.push(["an extra trailing word", extra, n, lanes]);
        if (encoded.length > states) variants.push(["a truncated payload", encoded.subarray(0, encoded.length - 2), n, lanes]);
        variants.push(["an odd length", encoded.subarray(0, encoded.length - 1), n, lanes]);
        variants.push(["states only", encoded.subarray(0, states), n, lanes]);
        variants.push(["one symbol fewer", encoded, n - 1, lanes]);
        variants.push(["a round of lanes fewer", encoded, n - lanes, lanes]);
        variants.push(["random bytes", random.bytes(states + 2 * random.int(n + 1)), n, lanes]);
        const words = encoded.slice();
        if (words.length > states) words[states + random.int(words.length - states)] ^= 1 << random.int(8);
        variants.push(["a flipped bit in a word", words, n, lanes]);
        const last = encoded.slice();
        if (last.length > states) last[last.length - 1 - random.int(Math.min(8, last.length - states))] ^= 1 << random.int(8);
        variants.push(["a flipped bit in the last words", last, n, lanes]);
        if (lanes < RANS_MAX_LANES) variants.push(["decoded on twice the lanes", encoded, n, 2 * lanes]);
        if (lanes > 1) variants.push(["decoded on half the lanes", encoded, n, lanes / 2]);
        for (const [what, payload, count, decodeLanes] of variants) {
          const label = `${what} (${lanes} lanes, ${n} symbols)`;
          const outs = { typescript: new Uint8Array(count).fill(0xa5), native: new Uint8Array(count).fill(0xa5) };
          const outcome = expectSameOutcome((kernels) => kernels.ransDecoder(table).decode(payload, count, decodeLanes, outs[kernels.name], "t"), label);
          expect(sameBytes(outs.native, outs.typescript), `${label}: symbols`).toBe(true);
          if (decodeLanes === lanes) seen.get(lanes)!.add(outcome);
        }
      }
      // On every lane count, the variants reach every failure the decoder has.
      for (const [lanes, outcomes] of seen) {
        expect([...outcomes].sort(), `${lanes} lanes`).toEqual(expect.arrayContaining(["BAD_BLOCK", "BAD_FINAL_STATE", "BLOCK_OVERRUN", "TRAILING_DATA"]));
      }
    });

    it("rANS: argument and table errors have the same codes", () => {
      const table = makeFreqTable(10, 4, [512, 256, 0, 128, 64, 32, 16, 8, 4, 2, 1, 1, 0, 0, 0, 0]);
      const symbols = new Uint8Array([1, 3, 0]);
      for (const lanes of LANES) {
        expect(expectSameOutcome((k) => k.ransEncode(symbols, table, lanes), `a valid block on ${lanes} lanes`)).toBe("no error");
        expect(expectSameOutcome((k) => k.ransEncode(new Uint8Array([0, 2, 1]), table, lanes), "a symbol of frequency 0")).toBe("INVALID_ARGUMENT");
      }
      expectSameOutcome((k) => k.ransEncode(new Uint8Array([200]), table, 32), "a symbol outside the alphabet");
      const skewed = { ...table, freqs: table.freqs.map((f, i) => (i === 0 ? f + 1 : f)) };
      expectSameOutcome((k) => k.ransEncode(symbols, skewed, 32), "frequencies that do not sum to 2^k");
      expectSameOutcome((k) => k.ransEncode(symbols, skewed, 3), "frequencies that do not sum to 2^k, on 3 lanes");
      expectSameOutcome((k) => k.ransDecoder(skewed), "a decoder for that table");
      expectSameOutcome((k) => k.ransDecoder({ ...table, k: 16 }), "k = 16");
      expectSameOutcome((k) => k.ransDecoder({ ...table, width: 3 }), "a width that does not match the table");
      const decoder = { typescript: ts.ransDecoder(table), native: native!.ransDecoder(table) };
      for (const count of [-1, 1.5, Number.NaN]) {
        expect(codeOf(() => decoder.native.decode(new Uint8Array(128), count, 32, new Uint8Array(4), "t"))).toBe(
          codeOf(() => decoder.typescript.decode(new Uint8Array(128), count, 32, new Uint8Array(4), "t")),
        );
      }
      expect(codeOf(() => decoder.native.decode(new Uint8Array(132), 5, 32, new Uint8Array(4), "t"))).toBe("INVALID_ARGUMENT");
      // Lane counts other than 32, 16, 8, 4, 2 and 1.
      for (const lanes of [0, 3, 6, 33, 64, -1, 2.5, Number.NaN, Infinity]) {
        const payload = new Uint8Array(128);
        expect(codeOf(() => decoder.native.decode(payload, 0, lanes, new Uint8Array(4), "t")), `decode on ${lanes} lanes`).toBe("INVALID_ARGUMENT");
        expect(codeOf(() => decoder.typescript.decode(payload, 0, lanes, new Uint8Array(4), "t")), `decode on ${lanes} lanes`).toBe("INVALID_ARGUMENT");
        expect(expectSameOutcome((k) => k.ransEncode(symbols, table, lanes), `encode on ${lanes} lanes`)).toBe("INVALID_ARGUMENT");
      }
      // The states of the lane count asked for, whatever the payload holds.
      for (const lanes of LANES) {
        const encoded = ts.ransEncode(symbols, table, lanes);
        for (const other of LANES) {
          const outs = { typescript: new Uint8Array(3), native: new Uint8Array(3) };
          const outcome = expectSameOutcome((k) => (k === ts ? decoder.typescript : decoder.native).decode(encoded, 3, other, outs[k.name], "t"), `${lanes} lanes read as ${other}`);
          if (other === lanes) expect(outcome).toBe("no error");
          expect(sameBytes(outs.native, outs.typescript)).toBe(true);
        }
      }
    });

    it("CONST, RAW and RANS blocks: encodeBlock and StreamDecoder give the same blocks and symbols", () => {
      const random = new Random(3);
      for (let width = 1; width <= 8; width++) {
        const table = randomTable(random, width, 12);
        const streams = [
          { width, table: null },
          { width, table },
        ];
        // Lengths that the reference codes on 1, 2, 4, 8, 16 and 32 lanes.
        const lengths = [1500, 3000, 5000, 9000, 20000, 40000];
        const inputs = [new Uint8Array(100).fill((1 << width) - 1), new Uint8Array([0]), new Uint8Array(0), ...lengths.map((n) => drawSymbols(random, table, n))];
        for (const stream of streams) {
          // Without a table any symbol of the width can be coded (RAW).
          const uniform = stream.table ? [] : [Uint8Array.from({ length: 4097 }, () => random.int(1 << width))];
          for (const symbols of [...inputs, ...uniform]) {
            const blocks = [ts, native!].map((k): EncodedBlock => {
              useKernels(k.name);
              try {
                return encodeBlock(symbols, stream);
              } finally {
                useKernels("auto");
              }
            });
            const [a, b] = blocks;
            expect({ ...b, payload: undefined }).toEqual({ ...a, payload: undefined });
            expect(a.lanes).toBe(a.mode === "RANS" ? referenceLanes(symbols.length) : RANS_MAX_LANES);
            expect(sameBytes(b.payload, a.payload)).toBe(true);
            const decoded = [ts, native!].map((k) => {
              useKernels(k.name);
              try {
                const out = new Uint8Array(symbols.length);
                new StreamDecoder(stream).decode(a, a.payload, out, "t");
                return out;
              } finally {
                useKernels("auto");
              }
            });
            expect(sameBytes(decoded[0], symbols) && sameBytes(decoded[1], symbols)).toBe(true);
          }
        }
      }
    });

    it("RAW: packBits and unpackBits agree, including their checks", () => {
      const random = new Random(4);
      for (let width = 1; width <= 8; width++) {
        for (const count of [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4097]) {
          const symbols = Uint8Array.from({ length: count }, () => random.int(1 << width));
          const packed = ts.packBits(symbols, width);
          expect(sameBytes(native!.packBits(symbols, width), packed), `pack ${count} x ${width}`).toBe(true);
          const out = new Uint8Array(count + 3).fill(0xee);
          native!.unpackBits(packed, count, width, out, "t");
          expect(sameBytes(out.subarray(0, count), symbols), `unpack ${count} x ${width}`).toBe(true);
          expect(out.subarray(count)).toEqual(new Uint8Array(3).fill(0xee));
          if (width < 8 && count > 0) {
            const wide = symbols.slice();
            wide[random.int(count)] |= 1 << (width + random.int(8 - width));
            expectSameOutcome((k) => k.packBits(wide, width), "a symbol wider than the width");
          }
          const used = (count * width) % 8;
          if (used !== 0) {
            const padded = packed.slice();
            padded[padded.length - 1] |= 1 << (used + random.int(8 - used));
            expect(expectSameOutcome((k) => k.unpackBits(padded, count, width, new Uint8Array(count), "t"), "padding")).toBe("NONZERO_PADDING");
          }
          const longer = new Uint8Array(packed.length + 1);
          longer.set(packed);
          expect(expectSameOutcome((k) => k.unpackBits(longer, count, width, new Uint8Array(count), "t"), "long")).toBe("BAD_BLOCK");
          if (packed.length > 0) {
            expect(expectSameOutcome((k) => k.unpackBits(packed.subarray(1), count, width, new Uint8Array(count), "t"), "short")).toBe("BAD_BLOCK");
          }
        }
      }
      for (const width of [0, 9, 2.5]) {
        expectSameOutcome((k) => k.packBits(new Uint8Array(4), width), `width ${width}`);
        expectSameOutcome((k) => k.unpackBits(new Uint8Array(4), 4, width, new Uint8Array(4), "t"), `width ${width}`);
      }
      expectSameOutcome((k) => k.unpackBits(new Uint8Array(1), 8, 1, new Uint8Array(4), "t"), "a short output");
    });

    it("CRC32C: every length to 300, large and misaligned inputs, chained values", () => {
      const random = new Random(5);
      const data = random.bytes(3 * 8192 * 3 + 3 * 256 * 2 + 77);
      for (let n = 0; n <= 300; n++) {
        const view = data.subarray(n % 8, (n % 8) + n);
        expect(addon!.crc32c(view, 0), `${n} bytes`).toBe(ts.crc32c(view));
        expect(native!.crc32c(view, 0x12345678)).toBe(ts.crc32c(view, 0x12345678));
      }
      for (const n of [3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 256 + 9, data.length - 8]) {
        for (let offset = 0; offset < 8; offset++) {
          const view = data.subarray(offset, offset + n);
          expect(addon!.crc32c(view, 0), `${n} bytes at ${offset}`).toBe(ts.crc32c(view));
        }
      }
      const whole = native!.crc32c(data);
      expect(whole).toBe(ts.crc32c(data));
      expect(native!.crc32c(data.subarray(1000), native!.crc32c(data.subarray(0, 1000)))).toBe(whole);
      expect(addon!.crc32c(new TextEncoder().encode("123456789"), 0)).toBe(0xe3069283);
    });

    it("histograms, including symbols outside the alphabet", () => {
      const random = new Random(6);
      for (const count of [0, 1, 7, 8, 9, 1000, 100_003]) {
        for (let width = 1; width <= 8; width++) {
          const symbols = Uint8Array.from({ length: count }, () => Math.min((1 << width) - 1, Math.floor(random.laplacian(3) ** 2)));
          const a = ts.histogram(symbols, 1 << width);
          expect(Array.from(native!.histogram(symbols, 1 << width))).toEqual(Array.from(a));
          const into = [new Float64Array(1 << width).fill(5), new Float64Array(1 << width).fill(5)];
          ts.addHistogram(into[0], symbols);
          native!.addHistogram(into[1], symbols);
          expect(Array.from(into[1])).toEqual(Array.from(into[0]));
          if (count > 0 && width < 8) {
            const outside = symbols.slice();
            outside[random.int(count)] = 1 << width;
            expect(expectSameOutcome((k) => k.histogram(outside, 1 << width), "outside")).toBe("INVALID_ARGUMENT");
            expect(expectSameOutcome((k) => k.addHistogram(new Float64Array(1 << width), outside), "outside")).toBe("INVALID_ARGUMENT");
          }
        }
      }
      for (const alphabet of [0, 257, 1.5]) expectSameOutcome((k) => k.histogram(new Uint8Array(3), alphabet), `alphabet ${alphabet}`);
    });

    it("float planes for F32, F16 and BF16: NaN payloads, infinities, subnormals, −0 and random bits", () => {
      const random = new Random(7);
      for (const dtype of ["F32", "F16", "BF16"] as const) {
        for (const count of [0, 1, 3, 17, 1000, 65_537]) {
          const bytes = specialFloatTensor("t", dtype, count, random.uint32()).data;
          const planes = ts.splitFloatPlanes(dtype, bytes);
          const mine = native!.splitFloatPlanes(dtype, bytes);
          expect(mine.length).toBe(planes.length);
          planes.forEach((plane, p) => expect(sameBytes(mine[p], plane), `${dtype} plane ${p} of ${count}`).toBe(true));
          const merged = new Uint8Array(bytes.length);
          native!.mergeFloatPlanes(dtype, planes, merged);
          expect(sameBytes(merged, bytes), `${dtype} merge of ${count}`).toBe(true);
          // Merging uses only each plane's low bits, whatever the rest hold.
          const noisy = planes.map((plane) => plane.map(() => random.int(256)));
          const a = new Uint8Array(bytes.length);
          const b = new Uint8Array(bytes.length);
          ts.mergeFloatPlanes(dtype, noisy, a);
          native!.mergeFloatPlanes(dtype, noisy, b);
          expect(sameBytes(a, b), `${dtype} merge of full bytes`).toBe(true);
        }
        const size = dtype === "F32" ? 4 : 2;
        const planes = ts.splitFloatPlanes(dtype, new Uint8Array(8 * size));
        expectSameOutcome((k) => k.splitFloatPlanes(dtype, new Uint8Array(size + 1)), "a partial element");
        expectSameOutcome((k) => k.mergeFloatPlanes(dtype, planes.slice(1), new Uint8Array(8 * size)), "a missing plane");
        expectSameOutcome((k) => k.mergeFloatPlanes(dtype, [...planes.slice(1), new Uint8Array(7)], new Uint8Array(8 * size)), "a short plane");
        expectSameOutcome((k) => k.mergeFloatPlanes(dtype, planes, new Uint8Array(8 * size + 1)), "a long output");
      }
      expect(expectSameOutcome((k) => k.splitFloatPlanes("I8", new Uint8Array(4)), "I8")).toBe("BAD_DTYPE");
      expect(expectSameOutcome((k) => k.mergeFloatPlanes("F64", [], new Uint8Array(0)), "F64")).toBe("BAD_DTYPE");
    });

    it("dequantisation for bits 2..8, per row and groups, symmetric and asymmetric, with and without input scales", () => {
      const random = new Random(8);
      const rows = 5;
      const cols = 67;
      const values = Float32Array.from({ length: rows * cols }, () => random.gaussian() * 0.05);
      const inputScale = Float32Array.from({ length: cols }, () => 0.25 + 3 * random.next());
      let cases = 0;
      for (let bits = 2; bits <= 8; bits++) {
        for (const groupSize of [0, 1, 7, 32, cols, cols + 5]) {
          for (const asymmetric of [false, true]) {
            for (const scaled of [false, true]) {
              for (const scaleType of ["F16", "F32"] as const) {
                const options = { bits, groupSize, asymmetric, scaleType, ...(scaled ? { inputScale } : {}) };
                const { params, symbols } = quantizeRtn(values, rows, cols, options);
                const label = JSON.stringify({ ...options, inputScale: scaled });
                expect(sameContents(native!.dequantize(params, symbols, rows, cols), ts.dequantize(params, symbols, rows, cols)), label).toBe(true);
                // Slices starting mid-row and crossing rows and groups, as a reader decodes block by block.
                for (const [first, length] of [
                  [0, 1],
                  [3, 64],
                  [cols - 2, 5],
                  [cols + 31, 2 * cols],
                  [rows * cols - 1, 1],
                  [17, 0],
                ]) {
                  const slice = symbols.subarray(first, first + length);
                  const a = ts.dequantize(params, slice, rows, cols, undefined, first);
                  const b = native!.dequantize(params, slice, rows, cols, new Float32Array(length), first);
                  expect(sameContents(b, a), `${label} [${first}, +${length})`).toBe(true);
                }
                cases++;
              }
            }
          }
        }
      }
      expect(cases).toBe(7 * 6 * 2 * 2 * 2);
    });

    it("dequantisation rounds like binary32 for arbitrary deltas, zero points and scales, to overflow and subnormals", () => {
      const random = new Random(9);
      const randomF32 = (): number => {
        const bits = new Uint32Array([random.uint32() & 0x7fffffff]);
        const value = new Float32Array(bits.buffer)[0];
        return Number.isFinite(value) ? value : 1;
      };
      for (let trial = 0; trial < 200; trial++) {
        const rows = 1 + random.int(4);
        const cols = 1 + random.int(40);
        const bits = 2 + random.int(7);
        const groupSize = random.next() < 0.3 ? 0 : 1 + random.int(cols + 3);
        const groups = groupSize === 0 ? 1 : Math.ceil(cols / groupSize);
        const asymmetric = random.next() < 0.5;
        const params: QuantParams = {
          bits,
          asymmetric,
          groupSize,
          scaleType: "F32",
          deltas: Float32Array.from({ length: rows * groups }, () => (random.next() < 0.1 ? 0 : randomF32())),
          ...(asymmetric ? { zeroPoints: Uint8Array.from({ length: rows * groups }, () => random.int(1 << bits)) } : {}),
          ...(random.next() < 0.5 ? { inputScale: Float32Array.from({ length: cols }, () => randomF32() || 1) } : {}),
        };
        const symbols = Uint8Array.from({ length: rows * cols }, () => random.int(1 << bits));
        const a = ts.dequantize(params, symbols, rows, cols);
        const b = native!.dequantize(params, symbols, rows, cols);
        expect(sameContents(b, a), JSON.stringify({ trial, rows, cols, bits, groupSize })).toBe(true);
      }
    });

    it("dequantisation rejects the same bad arguments", () => {
      const { params, symbols } = quantizeRtn(new Float32Array(12).fill(0.5), 3, 4, { bits: 4, groupSize: 2, asymmetric: true });
      const cases: [string, (k: Kernels) => unknown][] = [
        ["a short output", (k) => k.dequantize(params, symbols, 3, 4, new Float32Array(11))],
        ["a range past the end", (k) => k.dequantize(params, symbols.subarray(0, 4), 3, 4, undefined, 9)],
        ["a fractional first element", (k) => k.dequantize(params, symbols.subarray(0, 4), 3, 4, undefined, 0.5)],
        ["missing deltas", (k) => k.dequantize({ ...params, deltas: params.deltas.subarray(1) }, symbols, 3, 4)],
        ["missing zero points", (k) => k.dequantize({ ...params, zeroPoints: undefined }, symbols, 3, 4)],
        ["short zero points", (k) => k.dequantize({ ...params, zeroPoints: params.zeroPoints!.subarray(1) }, symbols, 3, 4)],
        ["short input scales", (k) => k.dequantize({ ...params, inputScale: new Float32Array(3).fill(1) }, symbols, 3, 4)],
        ["nothing to do", (k) => k.dequantize({ ...params, zeroPoints: undefined }, new Uint8Array(0), 3, 4)],
      ];
      for (const [what, run] of cases) expectSameOutcome(run, what);
    });
  });
});
