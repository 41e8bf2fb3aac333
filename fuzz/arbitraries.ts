/**
 * Arbitrary tensors and encoding parameters for the fuzz properties: shapes of rank 0 to 4 (now and
 * then one long dimension, so streams span several blocks), element bytes and float values of
 * several styles drawn from a seed, and every encoding with its parameters.
 */
import fc from "fast-check";
import { DTYPES, dtypeSize, fromFloat32, type DType, type TensorData, type TensorEncoding } from "../sdk/index.js";
import { Random } from "../sdk/testing/random.js";

const FLOAT_DTYPES = ["F32", "F16", "BF16"] as const;

// ---------------------------------------------------------------------------------------------
// Arbitrary shapes and data

/** Small dimensions, 0 included; now and then one long dimension so streams span several blocks. */
const shapeArb: fc.Arbitrary<number[]> = fc.oneof(
  { arbitrary: fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 4 }), weight: 4 },
  { arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1000, max: 9000 })).map(([a, b]) => [a, b]), weight: 1 },
);

export const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

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

export interface LosslessCase {
  tensor: TensorData;
  encoding: "raw" | "float-planes";
}

export const losslessCaseArb = (i: number): fc.Arbitrary<LosslessCase> =>
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

export const log2BlockArb = fc.integer({ min: 12, max: 14 });

export function tensorsArb<T>(make: (i: number) => fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => make(i))));
}

// ---------------------------------------------------------------------------------------------
// int-quant

export interface QuantCase {
  tensor: TensorData;
  encoding: TensorEncoding & { encoding: "int-quant" };
}

export const quantCaseArb = (i: number): fc.Arbitrary<QuantCase> =>
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
