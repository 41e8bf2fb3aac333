/**
 * The QANS 1.2 conformance vectors, built deterministically in memory.
 *
 * Valid vectors are written with the SDK writer (which follows the reference encoder profile of
 * spec §15, so the bytes are reproducible) from data drawn from fixed seeds of `Random`. Only
 * integer arithmetic, + − × ÷ and Math.fround shape the data, never a transcendental function, so
 * every JavaScript engine draws the same values. Invalid vectors are each derived from a valid one
 * by one targeted change, with the checksums of changed structures re-sealed so that exactly the
 * intended check fails.
 *
 * `buildVectors()` also checks everything it produces: every valid vector must verify and decode
 * to values computed here independently of the reader, and every invalid vector must be rejected
 * by `verifySource` with exactly its declared code. It throws otherwise.
 */
import {
  DTYPES,
  MemorySink,
  MemorySource,
  QansError,
  QansReader,
  QansWriter,
  dtypeSize,
  encodeTensorFrameAsync,
  fromFloat32,
  openModelSource,
  quantizeRtn,
  shardFileName,
  toFloat32,
  verifyModelSource,
  verifySource,
  type ByteSource,
  type DType,
  type ModelMetadata,
  type ModelReader,
  type QansErrorCode,
  type ShardEntry,
  type TensorData,
  type TensorEncoding,
} from "../sdk/index.js";
import { align64, concatBytes } from "../sdk/format/bytes.js";
import { TAG_METADATA } from "../sdk/format/constants.js";
import { encodeFileHeader } from "../sdk/format/file-header.js";
import { encodeIndexFrame } from "../sdk/format/index-frame.js";
import { encodeTrailer } from "../sdk/format/trailer.js";
import { crc32c } from "../sdk/codec/crc32c.js";
import { sha256, writeToMemory } from "../sdk/testing/fixtures.js";
import {
  fileLayout,
  indexEntryOffset,
  resealBlock,
  resealFileHeader,
  resealIndex,
  resealMetadata,
  resealTensorHeader,
  resealTrailer,
  type FileLayout,
} from "../sdk/testing/patch.js";
import { Random } from "../sdk/testing/random.js";
import { referenceDequantize } from "../sdk/testing/reference-dequantize.js";

// ---------------------------------------------------------------------------------------------
// Manifest schema

export interface ManifestTensor {
  name: string;
  dtype: DType;
  shape: number[];
  encoding: string;
  /** sha256 of the decoded tensor bytes in its original dtype (dequantised for int-quant). */
  sha256: string;
  /** sha256 of each stream's decoded symbols, one byte per symbol, in stream order. */
  symbols_sha256: string[];
  /** sha256 of the tensor as little-endian binary32 values; F32, F16 and BF16 tensors only. */
  f32_sha256?: string;
}

export interface ManifestValid {
  /** Path under vectors/valid/; for a set, its set file. */
  file: string;
  spec: string[];
  exercises: string;
  /** For a set (spec §16): its shard files, in set order, paths under vectors/valid/ beside the set file. */
  shards?: string[];
  /** In model order: for a set, every shard's tensors in set order. */
  tensors: ManifestTensor[];
}

export interface ManifestInvalid {
  /** Path under vectors/invalid/; for a set, its set file. */
  file: string;
  code: QansErrorCode;
  spec: string[];
  exercises: string;
  /** For a set: the shard files beside it (valid ones; the defect is in the set file), paths under vectors/invalid/. */
  shards?: string[];
  /**
   * Whether the damage lies in a structure that a random-access reader reads when it opens the
   * file and reads the metadata and every tensor (trailer, index, metadata frame, tensor frames).
   * When true such a reader must reject the file too, though possibly with another code.
   */
  detected_by_random_access: boolean;
}

export interface Manifest {
  format: "qans";
  version: "1.2";
  valid: ManifestValid[];
  invalid: ManifestInvalid[];
}

export interface VectorFile {
  /** Path under vectors/valid/ or vectors/invalid/: a file name, or `<set>/<file name>` for the files of a set. */
  file: string;
  bytes: Uint8Array;
}

export interface VectorSet {
  valid: VectorFile[];
  invalid: VectorFile[];
  manifest: Manifest;
  /** The manifest as written to disk: 2-space JSON and a final newline. */
  manifestText: string;
}

/** Upper bound on the total size of all vectors. */
export const SIZE_BUDGET = 300 * 1024;

// ---------------------------------------------------------------------------------------------
// Deterministic data

/** Roughly standard normal: a scaled sum of four uniforms (Irwin-Hall), arithmetic only. */
function normalish(random: Random): number {
  return (random.next() + random.next() + random.next() + random.next() - 2) * 1.7320508075688772;
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Heavy-tailed like trained weights: the product of two normal-like values (unit variance). */
function weightish(random: Random): number {
  return normalish(random) * normalish(random);
}

function floatTensor(name: string, dtype: "F32" | "F16" | "BF16", shape: number[], seed: number, scale = 0.02): TensorData {
  const random = new Random(seed);
  const values = new Float32Array(elementCount(shape));
  for (let i = 0; i < values.length; i++) values[i] = weightish(random) * scale;
  return { name, dtype, shape, data: fromFloat32(dtype, values) };
}

function bytesTensor(name: string, dtype: DType, shape: number[], fill: (random: Random, i: number) => number, seed: number): TensorData {
  const random = new Random(seed);
  const data = new Uint8Array(elementCount(shape) * dtypeSize(dtype));
  for (let i = 0; i < data.length; i++) data[i] = fill(random, i) & 0xff;
  return { name, dtype, shape, data };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

export interface ValidDef {
  file: string;
  spec: string[];
  exercises: string;
  log2Block: number;
  metadata: ModelMetadata;
  tensors: { tensor: TensorData; encoding: TensorEncoding }[];
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

function unicodeMetadataVector(): ValidDef {
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
function llamaTinyVector(): ValidDef {
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

export function validDefs(): ValidDef[] {
  return [
    rawDtypesVector(),
    floatPlanesVector("F32", 200),
    floatPlanesVector("F16", 210),
    floatPlanesVector("BF16", 220),
    intQuantPerRowVector(),
    intQuantGroupsVector(),
    blockBoundariesVector(),
    ransLanesVector(),
    shapesVector(),
    unicodeMetadataVector(),
    llamaTinyVector(),
    noTensorsVector(),
  ];
}

// ---------------------------------------------------------------------------------------------
// Sets (spec §16)

/** A sharded model: its set file and shards go in a folder of their own, `<name>/`. */
export interface SetDef {
  /** The folder under vectors/valid/ (and vectors/invalid/), and the set file's base name. */
  name: string;
  spec: string[];
  exercises: string;
  log2Block: number;
  /** The maximum shard size the reference writer's rule (spec §16.3) splits at. */
  shardBytes: number;
  /** How many shards that gives; the generator checks it. */
  shardCount: number;
  metadata: ModelMetadata;
  tensors: { tensor: TensorData; encoding: TensorEncoding }[];
}

const SET_BYTES = 2400;

function llamaSetVector(): SetDef {
  const tiny = llamaTinyVector();
  return {
    name: "set-llama",
    spec: ["§16", "§16.1", "§16.2", "§16.3", "§4.1", "§6"],
    exercises:
      "a sharded model: a set file (file-header flag SET, no tensor frames, the shards member) and 3 shard files that llama-tiny.qans's " +
      `tensors are split into by the reference writer's rule (§16.3) at ${SET_BYTES} bytes per shard, named set-llama-00001.qans to ` +
      "set-llama-00003.qans; each shard repeats the model's metadata and architecture record and is a valid QANS file on its own",
    log2Block: tiny.log2Block,
    shardBytes: SET_BYTES,
    shardCount: 3,
    metadata: tiny.metadata,
    tensors: tiny.tensors,
  };
}

export function setDefs(): SetDef[] {
  return [llamaSetVector()];
}

/**
 * Writes a set in memory as the reference writer (spec §16.3, `packStreamSharded`) does: tensors in
 * order, a new shard before a frame that would take the current shard's file past `shardBytes`.
 */
async function writeSet(def: SetDef): Promise<{ set: Uint8Array; shards: { file: string; bytes: Uint8Array }[] }> {
  const shards: { file: string; bytes: Uint8Array }[] = [];
  const entries: ShardEntry[] = [];
  let current: { sink: MemorySink; writer: QansWriter; file: string; tensors: string[] } | undefined;
  const finish = async () => {
    const { sink, writer, file, tensors } = current!;
    const { bytes, trailerChecksum } = await writer.finish();
    shards.push({ file, bytes: sink.bytes() });
    entries.push({ file, bytes, trailer_crc32c: trailerChecksum, tensors });
    current = undefined;
  };
  for (const { tensor, encoding } of def.tensors) {
    const frame = await encodeTensorFrameAsync(tensor, encoding, def.log2Block);
    if (current && current.tensors.length > 0 && current.writer.sizeWith(frame) > def.shardBytes) await finish();
    if (!current) {
      const sink = new MemorySink();
      current = { sink, writer: new QansWriter(sink, { log2Block: def.log2Block }), file: shardFileName(`${def.name}.qans`, shards.length + 1), tensors: [] };
      await current.writer.begin(def.metadata);
    }
    await current.writer.addFrame(frame);
    current.tensors.push(tensor.name);
  }
  await finish();
  const sink = new MemorySink();
  const writer = new QansWriter(sink, { shards: entries });
  await writer.begin(def.metadata);
  await writer.finish();
  return { set: sink.bytes(), shards };
}

/** Opens the files of one folder by name, as a reader of a set opens shards beside the set file. */
function folder(files: ReadonlyMap<string, Uint8Array>): (file: string) => Promise<ByteSource> {
  return async (file) => {
    const bytes = files.get(file);
    if (!bytes) throw new QansError("IO_ERROR", `${file}: no such file`);
    return new MemorySource(bytes, file);
  };
}

interface BuiltSet {
  name: string;
  set: Uint8Array;
  shards: { file: string; bytes: Uint8Array }[];
  entry: ManifestValid;
  blockModes: Record<string, number>;
}

async function buildSet(def: SetDef): Promise<BuiltSet> {
  const { set, shards } = await writeSet(def);
  const file = `${def.name}/${def.name}.qans`;
  if (shards.length !== def.shardCount) fail(`${file}: ${shards.length} shards, expected ${def.shardCount}`);
  for (const shard of shards) {
    if (shard.bytes.length > def.shardBytes) fail(`${file}: shard ${shard.file} has ${shard.bytes.length} bytes, over ${def.shardBytes}`);
    await verifySource(new MemorySource(shard.bytes, shard.file));
  }
  const files = new Map(shards.map((shard) => [shard.file, shard.bytes]));
  const report = await verifyModelSource(new MemorySource(set, file), folder(files));
  const reader = await openModelSource(new MemorySource(set, file), folder(files));
  if (!("shards" in reader)) fail(`${file}: does not open as a set`);
  const tensors = await checkModel(file, reader, report.tensors.map((t) => t.name), def);
  return {
    name: def.name,
    set,
    shards,
    entry: { file, spec: def.spec, exercises: def.exercises, shards: shards.map((shard) => `${def.name}/${shard.file}`), tensors },
    blockModes: blockModesOf(report.tensors),
  };
}

/** A set file's metadata body, as the reference writer writes it. */
interface SetBody {
  metadata: Record<string, string>;
  architecture?: unknown;
  shards?: ShardEntry[];
}

/** A set file around a metadata body given as JSON text, with flag SET as given, checksums sealed. */
function rawSetFile(body: string, set: boolean): Uint8Array {
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

interface InvalidSetDef {
  file: string;
  code: QansErrorCode;
  spec: string[];
  exercises: string;
  /** Changes the valid set file's metadata body; returns whether the flag SET stays set. */
  derive(body: SetBody): boolean;
}

function invalidSetDefs(): InvalidSetDef[] {
  const shard = (body: SetBody, s: number) => body.shards![s];
  return [
    {
      file: "shard-bytes-off-by-one.qans",
      code: "INDEX_MISMATCH",
      spec: ["§16.2"],
      exercises: "the bytes of shard 2 one more than the shard file's length (check 1)",
      derive: (body) => {
        shard(body, 1).bytes += 1;
        return true;
      },
    },
    {
      file: "trailer-crc32c-off-by-one.qans",
      code: "INDEX_MISMATCH",
      spec: ["§16.2", "§4.2"],
      exercises: "the trailer_crc32c of shard 3 one more than the shard's trailer checksum field (check 2); the length is right",
      derive: (body) => {
        shard(body, 2).trailer_crc32c = (shard(body, 2).trailer_crc32c + 1) % 2 ** 32;
        return true;
      },
    },
    {
      file: "tensor-order.qans",
      code: "INDEX_MISMATCH",
      spec: ["§16.2"],
      exercises: "the first two tensors of shard 1 listed in the opposite order to the shard's index (check 3): the same names, in the wrong order",
      derive: (body) => {
        const tensors = shard(body, 0).tensors;
        if (tensors.length < 2) fail("shard 1 of the set holds fewer than 2 tensors");
        [tensors[0], tensors[1]] = [tensors[1], tensors[0]];
        return true;
      },
    },
    {
      file: "file-name-parent.qans",
      code: "BAD_METADATA",
      spec: ["§16.1", "§6"],
      exercises: 'the file of shard 1 set to "../x.qans": a name that would leave the set\'s folder (and starts with ".")',
      derive: (body) => {
        shard(body, 0).file = "../x.qans";
        return true;
      },
    },
    {
      file: "flag-without-shards.qans",
      code: "BAD_METADATA",
      spec: ["§4.1", "§16.1"],
      exercises: "the file-header flag SET with no shards member in the metadata",
      derive: (body) => {
        delete body.shards;
        return true;
      },
    },
    {
      file: "shards-without-flag.qans",
      code: "BAD_METADATA",
      spec: ["§4.1", "§16.1"],
      exercises: "the shards member in the metadata of a file whose flag SET is clear",
      derive: () => false,
    },
    {
      file: "duplicate-tensor.qans",
      code: "DUPLICATE_NAME",
      spec: ["§16.1"],
      exercises: "the first tensor name of shard 2 replaced with the first tensor name of shard 1, so that one name is in two shards",
      derive: (body) => {
        shard(body, 1).tensors[0] = shard(body, 0).tensors[0];
        return true;
      },
    },
  ];
}

/** Reads a model's metadata and every tensor, then closes it. */
export async function readEverythingModel(reader: ModelReader): Promise<void> {
  try {
    await reader.metadata();
    for (const name of reader.names) await reader.readTensor(name);
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Independent expectations (spec §8): what a reader must decode, computed without the reader

function matrix(shape: number[]): { rows: number; cols: number } {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  return { rows: cols === 0 ? 0 : elementCount(shape) / cols, cols };
}

/** Spec §8.2's plane table, applied value by value. */
function referencePlanes(dtype: DType, data: Uint8Array): Uint8Array[] {
  const dv = view(data);
  if (dtype === "F32") {
    const n = data.length / 4;
    const p = [0, 1, 2, 3].map(() => new Uint8Array(n));
    for (let i = 0; i < n; i++) {
      const v = dv.getUint32(4 * i, true);
      p[0][i] = (v >>> 23) & 0xff;
      p[1][i] = v & 0xff;
      p[2][i] = (v >>> 8) & 0xff;
      p[3][i] = ((v >>> 24) & 0x80) | ((v >>> 16) & 0x7f);
    }
    return p;
  }
  const n = data.length / 2;
  if (dtype === "F16") {
    const p = [0, 1, 2].map(() => new Uint8Array(n));
    for (let i = 0; i < n; i++) {
      const v = dv.getUint16(2 * i, true);
      p[0][i] = (v >>> 10) & 0x1f;
      p[1][i] = v & 0xff;
      p[2][i] = ((v >>> 13) & 0x4) | ((v >>> 8) & 0x3);
    }
    return p;
  }
  if (dtype === "BF16") {
    const p = [0, 1].map(() => new Uint8Array(n));
    for (let i = 0; i < n; i++) {
      const v = dv.getUint16(2 * i, true);
      p[0][i] = (v >>> 7) & 0xff;
      p[1][i] = ((v >>> 8) & 0x80) | (v & 0x7f);
    }
    return p;
  }
  throw new Error(`float-planes does not accept ${dtype}`);
}

/** Little-endian bytes of binary32 values, read as bit patterns so NaN payloads survive. */
export function float32Bytes(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint8Array(4 * values.length);
  const dv = view(out);
  for (let i = 0; i < bits.length; i++) dv.setUint32(4 * i, bits[i], true);
  return out;
}

export function hasFloat32View(dtype: DType): boolean {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}

interface Expected {
  data: Uint8Array;
  streams: Uint8Array[];
  f32?: Uint8Array;
}

function expectedDecode(tensor: TensorData, encoding: TensorEncoding): Expected {
  const f32 = (data: Uint8Array) => (hasFloat32View(tensor.dtype) ? float32Bytes(toFloat32(tensor.dtype, data)) : undefined);
  switch (encoding.encoding) {
    case "raw":
      return { data: tensor.data, streams: [tensor.data], f32: f32(tensor.data) };
    case "float-planes":
      return { data: tensor.data, streams: referencePlanes(tensor.dtype, tensor.data), f32: f32(tensor.data) };
    case "int-quant": {
      const { rows, cols } = matrix(tensor.shape);
      const { encoding: _, ...options } = encoding;
      // The quantiser is informative (§15 step 6): the symbols are what the reference encoder chose.
      const { params, symbols } = quantizeRtn(toFloat32(tensor.dtype, tensor.data), rows, cols, options);
      const values = referenceDequantize(params, symbols, rows, cols);
      return { data: fromFloat32(tensor.dtype, values), streams: [symbols], f32: float32Bytes(values) };
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function fail(message: string): never {
  throw new Error(`conformance vectors: ${message}`);
}

async function buildValid(def: ValidDef): Promise<{ bytes: Uint8Array; entry: ManifestValid; blockModes: Record<string, number> }> {
  const bytes = await writeToMemory(def.tensors, { log2Block: def.log2Block, metadata: def.metadata });
  const source = new MemorySource(bytes);
  const report = await verifySource(source);
  const tensors = await checkModel(def.file, await QansReader.open(source), report.tensors.map((t) => t.name), def);
  return { bytes, entry: { file: def.file, spec: def.spec, exercises: def.exercises, tensors }, blockModes: blockModesOf(report.tensors) };
}

function blockModesOf(tensors: Awaited<ReturnType<typeof verifySource>>["tensors"]): Record<string, number> {
  const blockModes: Record<string, number> = { RAW: 0, CONST: 0, RANS: 0 };
  for (const t of tensors) for (const s of t.streams) for (const [mode, n] of Object.entries(s.blockModes)) blockModes[mode] += n;
  return blockModes;
}

/**
 * Reads a model (one file or a set) back and checks it against its definition: metadata, names
 * (`verified` are those the full verifier reported), index entries, and every tensor's data,
 * symbols and binary32 values against values computed without the reader. Returns the manifest's
 * tensor records.
 */
async function checkModel(
  file: string,
  reader: ModelReader,
  verified: string[],
  def: { metadata: ModelMetadata; tensors: { tensor: TensorData; encoding: TensorEncoding }[] },
): Promise<ManifestTensor[]> {
  const modelMetadata = (m: ModelMetadata) => JSON.stringify({ metadata: m.metadata, architecture: m.architecture });
  if (modelMetadata(await reader.metadata()) !== modelMetadata(def.metadata)) fail(`${file}: metadata does not read back`);
  const names = def.tensors.map((t) => t.tensor.name);
  if (JSON.stringify(verified) !== JSON.stringify(names)) fail(`${file}: the verifier reports tensors ${verified.join(", ")}`);
  if (JSON.stringify(reader.names) !== JSON.stringify(names)) fail(`${file}: the reader lists tensors ${reader.names.join(", ")}`);
  const entries = await reader.tensorEntries();

  const tensors: ManifestTensor[] = [];
  for (const [t, { tensor, encoding }] of def.tensors.entries()) {
    const entry = entries[t];
    const where = `${file} tensor "${tensor.name}"`;
    if (entry.name !== tensor.name || entry.dtype !== tensor.dtype || entry.encoding !== encoding.encoding) fail(`${where}: index entry differs`);
    if (JSON.stringify(entry.shape) !== JSON.stringify(tensor.shape)) fail(`${where}: shape differs`);
    const expected = expectedDecode(tensor, encoding);
    const decoded = await reader.readTensor(tensor.name);
    if (!sameBytes(decoded.data, expected.data)) fail(`${where}: decoded data differs from the expected values`);
    const { streams } = await reader.readStreams(tensor.name);
    if (streams.length !== expected.streams.length || streams.some((s, i) => !sameBytes(s, expected.streams[i]))) {
      fail(`${where}: decoded symbol streams differ from the expected planes or symbols`);
    }
    const record: ManifestTensor = {
      name: tensor.name,
      dtype: tensor.dtype,
      shape: [...tensor.shape],
      encoding: encoding.encoding,
      sha256: sha256(expected.data),
      symbols_sha256: expected.streams.map(sha256),
    };
    if (expected.f32) {
      const f32 = float32Bytes(await reader.readFloat32(tensor.name));
      if (!sameBytes(f32, expected.f32)) fail(`${where}: binary32 values differ from the expected ones`);
      record.f32_sha256 = sha256(expected.f32);
    }
    tensors.push(record);
  }
  await reader.close();
  return tensors;
}

// ---------------------------------------------------------------------------------------------
// Locating fields inside a valid file

export interface TableMap {
  stream: number;
  width: number;
  k: number;
  /** The table flag's offset and value (§7.2): 1 presence bitmap, 2 presence runs. */
  flagAt: number;
  flag: number;
  /** Offset of the presence bitmap, or of the run count R. */
  presenceAt: number;
  /** Each present symbol's frequency varint. */
  freqs: { at: number; length: number; value: number }[];
}

export interface HeaderMap {
  tables: TableMap[];
  /** Offset of the first int-quant delta, when the tensor is int-quant. */
  deltas?: number;
}

/** Walks a tensor header of a valid file (spec §7.1, §7.2, §10.3, §8.3). */
export function mapTensorHeader(bytes: Uint8Array, at: number): HeaderMap {
  const dv = view(bytes);
  let p = at + 10 + dv.getUint16(at + 8, true);
  const encoding = bytes[p + 1];
  const rank = bytes[p + 2];
  p += 4 + 8 * rank;
  const streamCount = bytes[p];
  p += 4;
  const tables: TableMap[] = [];
  const varint = (): { at: number; length: number; value: number } => {
    const start = p;
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
    }
    return { at: start, length: p - start, value };
  };
  for (let s = 0; s < streamCount; s++) {
    const width = bytes[p++];
    const flagAt = p;
    const flag = bytes[p++];
    if (flag === 0) continue;
    const k = bytes[p++];
    const presenceAt = p;
    const present = new Uint8Array(2 ** width);
    if (flag === 1) {
      for (let symbol = 0; symbol < 2 ** width; symbol++) present[symbol] = (bytes[p + (symbol >> 3)] >> (symbol & 7)) & 1;
      p += Math.ceil(2 ** width / 8);
    } else {
      const runs = varint().value;
      for (let r = 0, next = 0; r < runs; r++) {
        const first = next + varint().value;
        next = first + varint().value + 1;
        present.fill(1, first, next);
      }
    }
    const freqs: TableMap["freqs"] = [];
    for (let symbol = 0; symbol < 2 ** width; symbol++) if (present[symbol]) freqs.push(varint());
    tables.push({ stream: s, width, k, flagAt, flag, presenceAt, freqs });
  }
  return encoding === 2 ? { tables, deltas: p + 8 } : { tables };
}

function varintLength(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
}

function writeVarint(bytes: Uint8Array, at: number, value: number): void {
  let p = at;
  let v = value;
  while (v >= 0x80) {
    bytes[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  bytes[p] = v;
}

/** Moves one frequency of the first table by `delta`, keeping its varint length and every per-symbol rule. */
function shiftFrequency(bytes: Uint8Array, layout: FileLayout, delta: 1 | -1): void {
  for (const [t, tensor] of layout.tensors.entries()) {
    for (const table of mapTensorHeader(bytes, tensor.headerOffset).tables) {
      for (const f of table.freqs) {
        const value = f.value + delta;
        if (value >= 1 && value < 2 ** table.k && varintLength(value) === f.length) {
          writeVarint(bytes, f.at, value);
          resealTensorHeader(bytes, layout, t);
          return;
        }
      }
    }
  }
  fail("no frequency table to change");
}

/** The first table of the file that `accept` takes, with its tensor's index. */
function firstTable(bytes: Uint8Array, layout: FileLayout, accept: (table: TableMap) => boolean): { t: number; table: TableMap } {
  for (const [t, tensor] of layout.tensors.entries()) {
    const table = mapTensorHeader(bytes, tensor.headerOffset).tables.find(accept);
    if (table) return { t, table };
  }
  return fail("no such frequency table");
}

/** The first RANS block: tensor index and block header offset. */
function firstRansBlock(bytes: Uint8Array, layout: FileLayout): { tensor: number; at: number; payload: number } {
  for (const [t, tensor] of layout.tensors.entries()) {
    for (const [b, at] of tensor.blockHeaders.entries()) {
      if (bytes[at] === 2) return { tensor: t, at, payload: tensor.entry.payloadLengths[b] };
    }
  }
  return fail("no RANS block");
}

function tensorNamed(layout: FileLayout, name: string): number {
  const t = layout.tensors.findIndex((x) => x.entry.name === name);
  if (t < 0) fail(`no tensor "${name}"`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Invalid vectors

interface InvalidDef {
  file: string;
  from: string;
  code: QansErrorCode;
  spec: string[];
  exercises: string;
  detectedByRandomAccess: boolean;
  derive(bytes: Uint8Array, layout: FileLayout): Uint8Array;
}

const BASE = "llama-tiny.qans";
const Q_PROJ = "model.layers.0.self_attn.q_proj.weight";
const K_PROJ = "model.layers.0.self_attn.k_proj.weight";

function invalidDefs(): InvalidDef[] {
  return [
    {
      file: "bad-magic.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§4.1", "§12"],
      exercises: "the first byte of the file magic changed from 'Q' to 'q'; the trailer is intact, so only a reader of the file header sees it",
      detectedByRandomAccess: false,
      derive: (b) => {
        b[0] = 0x71;
        return b;
      },
    },
    {
      file: "unsupported-version-header.qans",
      from: BASE,
      code: "UNSUPPORTED_VERSION",
      spec: ["§4.1", "§14"],
      exercises: "file header major version 2, header checksum re-sealed (the version is checked before the checksum in any case)",
      detectedByRandomAccess: false,
      derive: (b) => {
        view(b).setUint16(8, 2, true);
        resealFileHeader(b);
        return b;
      },
    },
    {
      file: "unsupported-version-trailer.qans",
      from: BASE,
      code: "UNSUPPORTED_VERSION",
      spec: ["§4.2", "§14"],
      exercises: "trailer major version 2, trailer checksum re-sealed; the file header still says 1",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        view(b).setUint16(layout.trailerOffset + 24, 2, true);
        resealTrailer(b);
        return b;
      },
    },
    {
      file: "reserved-bits-header-flags.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§4.1", "§2"],
      exercises: "file header flags = 2: bit 1 set (bit 0 is SET since 1.2, bits 1 to 31 are reserved), header checksum re-sealed",
      detectedByRandomAccess: false,
      derive: (b) => {
        view(b).setUint32(12, 2, true);
        resealFileHeader(b);
        return b;
      },
    },
    {
      file: "reserved-bits-block-header.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§9", "§2"],
      exercises: "the reserved u16 at offset 2 of the first block header set to 1, block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const at = layout.tensors[0].blockHeaders[0];
        view(b).setUint16(at + 2, 1, true);
        resealBlock(b, at);
        return b;
      },
    },
    {
      file: "truncated-mid-block.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.2", "§9"],
      exercises: "the file cut in the middle of the first RANS block's payload: the end magic is missing and the file starts with the magic",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const { at, payload } = firstRansBlock(b, layout);
        return b.slice(0, at + 16 + Math.floor(payload / 2));
      },
    },
    {
      file: "truncated-before-trailer.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.2"],
      exercises: "the file cut exactly where the trailer starts, as a writer interrupted after the index would leave it",
      detectedByRandomAccess: true,
      derive: (b, layout) => b.slice(0, layout.trailerOffset),
    },
    {
      file: "truncated-empty.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.1", "§4.2"],
      exercises: "an empty file (0 bytes): an empty prefix is a prefix of the magic, so it is TRUNCATED rather than BAD_MAGIC",
      detectedByRandomAccess: true,
      derive: () => new Uint8Array(0),
    },
    {
      file: "short-not-qans.qans",
      from: BASE,
      code: "BAD_MAGIC",
      spec: ["§4.1", "§4.2"],
      exercises: "a 5-byte file that does not start like the magic: shorter than any QANS file and not a prefix of the magic",
      detectedByRandomAccess: true,
      derive: () => new TextEncoder().encode("hello"),
    },
    {
      file: "short-magic-prefix.qans",
      from: BASE,
      code: "TRUNCATED",
      spec: ["§4.1", "§4.2"],
      exercises: "the first 4 bytes of the magic alone: a prefix of the magic, so a cut-short QANS file",
      detectedByRandomAccess: true,
      derive: (b) => b.slice(0, 4),
    },
    {
      file: "trailing-data.qans",
      from: BASE,
      code: "TRAILING_DATA",
      spec: ["§4.2", "§3"],
      exercises:
        "40 bytes (a copy of the trailer) appended after the trailer: the last 40 bytes are a valid trailer whose file length is " +
        "40 less than the real size (bytes after a trailer with no end magic of their own would be TRUNCATED instead)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const out = new Uint8Array(b.length + 40);
        out.set(b);
        out.set(b.subarray(layout.trailerOffset), b.length);
        return out;
      },
    },
    {
      file: "checksum-header.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§4.1", "§2"],
      exercises: "one bit of the stored file header checksum flipped",
      detectedByRandomAccess: false,
      derive: (b) => {
        b[60] ^= 0x01;
        return b;
      },
    },
    {
      file: "checksum-metadata.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§6"],
      exercises: "one character of a metadata value changed ('llama-tiny' to 'llama-tinz'), still valid JSON, checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const text = new TextDecoder().decode(b.subarray(layout.metadata.offset + 8, layout.metadata.offset + layout.metadata.length - 4));
        const at = text.indexOf("llama-tiny");
        if (at < 0) fail("metadata value not found");
        b[layout.metadata.offset + 8 + at + 9] = "z".charCodeAt(0);
        return b;
      },
    },
    {
      file: "checksum-tensor-header.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§7.1", "§8.3"],
      exercises: "the lowest bit of the first int-quant delta of the first tensor flipped (a silent change of scale without the checksum), checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const deltas = mapTensorHeader(b, layout.tensors[0].headerOffset).deltas;
        if (deltas === undefined) fail("first tensor is not int-quant");
        b[deltas] ^= 0x01;
        return b;
      },
    },
    {
      file: "checksum-block.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§9"],
      exercises: "one bit of the last payload byte of the first RANS block flipped, block checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const { at, payload } = firstRansBlock(b, layout);
        b[at + 16 + payload - 1] ^= 0x10;
        return b;
      },
    },
    {
      file: "checksum-index.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§11"],
      exercises: "the frame length of the first index entry increased by one, index checksum not updated",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const at = frameLengthField(layout, 0);
        view(b).setBigUint64(at, view(b).getBigUint64(at, true) + 1n, true);
        return b;
      },
    },
    {
      file: "checksum-trailer.qans",
      from: BASE,
      code: "CHECKSUM_MISMATCH",
      spec: ["§4.2"],
      exercises: "the lowest bit of the trailer's file length flipped, trailer checksum not updated (the checksum is checked before the length)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        b[layout.trailerOffset + 16] ^= 0x01;
        return b;
      },
    },
    {
      file: "bad-freq-table-sum-low.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3", "§7.2"],
      exercises: "one frequency of the first table decreased by one (varint length kept), so the frequencies sum to 2^k - 1; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        shiftFrequency(b, layout, -1);
        return b;
      },
    },
    {
      file: "bad-freq-table-sum-high.qans",
      from: BASE,
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3", "§7.2"],
      exercises: "one frequency of the first table increased by one (varint length kept, still below 2^k), so the frequencies sum to 2^k + 1; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        shiftFrequency(b, layout, 1);
        return b;
      },
    },
    {
      file: "bad-block-lane-code.qans",
      from: BASE,
      code: "BAD_BLOCK",
      spec: ["§9", "§10.1"],
      exercises: "the lane code (byte 1) of the first RANS block header set to 6, one above the largest (5, one lane); block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const { at } = firstRansBlock(b, layout);
        b[at + 1] = 6;
        resealBlock(b, at);
        return b;
      },
    },
    {
      file: "reserved-bits-table-flag.qans",
      from: BASE,
      code: "RESERVED_BITS",
      spec: ["§7.2", "§2"],
      exercises: "the table flag of the first stream with a table set to 3 (0, 1 and 2 are defined); tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const { t, table } = firstTable(b, layout, () => true);
        b[table.flagAt] = 3;
        resealTensorHeader(b, layout, t);
        return b;
      },
    },
    {
      file: "bad-freq-table-no-runs.qans",
      from: "rans-lanes.qans",
      code: "BAD_FREQ_TABLE",
      spec: ["§10.3"],
      exercises: "the run count R of the first table written with presence runs (flag 2) set from 1 to 0; tensor header checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const { t, table } = firstTable(b, layout, (x) => x.flag === 2 && b[x.presenceAt] === 1);
        b[table.presenceAt] = 0;
        resealTensorHeader(b, layout, t);
        return b;
      },
    },
    {
      file: "bad-final-state.qans",
      from: BASE,
      code: "BAD_FINAL_STATE",
      spec: ["§10.2"],
      exercises: "the stored state of lane 0 of the first RANS block set to 2^15 - 1, just below L; block checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const { at } = firstRansBlock(b, layout);
        view(b).setUint32(at + 16, 2 ** 15 - 1, true);
        resealBlock(b, at);
        return b;
      },
    },
    {
      file: "nonzero-padding.qans",
      from: BASE,
      code: "NONZERO_PADDING",
      spec: ["§2", "§9"],
      exercises: "the first padding byte between the first tensor header and its first block header set to 1 (padding is covered by no checksum)",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const tensor = layout.tensors[0];
        const at = tensor.headerOffset + tensor.headerLength;
        if (at >= tensor.blockHeaders[0]) fail("no padding before the first block");
        b[at] = 0x01;
        return b;
      },
    },
    {
      file: "duplicate-name.qans",
      from: BASE,
      code: "DUPLICATE_NAME",
      spec: ["§11"],
      exercises: `the index entry of "${K_PROJ}" renamed to "${Q_PROJ}" (same length), index checksum re-sealed`,
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const t = tensorNamed(layout, K_PROJ);
        b[indexEntryOffset(layout, t) + 2 + K_PROJ.indexOf("k_proj")] = "q".charCodeAt(0);
        resealIndex(b, layout);
        return b;
      },
    },
    {
      file: "bad-shape.qans",
      from: BASE,
      code: "BAD_SHAPE",
      spec: ["§7.1", "§11", "§13"],
      exercises: "the first dimension in the index entry of the first tensor set to 2^48 + 1, index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const at = indexEntryOffset(layout, 0) + 2 + nameBytes(layout, 0) + 4;
        view(b).setBigUint64(at, 2n ** 48n + 1n, true);
        resealIndex(b, layout);
        return b;
      },
    },
    {
      file: "misaligned-index-offset.qans",
      from: BASE,
      code: "MISALIGNED",
      spec: ["§4.2", "§3"],
      exercises: "the trailer's index offset decreased by one and its index length increased by one (their sum still reaches the trailer), trailer checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const dv = view(b);
        dv.setBigUint64(layout.trailerOffset, BigInt(layout.index.offset - 1), true);
        dv.setBigUint64(layout.trailerOffset + 8, BigInt(layout.index.length + 1), true);
        resealTrailer(b);
        return b;
      },
    },
    {
      file: "index-mismatch.qans",
      from: BASE,
      code: "INDEX_MISMATCH",
      spec: ["§11", "§9"],
      exercises:
        "the frame length of an index entry whose frame does not end on a 64-byte boundary increased by one: frames stay contiguous " +
        "and before the index, but the length disagrees with the header and block placement; index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const t = layout.tensors.findIndex((x) => (x.entry.frameOffset + x.entry.frameLength) % 64 !== 0);
        if (t < 0) fail("every frame ends on a 64-byte boundary");
        const at = frameLengthField(layout, t);
        view(b).setBigUint64(at, view(b).getBigUint64(at, true) + 1n, true);
        resealIndex(b, layout);
        return b;
      },
    },
    {
      file: "bad-metadata-duplicate-key.qans",
      from: BASE,
      code: "BAD_METADATA",
      spec: ["§6"],
      exercises: 'the metadata key "general.type" renamed to "general.name", so the object has a duplicate key; metadata checksum re-sealed',
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        const body = layout.metadata.offset + 8;
        const text = new TextDecoder().decode(b.subarray(body, layout.metadata.offset + layout.metadata.length - 4));
        const at = text.indexOf('"general.type"');
        if (at < 0 || text.indexOf('"general.name"') < 0) fail("metadata keys not found");
        b.set(new TextEncoder().encode('"general.name"'), body + at);
        resealMetadata(b, layout);
        return b;
      },
    },
    {
      file: "bad-utf8-index-name.qans",
      from: BASE,
      code: "BAD_UTF8",
      spec: ["§2", "§11"],
      exercises: "the first byte of the second tensor's name in the index set to 0xFF (never valid in UTF-8), index checksum re-sealed",
      detectedByRandomAccess: true,
      derive: (b, layout) => {
        b[indexEntryOffset(layout, 1) + 2] = 0xff;
        resealIndex(b, layout);
        return b;
      },
    },
  ];
}

function nameBytes(layout: FileLayout, tensor: number): number {
  return new TextEncoder().encode(layout.tensors[tensor].entry.name).length;
}

/** Offset of the u64 frame length in tensor `tensor`'s index entry. */
function frameLengthField(layout: FileLayout, tensor: number): number {
  const rank = layout.tensors[tensor].entry.shape.length;
  return indexEntryOffset(layout, tensor) + 2 + nameBytes(layout, tensor) + 4 + 8 * rank + 4 + 8 + 4;
}

async function rejectionCode(action: () => Promise<unknown>): Promise<QansErrorCode | "accepted" | "other"> {
  try {
    await action();
    return "accepted";
  } catch (error) {
    return error instanceof QansError ? error.code : "other";
  }
}

/** Opens a file for random access and reads its metadata and every tensor. */
export async function readEverything(bytes: Uint8Array): Promise<void> {
  const reader = await QansReader.open(new MemorySource(bytes));
  await reader.metadata();
  for (const entry of reader.entries) await reader.readTensor(entry.name);
}

// ---------------------------------------------------------------------------------------------

/**
 * The invalid sets derived from `built`: each a set file with one defect, in a folder with copies of
 * the valid shards, which every invalid set of the folder shares.
 */
async function buildInvalidSets(built: BuiltSet, invalid: VectorFile[], manifest: ManifestInvalid[]): Promise<void> {
  const from = built.entry.file;
  const length = view(built.set).getUint32(64 + 4, true);
  const bodyText = new TextDecoder().decode(built.set.subarray(64 + 8, 64 + 8 + length));
  if (!sameBytes(rawSetFile(bodyText, true), built.set)) fail(`${from}: the set file does not rebuild from its metadata body`);
  const files = new Map(built.shards.map((shard) => [shard.file, shard.bytes]));
  const shards = built.shards.map((shard) => `${built.name}/${shard.file}`);
  invalid.push(...built.shards.map((shard) => ({ file: `${built.name}/${shard.file}`, bytes: shard.bytes })));
  for (const def of invalidSetDefs()) {
    const body = JSON.parse(bodyText) as SetBody;
    const set = def.derive(body);
    const bytes = rawSetFile(JSON.stringify(body), set);
    const file = `${built.name}/${def.file}`;
    const code = await rejectionCode(() => verifyModelSource(new MemorySource(bytes, file), folder(files)));
    if (code !== def.code) fail(`${file}: verifyModelSource gives ${code}, declared ${def.code}`);
    const randomAccess = await rejectionCode(async () => readEverythingModel(await openModelSource(new MemorySource(bytes, file), folder(files))));
    if (randomAccess === "accepted" || randomAccess === "other") fail(`${file}: the random-access reader gives ${randomAccess}`);
    invalid.push({ file, bytes });
    manifest.push({ file, code: def.code, spec: def.spec, exercises: `derived from ${from}: ${def.exercises}`, shards, detected_by_random_access: true });
  }
}

/** Builds and checks every vector and the manifest, in memory. */
export async function buildVectors(): Promise<VectorSet> {
  const valid: VectorFile[] = [];
  const manifestValid: ManifestValid[] = [];
  const byFile = new Map<string, Uint8Array>();
  const modes: Record<string, number> = { RAW: 0, CONST: 0, RANS: 0 };
  for (const def of validDefs()) {
    const { bytes, entry, blockModes } = await buildValid(def);
    valid.push({ file: def.file, bytes });
    manifestValid.push(entry);
    byFile.set(def.file, bytes);
    for (const mode of Object.keys(modes)) modes[mode] += blockModes[mode];
  }
  const builtSets: BuiltSet[] = [];
  for (const def of setDefs()) {
    const built = await buildSet(def);
    builtSets.push(built);
    valid.push({ file: built.entry.file, bytes: built.set }, ...built.shards.map((shard) => ({ file: `${def.name}/${shard.file}`, bytes: shard.bytes })));
    manifestValid.push(built.entry);
    for (const mode of Object.keys(modes)) modes[mode] += built.blockModes[mode];
  }
  for (const [mode, count] of Object.entries(modes)) if (count === 0) fail(`no valid vector has a ${mode} block`);
  const rawDtypes = new Set(manifestValid.flatMap((v) => v.tensors.filter((t) => t.encoding === "raw").map((t) => t.dtype)));
  for (const dtype of Object.keys(DTYPES)) if (!rawDtypes.has(dtype as DType)) fail(`no raw tensor of dtype ${dtype}`);

  const invalid: VectorFile[] = [];
  const manifestInvalid: ManifestInvalid[] = [];
  for (const def of invalidDefs()) {
    const base = byFile.get(def.from) ?? fail(`${def.file}: unknown base ${def.from}`);
    const layout = await fileLayout(base);
    const bytes = def.derive(base.slice(), layout);
    const code = await rejectionCode(() => verifySource(new MemorySource(bytes)));
    if (code !== def.code) fail(`${def.file}: verifySource gives ${code}, declared ${def.code}`);
    if (def.detectedByRandomAccess) {
      const randomAccess = await rejectionCode(() => readEverything(bytes));
      if (randomAccess === "accepted" || randomAccess === "other") fail(`${def.file}: the random-access reader gives ${randomAccess}`);
    }
    invalid.push({ file: def.file, bytes });
    manifestInvalid.push({
      file: def.file,
      code: def.code,
      spec: def.spec,
      exercises: `derived from ${def.from}: ${def.exercises}`,
      detected_by_random_access: def.detectedByRandomAccess,
    });
  }

  for (const built of builtSets) await buildInvalidSets(built, invalid, manifestInvalid);

  const names = [...valid.map((v) => `valid/${v.file}`), ...invalid.map((v) => `invalid/${v.file}`)];
  if (new Set(names).size !== names.length) fail("two vectors share a file name");
  const total = [...valid, ...invalid].reduce((sum, v) => sum + v.bytes.length, 0);
  if (total > SIZE_BUDGET) fail(`vectors total ${total} bytes, over the budget of ${SIZE_BUDGET}`);

  const manifest: Manifest = { format: "qans", version: "1.2", valid: manifestValid, invalid: manifestInvalid };
  return { valid, invalid, manifest, manifestText: `${JSON.stringify(manifest, null, 2)}\n` };
}
