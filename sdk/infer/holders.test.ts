import { afterAll, afterEach, describe, expect, it } from "vitest";
import { useKernels } from "../codec/kernels.js";
import { BLOCK_MODES } from "../format/constants.js";
import { MemorySource } from "../io/source.js";
import { nativeAddon } from "../native/addon.js";
import { QansReader, type TensorFrameBytes } from "../reader.js";
import { gaussianTensor, writeToMemory } from "../testing/fixtures.js";
import { codeOf, codeOfAsync } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { referenceDequantize } from "../testing/reference-dequantize.js";
import { frameBlocks } from "./holder-costs.js";
import { buildHolder, HOLDER_KINDS, holderBytes, type HolderKind } from "./holders.js";
import type { LinearWeight } from "./linear.js";
import { decodeFrameStreams } from "../tensor/frame-decode.js";

/**
 * The three weight holders (linear-f32.ts, linear-int8.ts, linear-compressed.ts) on int-quant
 * tensors read from files: against a float64 product of the dequantised weights, against each
 * other byte for byte, TypeScript against native at every SIMD level, on every bit width, groups,
 * zero points, input scales, and frames whose blocks are RAW, CONST and RANS with rows crossing them.
 */

const addon = nativeAddon();
const levels = addon?.simdInfo().available ?? [];
const initialLevel = addon?.simdInfo().level;

afterEach(() => useKernels("auto"));
afterAll(() => {
  if (addon) addon.setSimdLevel(initialLevel!);
});

const ROWS = 300;
const COLS = 100;

/**
 * F32 weights whose int-quant blocks of 2^12 symbols take every mode: rows of zeros (a CONST
 * block), rows of uniform values (RAW: no table beats 8 bits there), then rows of small values with
 * one large one each (RANS). Rows of 100 weights cross the 4096-symbol block boundaries.
 */
function mixedWeights(seed: number): Float32Array {
  const random = new Random(seed);
  const values = new Float32Array(ROWS * COLS);
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLS; c++) {
      const i = r * COLS + c;
      if (r < 45) values[i] = 0;
      else if (r < 135) values[i] = random.next() * 2 - 1;
      else values[i] = c === r % COLS ? 1 : 0.02 * random.gaussian();
    }
  }
  return values;
}

interface Fixture {
  label: string;
  frame: TensorFrameBytes;
  weights: Float32Array;
}

async function fixture(label: string, encoding: Parameters<typeof writeToMemory>[0][0]["encoding"], values = mixedWeights(label.length)): Promise<Fixture> {
  const tensor = { name: "w", dtype: "F32" as const, shape: [ROWS, COLS], data: new Uint8Array(values.buffer) };
  const bytes = await writeToMemory([{ tensor, encoding }], { log2Block: 12 });
  const reader = await QansReader.open(new MemorySource(bytes, label));
  const frame = await reader.readFrame("w");
  const { header, streams } = await decodeFrameStreams(frame.frame, frame.entry.frameOffset, frame.fileSize, frame.entry);
  return { label, frame, weights: referenceDequantize(header.quant!, streams[0], ROWS, COLS) };
}

function inputs(n: number, seed: number): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: n * COLS }, () => random.next() * 4 - 2);
}

function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function product(holder: LinearWeight, xs: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * holder.rows);
  holder.matmul!(xs, n, out);
  return out;
}

async function holders(frame: TensorFrameBytes): Promise<Record<HolderKind, LinearWeight>> {
  const built = {} as Record<HolderKind, LinearWeight>;
  for (const kind of HOLDER_KINDS) built[kind] = await buildHolder(kind, frame);
  return built;
}

const ENCODINGS: [string, Parameters<typeof writeToMemory>[0][0]["encoding"]][] = [];
for (let bits = 2; bits <= 8; bits++) {
  ENCODINGS.push([`int${bits}`, { encoding: "int-quant", bits }]);
  ENCODINGS.push([`int${bits} groups of 7, asymmetric`, { encoding: "int-quant", bits, groupSize: 7, asymmetric: true }]);
}
const scale = Float32Array.from({ length: COLS }, (_, c) => 0.5 + (c % 5) * 0.37);
ENCODINGS.push(["int8 groups of 32, input scale", { encoding: "int-quant", bits: 8, groupSize: 32, inputScale: scale }]);
ENCODINGS.push(["int4 asymmetric, input scale", { encoding: "int-quant", bits: 4, asymmetric: true, inputScale: scale }]);

describe("weight holders", () => {
  it("hold frames whose blocks are RAW, CONST and RANS (the fixture covers every mode)", async () => {
    const { frame } = await fixture("int8", { encoding: "int-quant", bits: 8 });
    const modes = new Set(frameBlocks(frame).map((block) => block.mode));
    expect([...modes].sort()).toEqual([BLOCK_MODES.RAW, BLOCK_MODES.CONST, BLOCK_MODES.RANS]);
  });

  it("compute products within rounding of a float64 product of the dequantised weights", async () => {
    for (const [label, encoding] of ENCODINGS) {
      const { frame, weights } = await fixture(label, encoding);
      const n = 3;
      const xs = inputs(n, 5);
      for (const [kind, holder] of Object.entries(await holders(frame))) {
        const out = product(holder, xs, n);
        for (let i = 0; i < n; i++) {
          for (let r = 0; r < ROWS; r++) {
            let exact = 0;
            let magnitude = 0;
            for (let c = 0; c < COLS; c++) {
              exact += weights[r * COLS + c] * xs[i * COLS + c];
              magnitude += Math.abs(weights[r * COLS + c] * xs[i * COLS + c]);
            }
            // One binary32 rounding of the result, and binary64 sums (far smaller).
            const error = Math.abs(out[i * ROWS + r] - exact);
            expect(error, `${label} ${kind} row ${r} input ${i}`).toBeLessThanOrEqual(2 ** -24 * Math.abs(exact) + 2 ** -40 * magnitude);
          }
        }
      }
    }
  });

  it("give the same bytes in every holder, for one input and for many, and the same rows", async () => {
    for (const [label, encoding] of ENCODINGS) {
      const { frame, weights } = await fixture(label, encoding);
      const built = await holders(frame);
      const n = 5;
      const xs = inputs(n, 9);
      const reference = bytesOf(product(built.f32, xs, n));
      for (const kind of HOLDER_KINDS) {
        const holder = built[kind];
        expect(bytesOf(product(holder, xs, n)).equals(reference), `${label}: ${kind} matmul`).toBe(true);
        for (let i = 0; i < n; i++) {
          const one = new Float32Array(ROWS);
          holder.matvec(xs.subarray(i * COLS, (i + 1) * COLS), one);
          expect(bytesOf(one).equals(reference.subarray(i * ROWS * 4, (i + 1) * ROWS * 4)), `${label}: ${kind} matvec ${i}`).toBe(true);
        }
        for (const r of [0, 40, 41, 81, 82, 163, 299]) {
          const row = new Float32Array(COLS);
          holder.row(r, row);
          expect(bytesOf(row).equals(bytesOf(weights.subarray(r * COLS, (r + 1) * COLS))), `${label}: ${kind} row ${r}`).toBe(true);
        }
      }
    }
  });

  it.skipIf(!addon)("give the TypeScript products' bytes natively, at every SIMD level and thread count", async () => {
    const threads = addon!.threadCount();
    try {
      for (const [label, encoding] of ENCODINGS) {
        const { frame } = await fixture(label, encoding);
        // 6 inputs make the product large enough (2^17 multiply-adds) to be spread over threads.
        const n = 6;
        const xs = inputs(n, 13);
        useKernels("typescript");
        const typescript = bytesOf(product((await holders(frame)).int8, xs, n));
        useKernels("auto");
        for (const level of levels) {
          addon!.setSimdLevel(level);
          for (const count of [1, 2]) {
            addon!.setThreadCount(count);
            for (const [kind, holder] of Object.entries(await holders(frame))) {
              expect(bytesOf(product(holder, xs, n)).equals(typescript), `${label}: ${kind} on ${level}, ${count} threads`).toBe(true);
              const one = new Float32Array(ROWS);
              holder.matvec(xs.subarray(0, COLS), one);
              expect(bytesOf(one).equals(typescript.subarray(0, ROWS * 4)), `${label}: ${kind} matvec on ${level}`).toBe(true);
            }
          }
        }
      }
    } finally {
      addon!.setThreadCount(threads);
    }
  });

  it("keep what their residentBytes say: four bytes a weight, one, or the frame, and the parameters", async () => {
    const { frame } = await fixture("int8", { encoding: "int-quant", bits: 8 });
    const built = await holders(frame);
    const sizes = holderBytes(frame.entry, frame.frame);
    const params = ROWS * 4;
    expect(built.f32.residentBytes).toBe(ROWS * COLS * 4);
    expect(built.int8.residentBytes).toBe(ROWS * COLS + params);
    expect(built.compressed.residentBytes).toBe(frame.entry.frameLength + params);
    for (const kind of HOLDER_KINDS) expect(sizes[kind], kind).toBe(built[kind].residentBytes);
    expect(built.compressed.residentBytes).toBeLessThan(built.int8.residentBytes);
  });

  it("refuse what they cannot hold or compute: a lossless tensor compressed, a corrupt frame, wrong buffers", async () => {
    const lossless = await writeToMemory([{ tensor: gaussianTensor("w", [8, 8], 1), encoding: { encoding: "float-planes" } }]);
    const losslessFrame = await (await QansReader.open(new MemorySource(lossless, "lossless"))).readFrame("w");
    expect(await codeOfAsync(buildHolder("compressed", losslessFrame))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(buildHolder("int8", losslessFrame))).toBe("INVALID_ARGUMENT");
    expect((await buildHolder("f32", losslessFrame)).residentBytes).toBe(8 * 8 * 4);

    const { frame } = await fixture("int8", { encoding: "int-quant", bits: 8 });
    const corrupt = frame.frame.slice();
    const lastBlock = frameBlocks(frame).length - 1;
    corrupt[corrupt.length - 1] ^= 0x40;
    for (const kind of HOLDER_KINDS) {
      expect(await codeOfAsync(buildHolder(kind, { ...frame, frame: corrupt })), `${kind}, corrupt block ${lastBlock}`).toBe("CHECKSUM_MISMATCH");
    }

    for (const holder of Object.values(await holders(frame))) {
      expect(codeOf(() => holder.matvec(new Float32Array(COLS - 1), new Float32Array(ROWS)))).toBe("INVALID_ARGUMENT");
      expect(codeOf(() => holder.matvec(new Float32Array(COLS), new Float32Array(ROWS - 1)))).toBe("INVALID_ARGUMENT");
      expect(codeOf(() => holder.matmul!(new Float32Array(2 * COLS), 3, new Float32Array(3 * ROWS)))).toBe("INVALID_ARGUMENT");
      expect(codeOf(() => holder.row(ROWS, new Float32Array(COLS)))).toBe("INVALID_ARGUMENT");
      expect(codeOf(() => holder.row(0, new Float32Array(COLS - 1)))).toBe("INVALID_ARGUMENT");
    }
  });
});
