/**
 * The valid conformance vectors: what each file holds, drawn from fixed seeds of `Random` with
 * arithmetic only (+ - x / and Math.fround, never a transcendental function), so that every
 * JavaScript engine draws the same values and regenerating gives the same bytes.
 */
import { DTYPES, dtypeSize, fromFloat32, type DType, type ModelMetadata, type TensorData, type TensorEncoding } from "../sdk/index.js";
import { crc32c } from "../sdk/codec/crc32c.js";
import { align64, bytesEqual, concatBytes } from "../sdk/format/bytes.js";
import { FORMAT_MAJOR, TAG_METADATA } from "../sdk/format/constants.js";
import { encodeFileHeader } from "../sdk/format/file-header.js";
import { encodeIndexFrame } from "../sdk/format/index-frame.js";
import { encodeTrailer } from "../sdk/format/trailer.js";
import { resealFileHeader, resealTrailer } from "../sdk/testing/patch.js";
import { Random } from "../sdk/testing/random.js";
import { fail, view } from "./file-surgery.js";

// ---------------------------------------------------------------------------------------------
// Deterministic data

/** Roughly standard normal: a scaled sum of four uniforms (Irwin-Hall), arithmetic only. */
function normalish(random: Random): number {
  return (random.next() + random.next() + random.next() + random.next() - 2) * 1.7320508075688772;
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Heavy-tailed like trained weights: the product of two normal-like values (unit variance). */
function weightish(random: Random): number {
  return normalish(random) * normalish(random);
}

export function floatTensor(name: string, dtype: "F32" | "F16" | "BF16", shape: number[], seed: number, scale = 0.02): TensorData {
  const random = new Random(seed);
  const values = new Float32Array(elementCount(shape));
  for (let i = 0; i < values.length; i++) values[i] = weightish(random) * scale;
  return { name, dtype, shape, data: fromFloat32(dtype, values) };
}

export function bytesTensor(name: string, dtype: DType, shape: number[], fill: (random: Random, i: number) => number, seed: number): TensorData {
  const random = new Random(seed);
  const data = new Uint8Array(elementCount(shape) * dtypeSize(dtype));
  for (let i = 0; i < data.length; i++) data[i] = fill(random, i) & 0xff;
  return { name, dtype, shape, data };
}

/** Bit patterns that lossless coding must keep: signed zeros, infinities, NaN payloads, subnormals. */
const SPECIALS = {
  F32: [
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fc00001, 0x7f800001, 0xffbfffff, 0xffffffff,
    0x00000001, 0x007fffff, 0x807fffff, 0x00400000, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000,
  ],
  F16: [
    0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7e01, 0x7c01, 0xfdff, 0xffff, 0x0001, 0x03ff, 0x83ff, 0x0200, 0x0400,
    0x7bff, 0xfbff, 0x3c00, 0xbc00,
  ],
  BF16: [
    0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7fc1, 0x7f81, 0xffbf, 0xffff, 0x0001, 0x007f, 0x807f, 0x0040, 0x0080,
    0x7f7f, 0xff7f, 0x3f80, 0xbf80,
  ],
} as const;

/** Every special pattern once, then a mix of specials and arbitrary bit patterns. */
function specialsTensor(name: string, dtype: "F32" | "F16" | "BF16", shape: number[], seed: number): TensorData {
  const random = new Random(seed);
  const specials = SPECIALS[dtype];
  const count = elementCount(shape);
  const size = dtypeSize(dtype);
  const data = new Uint8Array(count * size);
  const dv = view(data);
  for (let i = 0; i < count; i++) {
    const bits = i < specials.length ? specials[i] : random.next() < 0.5 ? specials[random.int(specials.length)] : Math.floor(random.next() * 2 ** 32);
    if (size === 4) dv.setUint32(4 * i, bits >>> 0, true);
    else dv.setUint16(2 * i, bits & 0xffff, true);
  }
  return { name, dtype, shape, data };
}

function constantTensor(name: string, dtype: "F32" | "F16" | "BF16", shape: number[], value: number): TensorData {
  return { name, dtype, shape, data: fromFloat32(dtype, new Float32Array(elementCount(shape)).fill(value)) };
}

/** A skewed small-alphabet byte source: entropy of a few bits, so a frequency table pays. */
const skewed = (random: Random) => random.int(16) & random.int(16) & (random.int(4) === 0 ? 0xff : 0x0f);

function inputScale(cols: number, seed: number): Float32Array {
  const random = new Random(seed);
  const s = new Float32Array(cols);
  for (let j = 0; j < cols; j++) s[j] = 0.25 + 3.75 * random.next();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Valid vectors

/** One tensor of a vector; `log2Block`, when given, overrides the vector's block size for it. */
export interface VectorTensor {
  tensor: TensorData;
  encoding: TensorEncoding;
  log2Block?: number;
}

export interface ValidDef {
  file: string;
  spec: string[];
  exercises: string;
  log2Block: number;
  metadata: ModelMetadata;
  tensors: VectorTensor[];
  /**
   * Changes the written file into the vector, for features the reference writer never produces
   * (a later minor version); the vector must still verify and decode to the same tensors.
   */
  derive?: (bytes: Uint8Array) => Uint8Array;
}

const raw = { encoding: "raw" } as const;
const planes = { encoding: "float-planes" } as const;

function rawDtypesVector(): ValidDef {
  const seedOf = (dtype: DType) => 100 + DTYPES[dtype].code;
  const f64 = (name: string, shape: number[]): TensorData => {
    const random = new Random(seedOf("F64"));
    const data = new Uint8Array(elementCount(shape) * 8);
    const specials = [0, -0, Infinity, -Infinity, 5e-324, -1.7976931348623157e308];
    for (let i = 0; i < elementCount(shape); i++) view(data).setFloat64(8 * i, i < specials.length ? specials[i] : normalish(random), true);
    return { name, dtype: "F64", shape, data };
  };
  const ints = (name: string, dtype: DType, shape: number[], extremes: bigint[]): TensorData => {
    const random = new Random(seedOf(dtype));
    const size = dtypeSize(dtype);
    const data = new Uint8Array(elementCount(shape) * size);
    const bits = BigInt(8 * size);
    for (let i = 0; i < elementCount(shape); i++) {
      let value = i < extremes.length ? extremes[i] : BigInt(random.int(2001) - 1000);
      value = BigInt.asUintN(Number(bits), value);
      for (let b = 0; b < size; b++) data[i * size + b] = Number((value >> BigInt(8 * b)) & 0xffn);
    }
    return { name, dtype, shape, data };
  };
  return {
    file: "raw-dtypes.qans",
    spec: ["§5", "§7.3", "§8.1", "§9", "§10"],
    exercises:
      "every dtype (codes 0 to 14) stored with the raw encoding, little-endian element bytes in row-major order; " +
      "ranks 1 to 3; RAW blocks (near-uniform bytes), a CONST block (all-zero I8) and RANS blocks (I32 of small values, 4 blocks of 4096 bytes " +
      "on 4 lanes; one-lane blocks for the short I64, BOOL and U64 tensors)",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [
      { tensor: f64("raw.F64", [3, 5]), encoding: raw },
      { tensor: floatTensor("raw.F32", "F32", [2, 3, 4], seedOf("F32"), 1), encoding: raw },
      { tensor: floatTensor("raw.F16", "F16", [17], seedOf("F16"), 1), encoding: raw },
      { tensor: floatTensor("raw.BF16", "BF16", [4, 4], seedOf("BF16"), 1), encoding: raw },
      { tensor: ints("raw.I64", "I64", [6], [-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n]), encoding: raw },
      { tensor: ints("raw.I32", "I32", [64, 64], [-(2n ** 31n), 2n ** 31n - 1n]), encoding: raw },
      { tensor: ints("raw.I16", "I16", [33], [-32768n, 32767n]), encoding: raw },
      { tensor: bytesTensor("raw.I8", "I8", [10, 10], () => 0, seedOf("I8")), encoding: raw },
      { tensor: bytesTensor("raw.U8", "U8", [256], (_, i) => i, seedOf("U8")), encoding: raw },
      { tensor: bytesTensor("raw.BOOL", "BOOL", [50], (r) => r.int(2), seedOf("BOOL")), encoding: raw },
      { tensor: ints("raw.U16", "U16", [10], [0n, 65535n]), encoding: raw },
      { tensor: ints("raw.U32", "U32", [7], [0n, 2n ** 32n - 1n]), encoding: raw },
      { tensor: ints("raw.U64", "U64", [5], [0n, 2n ** 64n - 1n, 2n ** 53n + 1n]), encoding: raw },
      { tensor: bytesTensor("raw.F8_E4M3", "F8_E4M3", [8, 8], (r) => r.int(256), seedOf("F8_E4M3")), encoding: raw },
      { tensor: bytesTensor("raw.F8_E5M2", "F8_E5M2", [64], (r) => r.int(256), seedOf("F8_E5M2")), encoding: raw },
    ],
  };
}

function floatPlanesVector(dtype: "F32" | "F16" | "BF16", seed: number): ValidDef {
  const widths = { F32: "8, 8, 8, 8", F16: "5, 8, 3", BF16: "8, 8" }[dtype];
  return {
    file: `float-planes-${dtype.toLowerCase()}.qans`,
    spec: ["§8.2", "§7.2", "§9", "§10"],
    exercises:
      `float-planes for ${dtype} (stream widths ${widths}): bit-exact round trip of +0, -0, +-infinity, quiet and signalling NaNs ` +
      "with payloads and either sign, subnormals, the largest finite values and arbitrary bit patterns; " +
      "Gaussian-like weights whose exponent plane is RANS-coded; a constant tensor whose planes are CONST blocks",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [
      { tensor: specialsTensor("specials", dtype, [2, 40], seed), encoding: planes },
      { tensor: floatTensor("weights", dtype, [48, 64], seed + 1), encoding: planes },
      { tensor: constantTensor("constant", dtype, [130], -1.5), encoding: planes },
    ],
  };
}

function intQuantPerRowVector(): ValidDef {
  const shape = [12, 40];
  return {
    file: "int-quant-per-row.qans",
    spec: ["§8.3", "§7.1", "§15"],
    exercises:
      "int-quant with one group per row (G = 0): b = 2, 4 and 8, symmetric and asymmetric, F16 and F32 scales, with and without " +
      "a per-input-channel scale, original dtypes F32, F16 and BF16 (dequantised values round to nearest even in the original dtype); " +
      "an all-zero row (delta 0); a RANS-coded 4096-symbol stream",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [
      { tensor: floatTensor("q2.sym.f16", "F32", shape, 300), encoding: { encoding: "int-quant", bits: 2, scaleType: "F16" } },
      { tensor: floatTensor("q4.asym.f16", "BF16", shape, 301), encoding: { encoding: "int-quant", bits: 4, asymmetric: true, scaleType: "F16" } },
      { tensor: floatTensor("q8.sym.f32", "F16", shape, 302), encoding: { encoding: "int-quant", bits: 8, scaleType: "F32" } },
      {
        tensor: floatTensor("q8.asym.f32.scaled", "F32", shape, 303),
        encoding: { encoding: "int-quant", bits: 8, asymmetric: true, scaleType: "F32", inputScale: inputScale(40, 304) },
      },
      {
        tensor: withZeroRow(floatTensor("q4.sym.f16.scaled", "F32", shape, 305), 3),
        encoding: { encoding: "int-quant", bits: 4, scaleType: "F16", inputScale: inputScale(40, 306) },
      },
      { tensor: floatTensor("q4.sym.f16.large", "F32", [32, 128], 307), encoding: { encoding: "int-quant", bits: 4, scaleType: "F16" } },
    ],
  };
}

function withZeroRow(tensor: TensorData, row: number): TensorData {
  const cols = tensor.shape[tensor.shape.length - 1];
  const size = dtypeSize(tensor.dtype);
  const data = tensor.data.slice();
  data.fill(0, row * cols * size, (row + 1) * cols * size);
  return { ...tensor, data };
}

function intQuantGroupsVector(): ValidDef {
  const shape = [8, 80];
  const G = 32;
  return {
    file: "int-quant-groups.qans",
    spec: ["§8.3", "§7.1", "§15"],
    exercises:
      "int-quant with groups of 32 over 80 columns (groups of 32, 32 and 16): b = 2, 4 and 8, symmetric and asymmetric, F16 and F32 scales, " +
      "with and without a per-input-channel scale, original dtypes F32, F16 and BF16; a rank-3 tensor viewed as a matrix; " +
      "an all-zero group; tiny values whose F16 deltas are subnormal; a RANS-coded 4096-symbol stream",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [
      { tensor: floatTensor("g2.asym.f32", "F32", shape, 400), encoding: { encoding: "int-quant", bits: 2, groupSize: G, asymmetric: true, scaleType: "F32" } },
      {
        tensor: withZeroGroup(floatTensor("g4.sym.f16", "F32", shape, 401), 2, 1, G),
        encoding: { encoding: "int-quant", bits: 4, groupSize: G, scaleType: "F16" },
      },
      { tensor: floatTensor("g8.asym.f16", "BF16", shape, 402), encoding: { encoding: "int-quant", bits: 8, groupSize: G, asymmetric: true, scaleType: "F16" } },
      {
        tensor: floatTensor("g4.asym.f16.scaled", "F16", shape, 403),
        encoding: { encoding: "int-quant", bits: 4, groupSize: G, asymmetric: true, scaleType: "F16", inputScale: inputScale(80, 404) },
      },
      {
        tensor: floatTensor("g8.sym.f32.scaled", "F32", shape, 405),
        encoding: { encoding: "int-quant", bits: 8, groupSize: G, scaleType: "F32", inputScale: inputScale(80, 406) },
      },
      { tensor: floatTensor("g2.sym.f16.rank3", "F32", [2, 4, 80], 407), encoding: { encoding: "int-quant", bits: 2, groupSize: G, scaleType: "F16" } },
      { tensor: floatTensor("g4.sym.f16.tiny", "F32", [4, 80], 408, 1e-7), encoding: { encoding: "int-quant", bits: 4, groupSize: G, scaleType: "F16" } },
      { tensor: floatTensor("g4.sym.f16.large", "F32", [32, 128], 409), encoding: { encoding: "int-quant", bits: 4, groupSize: G, scaleType: "F16" } },
    ],
  };
}

function withZeroGroup(tensor: TensorData, row: number, group: number, groupSize: number): TensorData {
  const cols = tensor.shape[tensor.shape.length - 1];
  const size = dtypeSize(tensor.dtype);
  const data = tensor.data.slice();
  const start = row * cols + group * groupSize;
  data.fill(0, start * size, (start + groupSize) * size);
  return { ...tensor, data };
}

function blockBoundariesVector(): ValidDef {
  const u8 = (n: number, seed: number) => ({ tensor: bytesTensor(`n${n}`, "U8", [n], skewed, seed), encoding: raw });
  return {
    file: "block-boundaries.qans",
    spec: ["§7.3", "§9", "§10.2"],
    exercises:
      "block size 2^12: raw U8 streams of 0, 1, 31, 32, 33, 4095, 4096, 4097 and 8191 symbols (no block; a one-symbol CONST block; " +
      "RAW blocks of 31 to 33 symbols, too short for a table to pay; RANS blocks of 4095 symbols on 2 lanes (an odd count) and of 4096 on 4; " +
      "4096 + 1 symbols as a RANS block and a one-symbol CONST block); " +
      "a three-stream F16 float-planes tensor of 4097 elements, so blocks interleave block-major with a one-symbol tail",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [
      u8(0, 500),
      u8(1, 501),
      u8(31, 502),
      u8(32, 503),
      u8(33, 504),
      u8(4095, 505),
      u8(4096, 506),
      u8(4097, 507),
      u8(8191, 508),
      { tensor: floatTensor("planes.f16.4097", "F16", [4097], 509), encoding: planes },
    ],
  };
}

function ransLanesVector(): ValidDef {
  const u8 = (name: string, n: number, fill: (random: Random) => number, seed: number) => ({ tensor: bytesTensor(name, "U8", [n], fill, seed), encoding: raw });
  const even = (random: Random) => 2 * (skewed(random) & 15);
  return {
    file: "rans-lanes.qans",
    spec: ["§9", "§10.1", "§10.2", "§10.3", "§15"],
    exercises:
      "block size 2^15: RANS blocks on every lane count, from the reference profile's lanes(n): 1500 symbols on 1 lane (lane code 5), " +
      "3000 on 2, 6000 on 4, 12000 on 8, 24000 on 16, and 40000 symbols as a 32-lane block of 32768 (lane code 0) then a 4-lane block of 7232; " +
      "tables with presence runs (symbols 0 to 15, one run) and, for the even symbols 0 to 30 (16 runs), a presence bitmap",
    log2Block: 15,
    metadata: { metadata: {} },
    tensors: [
      u8("lanes.1", 1500, skewed, 520),
      u8("lanes.2", 3000, skewed, 521),
      u8("lanes.4", 6000, skewed, 522),
      u8("lanes.8", 12000, skewed, 523),
      u8("lanes.16", 24000, skewed, 524),
      u8("lanes.32-then-4", 40000, skewed, 525),
      u8("bitmap.even", 3000, even, 526),
    ],
  };
}

function shapesVector(): ValidDef {
  return {
    file: "shapes.qans",
    spec: ["§7.1", "§7.3", "§8.3"],
    exercises:
      "rank-0 tensors (one element) with raw, float-planes and int-quant (a 1 x 1 matrix); empty tensors (shapes [0], [2, 0, 3], [3, 0] " +
      "and [0, 5]) that have no blocks, including int-quant with no deltas and an asymmetric one with a per-input-channel scale; block size 2^13",
    log2Block: 13,
    metadata: { metadata: {} },
    tensors: [
      { tensor: floatTensor("scalar.raw", "F32", [], 600, 1), encoding: raw },
      { tensor: floatTensor("scalar.planes", "BF16", [], 601, 1), encoding: planes },
      { tensor: floatTensor("scalar.quant", "F32", [], 602, 1), encoding: { encoding: "int-quant", bits: 4, scaleType: "F16" } },
      { tensor: floatTensor("empty.planes", "F32", [0], 603), encoding: planes },
      { tensor: { name: "empty.raw", dtype: "F16", shape: [2, 0, 3], data: new Uint8Array(0) }, encoding: raw },
      { tensor: floatTensor("empty.quant.cols", "F32", [3, 0], 604), encoding: { encoding: "int-quant", bits: 8, scaleType: "F32" } },
      {
        tensor: floatTensor("empty.quant.rows", "F16", [0, 5], 605),
        encoding: { encoding: "int-quant", bits: 2, asymmetric: true, scaleType: "F16", inputScale: inputScale(5, 606) },
      },
    ],
  };
}

export function unicodeMetadataVector(): ValidDef {
  return {
    file: "unicode-metadata.qans",
    spec: ["§2", "§6", "§6.1", "§7.1", "§11"],
    exercises:
      "metadata keys and values outside ASCII (Latin, Cyrillic, CJK, an astral-plane emoji), values that JSON escapes " +
      "(quote, backslash, newline, U+0000), an empty value, a reserved qans. key; no architecture record; tensor names outside ASCII, " +
      "compared byte for byte; block size 2^20",
    log2Block: 20,
    metadata: {
      metadata: {
        "qans.writer": "conformance generator",
        "clé": "valeur accentuée",
        "ключ": "значение",
        "名前": "小さなモデル",
        "emoji 🦙": "🦙 llama",
        escapes: 'quote " backslash \\ newline \n nul \u0000 end',
        empty: "",
      },
    },
    tensors: [
      { tensor: floatTensor("poids.é", "F32", [4, 4], 700), encoding: planes },
      { tensor: floatTensor("层.0.权重", "BF16", [8], 701), encoding: raw },
      { tensor: floatTensor("🦙", "F16", [3], 702), encoding: planes },
    ],
  };
}

/** A tiny Llama-family model with an architecture record; the invalid vectors derive from it. */
export function llamaTinyVector(): ValidDef {
  return {
    file: "llama-tiny.qans",
    spec: ["§6", "§6.2", "§3", "§11", "§8.3", "§8.2", "§8.1"],
    exercises:
      "a Llama-family model with a complete architecture record (tied embeddings, grouped-query attention) and Hugging Face tensor names; " +
      "int-quant matrices, float-planes and raw norms; the default block size 2^17; the base of most invalid vectors",
    log2Block: 17,
    metadata: {
      metadata: { "general.name": "llama-tiny", "general.type": "model" },
      architecture: {
        family: "llama",
        dim: 32,
        hidden_dim: 64,
        n_layers: 1,
        n_heads: 4,
        n_kv_heads: 2,
        vocab_size: 64,
        max_seq_len: 128,
        rope_theta: 10000,
        norm_eps: 0.00001,
        tie_embeddings: true,
        rope_layout: "half-split",
      },
    },
    tensors: [
      { tensor: floatTensor("model.embed_tokens.weight", "F32", [64, 32], 800), encoding: { encoding: "int-quant", bits: 4, scaleType: "F16" } },
      { tensor: floatTensor("model.layers.0.self_attn.q_proj.weight", "F32", [32, 32], 801), encoding: { encoding: "int-quant", bits: 4, groupSize: 32, scaleType: "F16" } },
      { tensor: floatTensor("model.layers.0.self_attn.k_proj.weight", "F32", [16, 32], 802), encoding: { encoding: "int-quant", bits: 4, groupSize: 32, scaleType: "F16" } },
      { tensor: floatTensor("model.layers.0.mlp.down_proj.weight", "F32", [32, 64], 803), encoding: { encoding: "int-quant", bits: 2, asymmetric: true, scaleType: "F32" } },
      { tensor: constantTensor("model.layers.0.input_layernorm.weight", "F32", [32], 1), encoding: planes },
      { tensor: floatTensor("model.norm.weight", "BF16", [32], 804, 1), encoding: raw },
    ],
  };
}

function noTensorsVector(): ValidDef {
  return {
    file: "no-tensors.qans",
    spec: ["§3", "§6", "§11", "§4.2"],
    exercises: "the smallest valid file: empty metadata object, no architecture record, no tensor frames, an index with T = 0",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [],
  };
}

/**
 * A file without tensors around a metadata body given as JSON text, with the flag `SET` as given,
 * laid out as the reference writer lays it out and with every checksum sealed: how a vector gets
 * a body the writer would not write.
 */
export function fileWithoutTensors(body: string, set: boolean): Uint8Array {
  const json = new TextEncoder().encode(body);
  const frame = new Uint8Array(12 + json.length);
  frame.set(TAG_METADATA);
  view(frame).setUint32(4, json.length, true);
  frame.set(json, 8);
  view(frame).setUint32(8 + json.length, crc32c(frame.subarray(0, 8 + json.length)), true);
  const indexOffset = align64(64 + frame.length);
  const index = encodeIndexFrame({ metadataLength: frame.length, entries: [], set });
  const padding = new Uint8Array(indexOffset - 64 - frame.length);
  return concatBytes([encodeFileHeader({ set }), frame, padding, index, encodeTrailer(indexOffset, index.length)]);
}

/**
 * `bytes`, a file without tensors around the metadata body `body`, laid out again with `members`
 * (each JSON `"key":value` text) added at the end of the body's object: a body the reference
 * writer would not write, and the only change to the file.
 */
export function addTopLevelMembers(bytes: Uint8Array, body: string, members: readonly string[]): Uint8Array {
  if (!bytesEqual(fileWithoutTensors(body, false), bytes)) fail("the base is not a file without tensors laid out around its metadata body");
  if (!body.endsWith("}") || body === "{}") fail(`the metadata body ${body} is not an object with members`);
  return fileWithoutTensors(`${body.slice(0, -1)},${members.join(",")}}`, false);
}

/** Top-level members at the metadata JSON limits of spec §6, which a reader must accept (and ignore). */
const JSON_LIMIT_MEMBERS = [
  `"nesting":${"[".repeat(63)}"inside the 64th container"${"]".repeat(63)}`,
  `"integer":1${"0".repeat(999)}`,
  `"negative":-1${"0".repeat(998)}`,
  `"largest":1.7976931348623157e308`,
  `"underflow":1e-400`,
];

function metadataJsonLimitsVector(): ValidDef {
  const empty = noTensorsVector();
  return {
    ...empty,
    file: "metadata-json-limits.qans",
    spec: ["§6", "§13"],
    exercises:
      "no-tensors.qans with top-level members that readers ignore but must parse, each at a limit of §6: 63 arrays nested in the body's " +
      "object with a string in the innermost (containers 64 deep), integer literals of 1000 characters (10^999, and -10^998 with its " +
      "minus sign), the largest finite binary64 1.7976931348623157e308, and 1e-400, which rounds to 0",
    // The reference writer's body for this metadata, which it wrote.
    derive: (bytes) => addTopLevelMembers(bytes, JSON.stringify({ metadata: empty.metadata.metadata }), JSON_LIMIT_MEMBERS),
  };
}

const SCALE_TYPES = ["F16", "F32"] as const;
const QUANT_DTYPES = ["F32", "F16", "BF16"] as const;

/** Every combination the int-quant parameters allow (spec §8.3), one small tensor each. */
function intQuantBitsVector(): ValidDef {
  const shape = [4, 24];
  const G = 8;
  const tensors: VectorTensor[] = [];
  let i = 0;
  for (let bits = 2; bits <= 8; bits++) {
    for (const groupSize of [0, G]) {
      for (const asymmetric of [false, true]) {
        for (const scaled of [false, true]) {
          const name = `b${bits}.${groupSize ? `g${groupSize}` : "row"}.${asymmetric ? "asym" : "sym"}${scaled ? ".scaled" : ""}`;
          const scaleType = SCALE_TYPES[i % 2];
          const encoding: TensorEncoding = { encoding: "int-quant", bits, groupSize, asymmetric, scaleType, ...(scaled ? { inputScale: inputScale(shape[1], 1100 + i) } : {}) };
          tensors.push({ tensor: floatTensor(name, QUANT_DTYPES[i % 3], shape, 1000 + i), encoding });
          i++;
        }
      }
    }
  }
  return {
    file: "int-quant-bits.qans",
    spec: ["§8.3", "§7.1", "§7.2"],
    exercises:
      "int-quant for every b from 2 to 8, each with one group per row (G = 0) and with groups of 8 over 24 columns, symmetric and asymmetric, " +
      "with and without a per-input-channel scale: 56 tensors of 4 x 24, original dtypes F32, F16 and BF16 and F16 and F32 scales in turn; " +
      "block size 2^14",
    log2Block: 14,
    metadata: { metadata: {} },
    tensors,
  };
}

/** A U8 stream of zeros with a single 1 in its middle: the longer it is, the larger the k the reference profile picks. */
function oneInZeros(name: string, length: number): TensorData {
  const data = new Uint8Array(length);
  data[length >> 1] = 1;
  return { name, dtype: "U8", shape: [length], data };
}

/** Stream lengths at which the reference profile (spec §15 step 3) picks each k for `oneInZeros`. */
const PRECISION_LENGTHS: Record<number, number> = { 10: 1001, 11: 2001, 12: 4001, 13: 8001, 14: 16001, 15: 200001 };

function precisionVector(): ValidDef {
  return {
    file: "precision.qans",
    spec: ["§10.1", "§10.3", "§10.4", "§15"],
    exercises:
      "frequency tables at every probability scale k from 10 to 15: U8 streams of zeros with one 1, of 1001, 2001, 4001, 8001, 16001 and " +
      "200001 symbols, for which the reference profile picks k = 10 to 15 (the rare symbol gets frequency 1 of 2^k); " +
      "block size 2^16, so the longest stream is CONST blocks around the RANS block that holds the 1",
    log2Block: 16,
    metadata: { metadata: {} },
    tensors: Object.entries(PRECISION_LENGTHS).map(([k, length]) => ({ tensor: oneInZeros(`k${k}`, length), encoding: raw })),
  };
}

/** Sparse ones in zeros: one symbol in 4099 is a 1, so a block of any size is a small RANS payload. */
function sparseOnes(name: string, length: number): TensorData {
  const data = new Uint8Array(length);
  for (let i = 17; i < length; i += 4099) data[i] = 1;
  return { name, dtype: "U8", shape: [length], data };
}

function blockSizesVector(): ValidDef {
  const tensors: VectorTensor[] = [];
  for (let log2Block = 12; log2Block <= 20; log2Block++) {
    tensors.push({ tensor: sparseOnes(`block.2^${log2Block}+1`, 2 ** log2Block + 1), encoding: raw, log2Block });
  }
  return {
    file: "block-sizes.qans",
    spec: ["§7.1", "§7.3", "§9", "§13"],
    exercises:
      "one file whose tensors each have their own block size, every one from 2^12 to 2^20: U8 streams of 2^beta + 1 symbols " +
      "(zeros with a 1 every 4099 symbols), each a RANS block of the full block size followed by a one-symbol CONST block",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors,
  };
}

/** A constant value per block of 2^12 elements: block j of every plane is a CONST block of its own symbol. */
function blockwiseConstantF16(name: string, length: number): TensorData {
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) values[i] = ((i >> 12) - 5) * 0.375;
  return { name, dtype: "F16", shape: [length], data: fromFloat32("F16", values) };
}

function manyBlocksVector(): ValidDef {
  const blocks = 40;
  const fill = (random: Random, i: number) => {
    const block = i >> 12;
    switch (block % 4) {
      case 0:
        return block; // one symbol: CONST
      case 1:
        return random.int(64) === 0 ? 1 + random.int(3) : 0; // sparse: RANS
      case 2:
        return random.int(8) === 0 ? 2 : 0; // two symbols: RANS
      default:
        return random.int(256) === 0 ? random.int(256) : 5; // rare arbitrary bytes: RANS
    }
  };
  return {
    file: "many-blocks.qans",
    spec: ["§7.3", "§9", "§10.2"],
    exercises:
      `block size 2^12: a U8 stream of ${blocks} x 4096 + 100 symbols (${blocks + 1} blocks) whose blocks go CONST, RANS, RANS, RANS in turn, each ` +
      "with other statistics under one table; an F16 float-planes tensor of 12 x 4096 + 7 elements, constant within each block, so its three " +
      "planes are 39 CONST blocks interleaved block-major, each repeating another symbol",
    log2Block: 12,
    metadata: { metadata: {} },
    tensors: [
      { tensor: bytesTensor("u8.many", "U8", [blocks * 4096 + 100], fill, 1200), encoding: raw },
      { tensor: blockwiseConstantF16("f16.blockwise", 12 * 4096 + 7), encoding: planes },
    ],
  };
}

/** A minor version above the reader's (spec §14): the file header's and the trailer's. */
const FUTURE_MINOR = 65535;

function futureMinorVector(): ValidDef {
  const tiny = llamaTinyVector();
  return {
    ...tiny,
    file: "minor-version-future.qans",
    spec: ["§4.1", "§4.2", "§14"],
    exercises:
      `llama-tiny.qans with minor version ${FUTURE_MINOR} in the file header and the trailer (checksums re-sealed): a reader MUST accept a ` +
      "higher minor version, and the file uses no feature a 1.2 reader does not know",
    derive: (bytes) => {
      const out = bytes.slice();
      const dv = view(out);
      if (dv.getUint16(8, true) !== FORMAT_MAJOR) throw new Error("conformance vectors: not a file header");
      dv.setUint16(10, FUTURE_MINOR, true);
      resealFileHeader(out);
      dv.setUint16(out.length - 40 + 26, FUTURE_MINOR, true);
      resealTrailer(out);
      return out;
    },
  };
}

export function validDefs(): ValidDef[] {
  return [
    rawDtypesVector(),
    floatPlanesVector("F32", 200),
    floatPlanesVector("F16", 210),
    floatPlanesVector("BF16", 220),
    intQuantPerRowVector(),
    intQuantGroupsVector(),
    intQuantBitsVector(),
    blockBoundariesVector(),
    blockSizesVector(),
    manyBlocksVector(),
    ransLanesVector(),
    precisionVector(),
    shapesVector(),
    unicodeMetadataVector(),
    llamaTinyVector(),
    futureMinorVector(),
    noTensorsVector(),
    metadataJsonLimitsVector(),
  ];
}
