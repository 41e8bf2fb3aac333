/**
 * Seed inputs for the native decoder fuzzer (fuzz/native/decode_fuzzer.cc), from the valid
 * conformance vectors: every RANS block with its stream's frequency table, every RAW block, every
 * tensor frame as a block job (which covers the CONST blocks), the decoded planes of every
 * float-planes tensor, the symbols and parameters of every int-quant tensor, each stream's
 * symbols for the encoder round trip, and every int-quant tensor as a compressed weight matrix
 * (its frame, and its symbols for the harness to encode), also from a few matrices of several
 * blocks written here. The file layout and every structure are read with the SDK's own parsers;
 * the input format of each operation is the one the harness documents.
 *
 *   npx tsx fuzz/native/make-seeds.ts [out-dir]     (default fuzz/native/corpus-seed)
 *
 * The directory is emptied first; fuzz/native/run.sh runs this before every campaign.
 */
import { mkdirSync, readdirSync, rmSync, statSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { histogram } from "../../sdk/codec/histogram.js";
import { kernels } from "../../sdk/codec/kernels.js";
import { makeFreqTable, MAX_K, MIN_K, normalizeFrequencies, type FreqTable } from "../../sdk/codec/freq-table.js";
import { laneCode, RANS_MAX_LANES } from "../../sdk/codec/rans.js";
import { blockHeaderParam, blockPayloadLength, decodeBlockHeader, type BlockHeader } from "../../sdk/format/block-header.js";
import { ByteWriter } from "../../sdk/format/bytes.js";
import { BLOCK_HEADER_SIZE, BLOCK_MODES } from "../../sdk/format/constants.js";
import { blockSymbolCount, matrixShape, streamSymbolCount } from "../../sdk/format/layout.js";
import { decodeTensorHeader, type TensorHeader } from "../../sdk/format/tensor-header.js";
import { MemorySource } from "../../sdk/io/source.js";
import type { QuantizeOptions } from "../../sdk/quant/rtn.js";
import { QansReader } from "../../sdk/reader.js";
import { gaussianTensor, writeToMemory } from "../../sdk/testing/fixtures.js";
import { fileLayout } from "../../sdk/testing/patch.js";
import { Random } from "../../sdk/testing/random.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const VECTORS = join(ROOT, "conformance/vectors/valid");
const DEFAULT_OUT = join(ROOT, "fuzz/native/corpus-seed");

/** Operation bytes of the harness (kOperations in decode_fuzzer.cc). */
const OP = { ransDecode: 0, unpack: 1, floatPlanes: 2, dequantize: 3, blockJob: 4, encodeRoundTrip: 5, crc: 6, weightProduct: 8 } as const;
/** The harness's limits: rows and columns of a dequantised matrix, blocks and streams of a job. */
const MAX_ROWS = 64;
const MAX_COLS = 4096;
const MAX_JOB_BLOCKS = 64;
/** The weight-matrix operation's limits: rows, columns, and elements of a usual and of a large matrix. */
const MAX_WEIGHT_ROWS = 256;
const MAX_WEIGHT_COLS = 16384;
const MAX_WEIGHT_ELEMENTS = 3 * 2 ** 12;
const MAX_LARGE_WEIGHT_ELEMENTS = 3 * 2 ** 14;
/** Its flag bits: the frame encoded by the harness, and a large matrix (both bits). */
const WEIGHT_ENCODE = 8;
const WEIGHT_LARGE = 0x50;
/** Symbols given to the encoder round trip: enough for several blocks of 2^12 and the SIMD paths. */
const MAX_ROUND_TRIP_SYMBOLS = 3 * 4096 + 100;
const PLANE_TYPES = { F32: 0, F16: 1, BF16: 2 } as const;
/**
 * The vectors' blocks are small, so few of them have 32 lanes, the SIMD decoders' case: the first
 * streams with a table of each vector are also encoded on 32 lanes at every k (at most this many
 * symbols of them, and this many streams a vector).
 */
const WIDE_SEED_SYMBOLS = 8192;
const WIDE_SEED_STREAMS = 2;

/** The harness's table section: k byte (below 0x80: k = 10 + byte % 6), mode 0 (u16 frequencies as given), 2^w frequencies. */
function writeTable(out: ByteWriter, table: FreqTable): void {
  out.u8(table.k - 10).u8(0);
  for (const f of table.freqs) out.u16(f);
}

interface Block {
  stream: number;
  headerAt: number;
  header: BlockHeader;
  payload: Uint8Array;
  outputOffset: number;
}

/** Every block of a tensor frame, each checked by the SDK's block-header parser. */
function frameBlocks(bytes: Uint8Array, header: TensorHeader, headerOffsets: number[], where: string): Block[] {
  const symbols = streamSymbolCount(header.encoding, header.dtype, header.elements);
  const streams = header.streams.length;
  return headerOffsets.map((headerAt, ordinal) => {
    const stream = ordinal % streams;
    const j = Math.floor(ordinal / streams);
    const headerBytes = bytes.subarray(headerAt, headerAt + BLOCK_HEADER_SIZE);
    const payload = bytes.subarray(headerAt + BLOCK_HEADER_SIZE, headerAt + BLOCK_HEADER_SIZE + blockPayloadLength(headerBytes));
    const { width, table } = header.streams[stream];
    const count = blockSymbolCount(symbols, header.log2Block, j);
    const parsed = decodeBlockHeader(headerBytes, payload, count, width, table !== null, `${where} block ${ordinal}`, headerAt);
    return { stream, headerAt, header: parsed, payload, outputOffset: j * 2 ** header.log2Block };
  });
}

/** Seeds of one vector file, by name. */
async function seedsOf(bytes: Uint8Array, label: string): Promise<Map<string, Uint8Array>> {
  const seeds = new Map<string, Uint8Array>();
  const layout = await fileLayout(bytes);
  const reader = await QansReader.open(new MemorySource(bytes));
  let wideSeedStreams = 0;
  seeds.set(`${label}.crc`, new ByteWriter().u8(OP.crc).u32(0).u32(bytes.length >>> 1).bytes(bytes).finish());
  for (const [t, tensor] of layout.tensors.entries()) {
    const name = `${label}.t${t}`;
    const header = decodeTensorHeader(bytes.subarray(tensor.headerOffset, tensor.headerOffset + tensor.headerLength), tensor.headerOffset);
    const blocks = frameBlocks(bytes, header, tensor.blockHeaders, `${label} tensor ${t}`);
    for (const [i, block] of blocks.entries()) {
      const { width, table } = header.streams[block.stream];
      const { mode, count, lanes } = block.header;
      if (mode === "RANS") {
        const seed = new ByteWriter().u8(OP.ransDecode).u8(width - 1);
        writeTable(seed, table!);
        seeds.set(`${name}.b${i}.rans`, seed.u8(laneCode(lanes)).u32(count).bytes(block.payload).finish());
      } else if (mode === "RAW") {
        seeds.set(`${name}.b${i}.raw`, new ByteWriter().u8(OP.unpack).u8(width - 1).u32(count).bytes(block.payload).finish());
      }
    }
    seeds.set(`${name}.job`, blockJobSeed(bytes, header, tensor.headerOffset, tensor.entry.frameLength, blocks));

    const { streams } = await reader.readStreams(tensor.entry.name);
    for (const [s, symbols] of streams.entries()) {
      const { width, table } = header.streams[s];
      const roundTrip = new ByteWriter().u8(OP.encodeRoundTrip).u8((table?.k ?? 12) - 10).u8(width - 1).u8(s % 6).u8(header.log2Block - 12);
      seeds.set(`${name}.s${s}.encode`, roundTrip.bytes(symbols.subarray(0, MAX_ROUND_TRIP_SYMBOLS)).finish());
    }
    for (const [s, symbols] of streams.entries()) {
      if (!header.streams[s].table || wideSeedStreams >= WIDE_SEED_STREAMS) continue;
      wideSeedStreams++;
      for (const [k, seed] of wideRansSeeds(symbols.subarray(0, WIDE_SEED_SYMBOLS), header.streams[s].width)) seeds.set(`${name}.s${s}.k${k}.rans32`, seed);
    }
    if (header.encoding === "float-planes" && header.elements > 0) {
      const planes = new ByteWriter().u8(OP.floatPlanes).u8(PLANE_TYPES[header.dtype as keyof typeof PLANE_TYPES]);
      for (const plane of streams) planes.bytes(plane);
      seeds.set(`${name}.planes`, planes.finish());
    }
    if (header.encoding === "int-quant" && header.elements > 0) seeds.set(`${name}.dequantize`, dequantizeSeed(header, streams[0]));
  }
  await reader.close();
  return seeds;
}

/** `symbols` rANS-coded on 32 lanes with the SDK's encoder, at each k from 10 to 15, as decode seeds. */
function wideRansSeeds(symbols: Uint8Array, width: number): Map<number, Uint8Array> {
  const seeds = new Map<number, Uint8Array>();
  const counts = histogram(symbols, 2 ** width);
  if (counts.filter((c) => c > 0).length < 2) return seeds;
  for (let k = MIN_K; k <= MAX_K; k++) {
    const table = makeFreqTable(k, width, normalizeFrequencies(counts, k));
    const seed = new ByteWriter().u8(OP.ransDecode).u8(width - 1);
    writeTable(seed, table);
    const payload = kernels().ransEncode(symbols, table, RANS_MAX_LANES);
    seeds.set(k, seed.u8(laneCode(RANS_MAX_LANES)).u32(symbols.length).bytes(payload).finish());
  }
  return seeds;
}

/**
 * The frame as a block job, with the fields the SDK gives the addon (sdk/codec/kernels.ts): offsets
 * within the frame, the action of each block's mode and byte 1 of its header.
 */
function blockJobSeed(bytes: Uint8Array, header: TensorHeader, frameOffset: number, frameLength: number, blocks: Block[]): Uint8Array {
  const symbols = streamSymbolCount(header.encoding, header.dtype, header.elements);
  const seed = new ByteWriter().u8(OP.blockJob).u8(header.streams.length - 1);
  for (const { width, table } of header.streams) {
    seed.u8(width - 1).u8(table ? 1 : 0);
    if (table) writeTable(seed, table);
    seed.u32(symbols);
  }
  const used = blocks.slice(0, MAX_JOB_BLOCKS);
  seed.u8(used.length);
  for (const block of used) {
    seed
      .u8(block.stream)
      .u32(block.headerAt - frameOffset)
      .u32(block.headerAt - frameOffset + BLOCK_HEADER_SIZE)
      .u32(block.payload.length)
      .u8(BLOCK_MODES[block.header.mode])
      .u8(blockHeaderParam(block.header))
      .u32(block.header.count)
      .u32(block.outputOffset);
  }
  return seed.bytes(bytes.subarray(frameOffset, frameOffset + frameLength)).finish();
}

/** The first rows (at most the harness's limit) of an int-quant tensor, in the dequantise operation's format. */
function dequantizeSeed(header: TensorHeader, symbols: Uint8Array): Uint8Array {
  const q = header.quant!;
  const { rows, cols } = matrixShape(header.shape, header.elements);
  const usedRows = Math.min(rows, MAX_ROWS);
  const usedCols = Math.min(cols, MAX_COLS);
  const groups = q.groupSize === 0 ? 1 : Math.ceil(usedCols / q.groupSize);
  const allGroups = q.groupSize === 0 ? 1 : Math.ceil(cols / q.groupSize);
  const flags = (q.asymmetric ? 1 : 0) | (q.inputScale ? 2 : 0) | (q.groupSize === 0 ? 4 : 0);
  const seed = new ByteWriter()
    .u8(OP.dequantize)
    .u8(q.bits - 2)
    .u8(flags)
    .u32(Math.max(0, q.groupSize - 1))
    .u16(usedRows - 1)
    .u16(usedCols - 1)
    .u32(0)
    .u32(usedRows * usedCols - 1);
  for (let i = 0; i < usedRows; i++) for (let g = 0; g < groups; g++) seed.f32(q.deltas[i * allGroups + g]);
  if (q.zeroPoints) for (let i = 0; i < usedRows; i++) for (let g = 0; g < groups; g++) seed.u8(q.zeroPoints[i * allGroups + g]);
  if (q.inputScale) for (let j = 0; j < usedCols; j++) seed.f32(q.inputScale[j]);
  for (let i = 0; i < usedRows; i++) seed.bytes(symbols.subarray(i * cols, i * cols + usedCols));
  return seed.finish();
}

/**
 * An int-quant tensor as the weight-matrix operation's compressed matrix, with the fields
 * sdk/infer/linear-compressed.ts gives the addon: its frame and blocks as the file holds them
 * ("frame"), and its symbols for the harness to encode in the same modes ("encoded"). None when
 * the matrix is beyond the operation's limits.
 */
function weightSeeds(header: TensorHeader, frame: Uint8Array, blocks: Block[], symbols: Uint8Array, ordinal: number): Map<string, Uint8Array> {
  const seeds = new Map<string, Uint8Array>();
  const q = header.quant!;
  const { rows, cols } = matrixShape(header.shape, header.elements);
  const elements = rows * cols;
  if (rows > MAX_WEIGHT_ROWS || cols > MAX_WEIGHT_COLS || elements > MAX_LARGE_WEIGHT_ELEMENTS) return seeds;
  const flags = (q.asymmetric ? 1 : 0) | (q.inputScale ? 2 : 0) | (q.groupSize === 0 ? 4 : 0) | (elements > MAX_WEIGHT_ELEMENTS ? WEIGHT_LARGE : 0);
  // Group size field: 1 + value % cols, or with bit 31 1 + value % 2^24 (a group wider than a row).
  const groupField = q.groupSize === 0 ? 0 : q.groupSize <= cols ? q.groupSize - 1 : (0x80000000 | (q.groupSize - 1)) >>> 0;
  // log2 block byte: 12 + byte % 2, or with bit 7 12 + (byte & 0x7f) % 9.
  const log2Byte = header.log2Block <= 13 ? header.log2Block - 12 : 0x80 | (header.log2Block - 12);
  const { table } = header.streams[0];
  for (const encoded of [false, true]) {
    const seed = new ByteWriter()
      .u8(OP.weightProduct)
      .u8(q.bits - 2)
      .u8(flags | (encoded ? WEIGHT_ENCODE : 0))
      .u32(groupField)
      .u16(rows)
      .u16(cols)
      .u8(log2Byte);
    if (table) writeTable(seed, table);
    else seed.u8(0).u8(0).bytes(new Uint8Array(2 * 2 ** q.bits));
    // Inputs (1 to 5; a large matrix 3 or more, so that its products use the thread pool), their
    // seed and exponent span 8; no inconsistency, no corruption.
    seed.u8(elements > MAX_WEIGHT_ELEMENTS ? 2 + (ordinal % 3) : ordinal % 5).u32(ordinal + 1).u8(8).u8(0).u32(0).u32(0);
    for (const block of blocks) {
      seed.u8(BLOCK_MODES[block.header.mode]).u8(blockHeaderParam(block.header)).u32(block.headerAt + BLOCK_HEADER_SIZE).u32(block.payload.length);
    }
    for (const delta of q.deltas) seed.f32(delta);
    if (q.zeroPoints) seed.bytes(q.zeroPoints);
    if (q.inputScale) for (const s of q.inputScale) seed.f32(s);
    seeds.set(encoded ? "encoded" : "frame", seed.bytes(encoded ? symbols : frame).finish());
  }
  return seeds;
}

/** The weight-matrix seeds of every int-quant tensor of a file, by name. */
async function weightSeedsOf(bytes: Uint8Array, label: string): Promise<Map<string, Uint8Array>> {
  const seeds = new Map<string, Uint8Array>();
  const layout = await fileLayout(bytes);
  const reader = await QansReader.open(new MemorySource(bytes));
  for (const [t, tensor] of layout.tensors.entries()) {
    const header = decodeTensorHeader(bytes.subarray(tensor.headerOffset, tensor.headerOffset + tensor.headerLength), tensor.headerOffset);
    if (header.encoding !== "int-quant" || header.elements === 0) continue;
    const frame = bytes.subarray(tensor.headerOffset, tensor.headerOffset + tensor.entry.frameLength);
    // Block positions within the frame, as the addon takes them.
    const blocks = frameBlocks(bytes, header, tensor.blockHeaders, `${label} tensor ${t}`).map((block) => ({ ...block, headerAt: block.headerAt - tensor.headerOffset }));
    const { streams } = await reader.readStreams(tensor.entry.name);
    for (const [kind, seed] of weightSeeds(header, frame, blocks, streams[0], t)) seeds.set(`${label}.t${t}.weights.${kind}`, seed);
  }
  await reader.close();
  return seeds;
}

/**
 * Matrices of several blocks of 2^12 (the vectors' int-quant tensors have one block each): rows
 * that cross block boundaries, rows longer than a block (by one symbol too), blocks of 2^13, CONST
 * blocks (rows of zeros), RAW blocks (uniform values, which rANS does not make smaller), and a
 * large matrix whose products use the thread pool.
 */
async function multiBlockWeightFiles(): Promise<Map<string, Uint8Array>> {
  const random = new Random(8);
  const scales = (cols: number) => Float32Array.from({ length: cols }, () => 0.5 + random.next());
  const matrices: { name: string; shape: [number, number]; log2Block: number; options: QuantizeOptions; zeroRows?: number; uniform?: boolean }[] = [
    { name: "int4.g64", shape: [17, 700], log2Block: 12, options: { bits: 4, groupSize: 64 } },
    { name: "int8.asym.scaled", shape: [2, 6000], log2Block: 12, options: { bits: 8, asymmetric: true, inputScale: scales(6000) } },
    { name: "int3.zero-rows", shape: [12, 1024], log2Block: 12, options: { bits: 3 }, zeroRows: 8 },
    { name: "int2.g100.b13", shape: [3, 4000], log2Block: 13, options: { bits: 2, groupSize: 100 } },
    { name: "int6.uniform", shape: [9, 1300], log2Block: 12, options: { bits: 6 }, uniform: true },
    { name: "int4.row-of-block-plus-1", shape: [2, 4097], log2Block: 12, options: { bits: 4, groupSize: 1000 } },
    { name: "int5.g32.large", shape: [48, 1000], log2Block: 12, options: { bits: 5, groupSize: 32 } },
  ];
  const files = new Map<string, Uint8Array>();
  for (const [i, { name, shape, log2Block, options, zeroRows = 0, uniform = false }] of matrices.entries()) {
    const tensor = gaussianTensor(name, shape, 80 + i);
    const values = new Float32Array(tensor.data.buffer, tensor.data.byteOffset, shape[0] * shape[1]);
    if (uniform) for (let j = 0; j < values.length; j++) values[j] = random.next() * 2 - 1;
    values.fill(0, 0, zeroRows * shape[1]);
    files.set(`several-blocks.${name}`, await writeToMemory([{ tensor, encoding: { encoding: "int-quant", ...options } }], { log2Block }));
  }
  return files;
}

function vectorFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) return vectorFiles(path);
      return entry.endsWith(".qans") ? [path] : [];
    });
}

async function main(): Promise<void> {
  const out = process.argv[2] ?? DEFAULT_OUT;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  let count = 0;
  let bytes = 0;
  const write = (seeds: Map<string, Uint8Array>) => {
    for (const [name, seed] of seeds) {
      writeFileSync(join(out, name), seed);
      count++;
      bytes += seed.length;
    }
  };
  for (const file of vectorFiles(VECTORS)) {
    const label = relative(VECTORS, file).replaceAll("/", "_").replace(/\.qans$/, "");
    const fileBytes = readFileSync(file);
    write(await seedsOf(fileBytes, label));
    write(await weightSeedsOf(fileBytes, label));
  }
  for (const [label, fileBytes] of await multiBlockWeightFiles()) write(await weightSeedsOf(fileBytes, label));
  console.log(`${count} seeds (${bytes} bytes) from ${basename(VECTORS)} vectors and matrices of several blocks in ${out}`);
}

await main();
