/**
 * Round trips of arbitrary tensors through the writer and every reader: lossless encodings are
 * bit-exact, int-quant stays within the half-step bound of spec §8.3 and reconstructs exactly as
 * §8.3 prescribes, and every file written verifies. Runs per property: QANS_FUZZ_RUNS (default 200).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DTYPES,
  MemorySource,
  QansReader,
  dtypeSize,
  fromFloat32,
  toFloat32,
  verifySource,
  type DType,
  type QuantParams,
  type TensorData,
  type TensorEncoding,
} from "../sdk/index.js";
import { writeToMemory } from "../sdk/testing/fixtures.js";
import { Random } from "../sdk/testing/random.js";
import { referenceDequantize } from "../sdk/testing/reference-dequantize.js";

const RUNS = Number(process.env.QANS_FUZZ_RUNS ?? 200);
const options = { numRuns: RUNS };

const FLOAT_DTYPES = ["F32", "F16", "BF16"] as const;

// ---------------------------------------------------------------------------------------------
// Arbitrary shapes and data

/** Small dimensions, 0 included; now and then one long dimension so streams span several blocks. */
const shapeArb: fc.Arbitrary<number[]> = fc.oneof(
  { arbitrary: fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 4 }), weight: 4 },
  { arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1000, max: 9000 })).map(([a, b]) => [a, b]), weight: 1 },
);

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** How element bytes are drawn, from a seed, so that large tensors stay cheap to generate. */
type ByteStyle = "random" | "constant" | "few-values" | "sparse" | "ramp";
const byteStyleArb = fc.constantFrom<ByteStyle>("random", "constant", "few-values", "sparse", "ramp");

function elementBytes(dtype: DType, elements: number, style: ByteStyle, seed: number): Uint8Array {
  const size = dtypeSize(dtype);
  const random = new Random(seed);
  const palette = Array.from({ length: 1 + random.int(5) }, () => random.bytes(size));
  const out = new Uint8Array(elements * size);
  for (let i = 0; i < elements; i++) {
    let element: Uint8Array;
    switch (style) {
      case "random":
        element = random.bytes(size);
        break;
      case "constant":
        element = palette[0];
        break;
      case "few-values":
        element = palette[random.int(palette.length)];
        break;
      case "sparse":
        element = random.next() < 0.9 ? new Uint8Array(size) : random.bytes(size);
        break;
      case "ramp":
        element = Uint8Array.from({ length: size }, (_, b) => (b === 0 ? i & 0xff : b === 1 ? (i >> 8) & 0xff : 0));
        break;
    }
    out.set(element, i * size);
  }
  return out;
}

/** Finite values as trained weights look, at a chosen magnitude. */
type ValueStyle = "normal" | "heavy" | "uniform" | "constant" | "sparse" | "outliers";
const valueStyleArb = fc.constantFrom<ValueStyle>("normal", "heavy", "uniform", "constant", "sparse", "outliers");

function floatValues(elements: number, style: ValueStyle, scale: number, seed: number): Float32Array {
  const random = new Random(seed);
  const normal = () => (random.next() + random.next() + random.next() + random.next() - 2) * 1.7320508075688772;
  const constant = (random.next() - 0.5) * scale;
  const out = new Float32Array(elements);
  for (let i = 0; i < elements; i++) {
    switch (style) {
      case "normal":
        out[i] = normal() * scale;
        break;
      case "heavy":
        out[i] = normal() * normal() * scale;
        break;
      case "uniform":
        out[i] = (2 * random.next() - 1) * scale;
        break;
      case "constant":
        out[i] = constant;
        break;
      case "sparse":
        out[i] = random.next() < 0.8 ? 0 : normal() * scale;
        break;
      case "outliers":
        out[i] = normal() * scale * (random.next() < 0.02 ? 10 : 1);
        break;
    }
  }
  return out;
}

/**
 * Magnitudes from F16-subnormal deltas up. Up to 100 every delta and every F16 value stays finite
 * (|w·s| < 4 · 10 · 3.5 · 100 < 65504); 10^4 is used only where F32 holds the values and may hold
 * the deltas, so "auto" must switch to F32 scales.
 */
const scaleArb = fc.constantFrom(0, 1e-7, 1e-3, 0.02, 1, 100, 1e4);

const nameOf = (i: number, unicode: boolean) => (unicode ? `t${i}.é🦙` : `t${i}`);

// ---------------------------------------------------------------------------------------------
// Lossless

interface LosslessCase {
  tensor: TensorData;
  encoding: "raw" | "float-planes";
}

const losslessCaseArb = (i: number): fc.Arbitrary<LosslessCase> =>
  fc
    .record({
      dtype: fc.constantFrom(...(Object.keys(DTYPES) as DType[])),
      floatDtype: fc.constantFrom(...FLOAT_DTYPES),
      planes: fc.boolean(),
      shape: shapeArb,
      style: byteStyleArb,
      seed: fc.nat(),
      unicode: fc.boolean(),
    })
    .map(({ dtype, floatDtype, planes, shape, style, seed, unicode }) => {
      const d: DType = planes ? floatDtype : dtype;
      return {
        tensor: { name: nameOf(i, unicode), dtype: d, shape, data: elementBytes(d, count(shape), style, seed) },
        encoding: planes ? "float-planes" : "raw",
      };
    });

const log2BlockArb = fc.integer({ min: 12, max: 14 });

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function tensorsArb<T>(make: (i: number) => fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => make(i))));
}

// ---------------------------------------------------------------------------------------------
// int-quant

interface QuantCase {
  tensor: TensorData;
  encoding: TensorEncoding & { encoding: "int-quant" };
}

const quantCaseArb = (i: number): fc.Arbitrary<QuantCase> =>
  fc
    .record({
      dtype: fc.constantFrom(...FLOAT_DTYPES),
      shape: shapeArb,
      style: valueStyleArb,
      scale: scaleArb,
      seed: fc.nat(),
      bits: fc.integer({ min: 2, max: 8 }),
      asymmetric: fc.boolean(),
      group: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
      scaleType: fc.constantFrom("F16" as const, "F32" as const, "auto" as const),
      withInputScale: fc.boolean(),
      unicode: fc.boolean(),
    })
    .map((c) => {
      const cols = c.shape.length === 0 ? 1 : c.shape[c.shape.length - 1];
      const scale = c.dtype === "F16" || c.scaleType === "F16" ? Math.min(c.scale, 100) : c.scale;
      const data = fromFloat32(c.dtype, floatValues(count(c.shape), c.style, scale, c.seed));
      const encoding: QuantCase["encoding"] = { encoding: "int-quant", bits: c.bits, asymmetric: c.asymmetric, groupSize: c.group, scaleType: c.scaleType };
      if (c.withInputScale) {
        const random = new Random(c.seed ^ 0x5bd1e995);
        encoding.inputScale = Float32Array.from({ length: cols }, () => 0.25 + 3.75 * random.next());
      }
      return { tensor: { name: nameOf(i, c.unicode), dtype: c.dtype, shape: c.shape, data }, encoding };
    });

const EPS32 = 2 ** -24;
const TINY32 = 2 ** -149;

/**
 * Every element within δ/2 of the original (÷ s_j with an input scale), the only slack being the
 * binary32 roundings involved: of w·s_j seen by the quantiser, and of the product and quotient of
 * the reconstruction, each at most half an ulp (relative 2^-24, or 2^-150 absolute when subnormal).
 */
function checkHalfStep(name: string, original: Float32Array, restored: Float32Array, q: QuantParams, cols: number): void {
  const groups = q.groupSize === 0 ? 1 : Math.ceil(cols / q.groupSize);
  for (let e = 0; e < original.length; e++) {
    const i = Math.floor(e / cols);
    const j = e % cols;
    const delta = q.deltas[i * groups + (q.groupSize === 0 ? 0 : Math.floor(j / q.groupSize))];
    const s = q.inputScale ? q.inputScale[j] : 1;
    const w = original[e];
    const scaled = q.inputScale ? Math.fround(w * s) : w;
    const product = restored[e] * s;
    const slack = EPS32 * (Math.abs(restored[e]) + (Math.abs(product) + Math.abs(scaled)) / s) + TINY32 * (2 + 2 / s);
    const error = Math.abs(restored[e] - w);
    const bound = delta / 2 / s + slack;
    if (!(error <= bound)) {
      throw new Error(`${name}[${e}]: |${restored[e]} - ${w}| = ${error} exceeds the half step ${delta / 2 / s} (+ rounding ${slack}), delta ${delta}, s ${s}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe("round trips of arbitrary tensors", () => {
  it("raw (every dtype) and float-planes (F32, F16, BF16) are bit-exact, and every file verifies", async () => {
    await fc.assert(
      fc.asyncProperty(tensorsArb(losslessCaseArb), log2BlockArb, async (cases, log2Block) => {
        const bytes = await writeToMemory(
          cases.map((c) => ({ tensor: c.tensor, encoding: { encoding: c.encoding } })),
          { log2Block },
        );
        const report = await verifySource(new MemorySource(bytes));
        expect(report.tensors.map((t) => t.name)).toEqual(cases.map((c) => c.tensor.name));
        const reader = await QansReader.open(new MemorySource(bytes));
        for (const { tensor, encoding } of cases) {
          const back = await reader.readTensor(tensor.name);
          expect(back.dtype).toBe(tensor.dtype);
          expect(back.shape).toEqual(tensor.shape);
          expect(sameBytes(back.data, tensor.data), `${tensor.name}: ${tensor.dtype} ${encoding} ${JSON.stringify(tensor.shape)} differs`).toBe(true);
          if (encoding === "raw") {
            const { streams } = await reader.readStreams(tensor.name);
            expect(sameBytes(streams[0], tensor.data)).toBe(true);
          }
        }
      }),
      options,
    );
  });

  it("int-quant stays within half a step per element and reconstructs exactly as spec §8.3 says; every file verifies", async () => {
    await fc.assert(
      fc.asyncProperty(tensorsArb(quantCaseArb), log2BlockArb, async (cases, log2Block) => {
        const bytes = await writeToMemory(cases, { log2Block });
        await verifySource(new MemorySource(bytes));
        const reader = await QansReader.open(new MemorySource(bytes));
        for (const { tensor, encoding } of cases) {
          const { header, streams } = await reader.readStreams(tensor.name);
          const q = header.quant!;
          expect(q.bits).toBe(encoding.bits);
          expect(q.asymmetric).toBe(encoding.asymmetric);
          expect(q.groupSize).toBe(encoding.groupSize);
          const cols = tensor.shape.length === 0 ? 1 : tensor.shape[tensor.shape.length - 1];
          const rows = cols === 0 ? 0 : count(tensor.shape) / cols;
          const restored = await reader.readFloat32(tensor.name);
          // Bit-exact against the spec's arithmetic (compared as bit patterns).
          const reference = referenceDequantize(q, streams[0], rows, cols);
          expect(sameBytes(new Uint8Array(restored.buffer, restored.byteOffset, restored.byteLength), new Uint8Array(reference.buffer))).toBe(true);
          checkHalfStep(tensor.name, toFloat32(tensor.dtype, tensor.data), restored, q, cols);
          // The tensor in its original dtype is the binary32 reconstruction rounded to that dtype.
          const back = await reader.readTensor(tensor.name);
          expect(sameBytes(back.data, fromFloat32(tensor.dtype, restored))).toBe(true);
        }
      }),
      options,
    );
  });
});
