import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { encodeBlocks, encodeBlocksAsync, type EncodedBlock } from "../codec/block-codec.js";
import { makeFreqTable, normalizeFrequencies } from "../codec/freq-table.js";
import { JOB_THRESHOLDS, kernels, nativeKernelSet, typescriptKernels, useKernels } from "../codec/kernels.js";
import { RANS_MAX_LANES, referenceLanes } from "../codec/rans.js";
import { QansError } from "../errors.js";
import { encodeBlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE } from "../format/constants.js";
import { blockHeaderOffset } from "../format/layout.js";
import { encodeTensorHeader, type StreamDescriptor, type TensorHeader } from "../format/tensor-header.js";
import { importModel } from "../import/detect.js";
import { MemorySink } from "../io/sink.js";
import { MemorySource } from "../io/source.js";
import { packModel, type PackMode } from "../pack.js";
import type { TensorData } from "../tensor/tensor.js";
import { QansReader } from "../reader.js";
import { decodeFrameStreams, decodeTensorStreams } from "../tensor/frame-decode.js";
import { BufferForwardReader } from "../io/forward-reader.js";
import { DEMO_MODEL_PATH, STORIES_PATH, gaussianTensor, sameBytes, sha256, writeToMemory } from "../testing/fixtures.js";
import { fileLayout, resealBlock, type FileLayout } from "../testing/patch.js";
import { codeOf } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { nativeAddon, type NativeDecodeJob } from "./addon.js";
import { JOB_PATHS, JOB_PATH_NAMES, type JobPath } from "../testing/job-paths.js";

/**
 * Whole-tensor decode and encode on the native thread pool (native/src/block_jobs.h) against the
 * block-by-block path: the same file bytes, the same decoded tensors, and for corrupt files the same
 * error (code and message), at several thread counts. JOB_THRESHOLDS is lowered or raised to put
 * every tensor through one path or the other. Skipped when the addon is not in use.
 */

const addon = nativeAddon();
const jobs = nativeKernelSet()?.blockJobs;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));


const THREAD_COUNTS = [1, 2, 3];

/** Runs with every tensor on `path`, and checks that the jobs were (or were not) used as it says. */
async function onPath<T>(path: JobPath, run: () => Promise<T>): Promise<T> {
  const saved = { decode: { ...JOB_THRESHOLDS.decode }, encode: { ...JOB_THRESHOLDS.encode } };
  Object.assign(JOB_THRESHOLDS.decode, JOB_PATHS[path]);
  Object.assign(JOB_THRESHOLDS.encode, JOB_PATHS[path]);
  const spies = jobs && [vi.spyOn(jobs, "decode"), vi.spyOn(jobs, "encode"), vi.spyOn(jobs, "encodeAsync")];
  try {
    const result = await run();
    if (spies && kernels() === nativeKernelSet()) {
      const [decode, encode, encodeAsync] = spies;
      const asyncDecodes = decode.mock.calls.map((call) => call[2]);
      if (path === "block by block") expect([asyncDecodes.length, encode.mock.calls.length, encodeAsync.mock.calls.length], path).toEqual([0, 0, 0]);
      else expect(asyncDecodes.length + encode.mock.calls.length + encodeAsync.mock.calls.length, path).toBeGreaterThan(0);
      if (path === "synchronous job") expect([asyncDecodes.includes(true), encodeAsync.mock.calls.length], path).toEqual([false, 0]);
      if (path === "asynchronous job") expect([asyncDecodes.includes(false), encode.mock.calls.length], path).toEqual([false, 0]);
    }
    return result;
  } finally {
    spies?.forEach((spy) => spy.mockRestore());
    Object.assign(JOB_THRESHOLDS.decode, saved.decode);
    Object.assign(JOB_THRESHOLDS.encode, saved.encode);
  }
}

/** What an action gave: a digest of its result, or its error's code and message. */
async function outcome(run: () => Promise<Uint8Array[]>): Promise<string> {
  try {
    return (await run()).map(sha256).join(",");
  } catch (error) {
    if (error instanceof QansError) return `${error.code}: ${error.message}`;
    throw error;
  }
}

async function readAll(file: Uint8Array): Promise<Uint8Array[]> {
  const reader = await QansReader.open(new MemorySource(file));
  const out: Uint8Array[] = [];
  for (const entry of reader.entries) out.push(...(await reader.readStreams(entry.name)).streams);
  return out;
}

describe.skipIf(!jobs)("whole-tensor jobs on the thread pool", () => {
  const initialThreads = addon?.threadCount();
  afterAll(() => {
    addon!.setThreadCount(initialThreads!);
  });

  describe("synthetic multi-block streams at several widths and k", () => {
    // 20 blocks of 2^12 (the last 5 symbols short): RANS, RAW and CONST blocks, every symbol in the table.
    const LOG2_BLOCK = 12;
    const SYMBOLS = 20 * 4096 - 5;

    function streamOf(random: Random, width: number, k: number): { stream: StreamDescriptor; symbols: Uint8Array } {
      const size = 1 << width;
      const weights = Array.from({ length: size }, (_, s) => 1 + Math.floor(1000 * Math.exp(-s) * (0.5 + random.next())));
      const draw = () => {
        let r = random.next() * weights.reduce((a, b) => a + b, 0);
        for (let s = 0; s < size; s++) if ((r -= weights[s]) < 0) return s;
        return size - 1;
      };
      const symbols = new Uint8Array(SYMBOLS);
      for (let j = 0; j * 4096 < SYMBOLS; j++) {
        const block = symbols.subarray(j * 4096, (j + 1) * 4096);
        if (j % 5 === 2) block.fill(random.int(size));
        else if (j % 5 === 4) for (let i = 0; i < block.length; i++) block[i] = random.int(size);
        else for (let i = 0; i < block.length; i++) block[i] = draw();
      }
      const counts = new Float64Array(size).fill(1);
      for (const s of symbols) counts[s]++;
      return { stream: { width, table: makeFreqTable(k, width, normalizeFrequencies(counts, k)) }, symbols };
    }

    /** A frame of these streams: tensor header, then each block's padding, header and payload. */
    function frameOf(header: TensorHeader, blocks: EncodedBlock[]): Uint8Array {
      const chunks = [encodeTensorHeader(header)];
      let position = chunks[0].length;
      for (const block of blocks) {
        const at = blockHeaderOffset(position);
        chunks.push(new Uint8Array(at - position), encodeBlockHeader(block, block.payload), block.payload);
        position = at + BLOCK_HEADER_SIZE + block.payload.length;
      }
      return Buffer.concat(chunks);
    }

    const cases: { label: string; header: TensorHeader; symbols: Uint8Array[] }[] = [];
    beforeAll(() => {
      const random = new Random(2024);
      const base = { elements: SYMBOLS, log2Block: LOG2_BLOCK };
      const quant = (bits: number) => ({ bits, asymmetric: false, groupSize: 0, scaleType: "F32" as const, deltas: new Float32Array([0.5]) });
      for (const [width, k] of [
        [2, 10],
        [3, 11],
        [4, 12],
        [5, 13],
        [7, 14],
        [8, 15],
        [8, 10],
      ]) {
        const { stream, symbols } = streamOf(random, width, k);
        cases.push({
          label: `int-quant, width ${width}, k ${k}`,
          header: { ...base, name: "t", dtype: "F32", encoding: "int-quant", shape: [SYMBOLS], streamCount: 1, streams: [stream], quant: quant(width) },
          symbols: [symbols],
        });
      }
      // Three streams (widths 5, 8, 3), one of them without a table.
      const planes = [streamOf(random, 5, 11), streamOf(random, 8, 14), streamOf(random, 3, 10)];
      planes[1].stream = { width: 8, table: null };
      cases.push({
        label: "float-planes F16, three streams, one without a table",
        header: { ...base, name: "p", dtype: "F16", encoding: "float-planes", shape: [SYMBOLS], streamCount: 3, streams: planes.map((p) => p.stream) },
        symbols: planes.map((p) => p.symbols),
      });
    });

    it.each(THREAD_COUNTS)("%d thread(s): the same blocks and frames as block by block and as TypeScript; the symbols back", async (threads) => {
      addon!.setThreadCount(threads);
      for (const { label, header, symbols } of cases) {
        const encode = (path: JobPath) => onPath(path, async () => (path === "synchronous job" ? encodeBlocks : encodeBlocksAsync)(symbols, header.streams, LOG2_BLOCK));
        const reference = await encode("block by block");
        expect(new Set(reference.map((b) => b.mode)), label).toEqual(new Set(header.streams.some((s) => s.table) ? ["RANS", "RAW", "CONST"] : ["RAW", "CONST"]));
        useKernels("typescript");
        try {
          expect(frameOf(header, encodeBlocks(symbols, header.streams, LOG2_BLOCK)), `${label}: TypeScript`).toEqual(frameOf(header, reference));
        } finally {
          useKernels("auto");
        }
        const frame = frameOf(header, reference);
        for (const path of ["synchronous job", "asynchronous job"] as const) {
          expect(sameBytes(frameOf(header, await encode(path)), frame), `${label}: ${path}`).toBe(true);
        }
        for (const path of JOB_PATH_NAMES) {
          const { streams } = await onPath(path, () => decodeFrameStreams(frame, 0, frame.length, undefined));
          streams.forEach((stream, s) => expect(sameBytes(stream, symbols[s]), `${label}: ${path}, stream ${s}`).toBe(true));
        }
      }
    });

    it.each(THREAD_COUNTS)("%d thread(s): blocks of every lane count, the same on every path and as TypeScript; the symbols back", async (threads) => {
      addon!.setThreadCount(threads);
      const random = new Random(15);
      const log2Block = 15;
      const seen = new Set<number>();
      // Lengths whose (last) block the reference codes on 1, 2, 4, 8, 16 and 32 lanes (spec §15 step 4).
      for (const length of [1500, 3000, 5000, 9000, 20000, 2 ** 15 + 20000, 3 * 2 ** 15 + 1]) {
        const symbols = Uint8Array.from({ length }, () => Math.min(15, Math.floor(-Math.log2(1 - random.next()))));
        const counts = new Float64Array(16).fill(1);
        for (const s of symbols) counts[s]++;
        const stream: StreamDescriptor = { width: 4, table: makeFreqTable(12, 4, normalizeFrequencies(counts, 12)) };
        const quant = { bits: 4, asymmetric: false, groupSize: 0, scaleType: "F32" as const, deltas: new Float32Array([0.5]) };
        const header: TensorHeader = { name: "l", dtype: "F32", encoding: "int-quant", shape: [length], elements: length, log2Block, streamCount: 1, streams: [stream], quant };
        const label = `${length} symbols`;
        const encode = (path: JobPath) => onPath(path, async () => (path === "synchronous job" ? encodeBlocks : encodeBlocksAsync)([symbols], [stream], log2Block));
        const reference = await encode("block by block");
        // Every block RANS but a last one of one symbol (CONST).
        for (const block of reference) {
          expect(block.mode, label).toBe(block.count > 1 ? "RANS" : "CONST");
          expect(block.lanes, label).toBe(block.mode === "RANS" ? referenceLanes(block.count) : RANS_MAX_LANES);
          if (block.mode === "RANS") seen.add(block.lanes);
        }
        useKernels("typescript");
        try {
          expect(frameOf(header, encodeBlocks([symbols], [stream], log2Block)), `${label}: TypeScript`).toEqual(frameOf(header, reference));
        } finally {
          useKernels("auto");
        }
        const frame = frameOf(header, reference);
        for (const path of ["synchronous job", "asynchronous job"] as const) {
          const blocks = await encode(path);
          expect(blocks.map((b) => b.lanes), `${label}: ${path}`).toEqual(reference.map((b) => b.lanes));
          expect(sameBytes(frameOf(header, blocks), frame), `${label}: ${path}`).toBe(true);
        }
        for (const path of JOB_PATH_NAMES) {
          const { streams } = await onPath(path, () => decodeFrameStreams(frame, 0, frame.length, undefined));
          expect(sameBytes(streams[0], symbols), `${label}: ${path}`).toBe(true);
        }
      }
      expect([...seen].sort((a, b) => a - b)).toEqual([1, 2, 4, 8, 16, 32]);
    });

    it("a symbol the table lacks fails the same way on every path", async () => {
      const { header, symbols } = cases[2];
      expect(header.streams[0].width).toBe(4);
      const bad = symbols[0].map((s) => Math.min(s, 14));
      const table = makeFreqTable(12, 4, normalizeFrequencies([5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0], 12));
      bad[9 * 4096 + 7] = 15;
      const results = [];
      for (const path of JOB_PATH_NAMES) {
        results.push(await outcome(() => onPath(path, async () => (await encodeBlocksAsync([bad], [{ width: 4, table }], LOG2_BLOCK)).map((b) => b.payload))));
      }
      expect(results[0]).toMatch(/^INVALID_ARGUMENT/);
      expect(results).toEqual([results[0], results[0], results[0]]);
    });
  });

  describe("real models", () => {
    describe.each([
      ["stories260K", STORIES_PATH],
      ["the demo model", DEMO_MODEL_PATH],
    ])("%s", (_, path) => {
      it.each(["lossless", "int8", "int4"] as const)("%s: the same file bytes and tensors on every path", async (mode: PackMode) => {
        const model = await importModel(path);
        const pack = async () => {
          const sink = new MemorySink();
          await packModel(model, sink, { mode, groupSize: mode === "int4" ? 32 : 0 });
          return sink.bytes();
        };
        addon!.setThreadCount(2);
        const reference = await onPath("block by block", pack);
        const decoded = await onPath("block by block", () => readAll(reference));
        for (const threads of [1, 2]) {
          addon!.setThreadCount(threads);
          for (const p of ["synchronous job", "asynchronous job"] as const) {
            expect(sameBytes(await onPath(p, pack), reference), `file bytes: ${p}, ${threads} thread(s)`).toBe(true);
            const streams = await onPath(p, () => readAll(reference));
            expect(streams.length).toBe(decoded.length);
            streams.forEach((stream, i) => expect(sameBytes(stream, decoded[i]), `stream ${i}: ${p}, ${threads} thread(s)`).toBe(true));
          }
        }
        if (mode === "lossless") {
          const reader = await QansReader.open(new MemorySource(reference));
          for (const tensor of model.tensors) {
            const back = await onPath("asynchronous job", () => reader.readTensor(tensor.name));
            expect(sameBytes(back.data, tensor.data), tensor.name).toBe(true);
          }
        }
      });
    });
  });

  describe("corrupt files: the first failing block in order wins, as block by block", () => {
    let file: Uint8Array;
    let layout: FileLayout;
    const random = new Random(99);
    const laplacian = new Uint8Array(20 * 4096);
    beforeAll(async () => {
      for (let j = 0; j < 20; j++) {
        const block = laplacian.subarray(j * 4096, (j + 1) * 4096);
        if (j % 7 === 5) block.fill(3);
        else if (j % 7 === 6) for (let i = 0; i < block.length; i++) block[i] = random.int(256);
        else for (let i = 0; i < block.length; i++) block[i] = Math.round(random.laplacian(4)) & 0xff;
      }
      file = await writeToMemory(
        [
          { tensor: { name: "mixed", dtype: "I8", shape: [laplacian.length], data: laplacian }, encoding: { encoding: "raw" } },
          { tensor: gaussianTensor("planes", [20 * 4096 - 3], 5, "F16"), encoding: { encoding: "float-planes" } },
          // Symbols uniform over all 8 values: no table pays, so RAW blocks, and 19 x 4096 + 3057
          // symbols of 3 bits leave padding bits in the last.
          { tensor: uniformTensor("int3", [15, 5119], random), encoding: { encoding: "int-quant", bits: 3, asymmetric: true } },
        ],
        { log2Block: 12 },
      );
      layout = await fileLayout(file);
    });

    /** Values j / 7 for j uniform in 0..7: asymmetric 3-bit quantisation gives symbol j. */
    function uniformTensor(name: string, shape: number[], rng: Random): TensorData {
      const values = new Float32Array(shape[0] * shape[1]).map(() => rng.int(8) / 7);
      return { name, dtype: "F32", shape, data: new Uint8Array(values.buffer) };
    }

    const dv = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    /** Where the structure before block `block` of tensor `tensor` ends. */
    const endBefore = (tensor: number, block: number) => {
      const t = layout.tensors[tensor];
      return block === 0 ? t.headerOffset + t.headerLength : t.blockHeaders[block - 1] + BLOCK_HEADER_SIZE + t.entry.payloadLengths[block - 1];
    };
    const modeOf = (tensor: number, block: number) => file[layout.tensors[tensor].blockHeaders[block]];

    /** The outcome of reading tensor `tensor` on every path and thread count; all must agree. */
    async function expectSameEverywhere(bytes: Uint8Array, tensor: number): Promise<string> {
      const name = layout.tensors[tensor].entry.name;
      const read = async () => (await (await QansReader.open(new MemorySource(bytes))).readStreams(name)).streams;
      const reference = await onPath("block by block", () => outcome(read));
      for (const threads of THREAD_COUNTS) {
        addon!.setThreadCount(threads);
        for (const path of ["synchronous job", "asynchronous job"] as const) {
          expect(await onPath(path, () => outcome(read)), `${path}, ${threads} thread(s)`).toBe(reference);
        }
      }
      return reference;
    }

    it("the fixture has RANS, RAW and CONST blocks in several streams", () => {
      const modes = new Set(layout.tensors.flatMap((t, i) => t.blockHeaders.map((_, b) => modeOf(i, b))));
      expect([...modes].sort()).toEqual([0, 1, 2]);
      expect(layout.tensors[1].blockHeaders.length).toBe(3 * 20);
    });

    it("block 3 with a wrong checksum and block 1 with a re-sealed bad rANS state: block 1's error", async () => {
      const bytes = file.slice();
      const [, one, , three] = layout.tensors[0].blockHeaders;
      expect([modeOf(0, 1), modeOf(0, 3)]).toEqual([2, 2]);
      bytes[three + BLOCK_HEADER_SIZE + 200] ^= 1;
      dv(bytes).setUint32(one + BLOCK_HEADER_SIZE + 8, 100, true);
      resealBlock(bytes, one);
      expect(await expectSameEverywhere(bytes, 0)).toMatch(/^BAD_FINAL_STATE: tensor "mixed" stream 0 block 1: /);
      // The other way round, the checksum comes first.
      const swapped = file.slice();
      swapped[one + BLOCK_HEADER_SIZE + 200] ^= 1;
      dv(swapped).setUint32(three + BLOCK_HEADER_SIZE + 8, 100, true);
      resealBlock(swapped, three);
      expect(await expectSameEverywhere(swapped, 0)).toMatch(/^CHECKSUM_MISMATCH: tensor "mixed" stream 0 block 1: /);
    });

    it("within a block: checksum, then fields, then decode; a later block cannot be located: the earlier error", async () => {
      const headers = layout.tensors[1].blockHeaders;
      // Stream 1 of block 2 (ordinal 7): a bad mode, not re-sealed, so its checksum fails first.
      let bytes = file.slice();
      bytes[headers[7]] = 9;
      expect(await expectSameEverywhere(bytes, 1)).toMatch(/^CHECKSUM_MISMATCH: tensor "planes" stream 1 block 2: /);
      resealBlock(bytes, headers[7]);
      expect(await expectSameEverywhere(bytes, 1)).toMatch(/^BAD_BLOCK: tensor "planes" stream 1 block 2: unknown block mode 9/);
      // A payload length the index disagrees with at ordinal 20, and a reserved byte at ordinal 11.
      bytes = file.slice();
      dv(bytes).setUint32(headers[20] + 8, dv(bytes).getUint32(headers[20] + 8, true) + 2, true);
      expect(await expectSameEverywhere(bytes, 1)).toMatch(/^INDEX_MISMATCH: tensor "planes" stream 2 block 6: /);
      bytes[headers[11] + 2] = 1;
      resealBlock(bytes, headers[11]);
      expect(await expectSameEverywhere(bytes, 1)).toMatch(/^RESERVED_BITS: tensor "planes" stream 2 block 3: /);
      // Non-zero padding before a block after a block whose count is wrong.
      bytes = file.slice();
      const gap = headers.findIndex((at, i) => i > 4 && at > endBefore(1, i));
      expect(gap).toBeGreaterThan(4);
      bytes[headers[gap] - 1] = 1;
      expect(await expectSameEverywhere(bytes, 1)).toMatch(/^NONZERO_PADDING: /);
      dv(bytes).setUint32(headers[gap - 2] + 4, 4095, true);
      resealBlock(bytes, headers[gap - 2]);
      expect(await expectSameEverywhere(bytes, 1)).toMatch(/^BAD_BLOCK: .* block holds 4095 symbols/);
    });

    it("RAW padding bits in a last, partial block", async () => {
      const t = layout.tensors[2];
      const last = t.blockHeaders.length - 1;
      expect([last, modeOf(2, last), (3 * 3057) % 8]).toEqual([18, 0, 3]);
      const bytes = file.slice();
      const end = t.blockHeaders[last] + BLOCK_HEADER_SIZE + t.entry.payloadLengths[last] - 1;
      bytes[end] |= 0x80;
      resealBlock(bytes, t.blockHeaders[last]);
      expect(await expectSameEverywhere(bytes, 2)).toMatch(/^NONZERO_PADDING: tensor "int3" stream 0 block 18: /);
    });

    it("random corruption of one to three blocks gives the same outcome on every path", async () => {
      const rng = new Random(7);
      const seen = new Set<string>();
      for (let trial = 0; trial < 40; trial++) {
        const tensor = rng.int(3);
        const t = layout.tensors[tensor];
        const bytes = file.slice();
        for (let n = 1 + rng.int(3); n > 0; n--) {
          const block = rng.int(t.blockHeaders.length);
          const at = t.blockHeaders[block];
          const length = t.entry.payloadLengths[block];
          const kind = rng.int(6);
          if (kind === 0 && length > 0) bytes[at + BLOCK_HEADER_SIZE + rng.int(length)] ^= 1 << rng.int(8);
          else if (kind === 1) bytes[at + rng.int(BLOCK_HEADER_SIZE)] ^= 1 << rng.int(8);
          else if (kind === 2 && file[at] === 2) dv(bytes).setUint32(at + BLOCK_HEADER_SIZE + 4 * rng.int(RANS_MAX_LANES >> file[at + 1]), rng.uint32(), true);
          else if (kind === 3) bytes[at + 4 * rng.int(3)] ^= 1 << rng.int(3);
          else if (kind === 4 && at > endBefore(tensor, block)) bytes[at - 1] = 1;
          else if (length > 2) bytes[at + BLOCK_HEADER_SIZE + length - 1 - rng.int(2)] ^= 0xff;
          if (rng.next() < 0.7) resealBlock(bytes, at);
        }
        seen.add((await expectSameEverywhere(bytes, tensor)).split(":")[0]);
      }
      expect(seen.size).toBeGreaterThanOrEqual(4);
    });
  });

  describe("the binding", () => {
    it("checks every field of a job, never touching memory outside it", () => {
      const a = addon!;
      const frame = new Uint8Array(256);
      const out = new Uint8Array(64);
      const table = a.makeDecodeTable(new Uint32Array([512, 512]), 10);
      const block = (fields: number[]): NativeDecodeJob => ({ frame, streams: [{ table, width: 1, out }], blocks: Float64Array.from(fields) });
      const bad: [string, () => unknown][] = [
        ["no job", () => a.decodeBlocks(undefined as never)],
        ["streams not an array", () => a.decodeBlocks({ frame, streams: {} as never, blocks: new Float64Array(0) })],
        ["no streams", () => a.decodeBlocks({ frame, streams: [], blocks: new Float64Array(0) })],
        ["a table that is not one", () => a.decodeBlocks({ frame, streams: [{ table: {} as never, width: 1, out }], blocks: new Float64Array(0) })],
        ["width 9", () => a.decodeBlocks({ frame, streams: [{ table: null, width: 9, out }], blocks: new Float64Array(0) })],
        ["blocks as an array", () => a.decodeBlocks({ frame, streams: [{ table, width: 1, out }], blocks: [0] as never })],
        ["7 fields", () => a.decodeBlocks(block([0, 0, 16, 0, 1, 0, 8]))],
        ["stream 1", () => a.decodeBlocks(block([1, 0, 16, 0, 1, 0, 8, 0]))],
        ["header past the frame", () => a.decodeBlocks(block([0, 250, 16, 0, 3, 0, 8, 0]))],
        ["payload past the frame", () => a.decodeBlocks(block([0, 0, 16, 241, 0, 0, 8, 0]))],
        ["output past the buffer", () => a.decodeBlocks(block([0, 0, 16, 1, 1, 0, 8, 60]))],
        ["action 4", () => a.decodeBlocks(block([0, 0, 16, 0, 4, 0, 8, 0]))],
        ["a negative offset", () => a.decodeBlocks(block([0, -16, 16, 0, 1, 0, 8, 0]))],
        ["a fractional count", () => a.decodeBlocks(block([0, 0, 16, 0, 1, 0, 8.5, 0]))],
        ["RANS without a table", () => a.decodeBlocks({ frame, streams: [{ table: null, width: 1, out }], blocks: Float64Array.from([0, 0, 16, 128, 2, 0, 8, 0]) })],
        ["RANS lane code 6", () => a.decodeBlocks(block([0, 0, 16, 4, 2, 6, 8, 0]))],
        ["RANS lane code 255", () => a.decodeBlocks(block([0, 0, 16, 4, 2, 255, 8, 0]))],
        ["header byte 1 of 256", () => a.decodeBlocks(block([0, 0, 16, 0, 1, 256, 8, 0]))],
        ["an async job without a callback", () => a.decodeBlocksAsync(block([0, 0, 16, 0, 1, 0, 8, 0]), undefined as never)],
        ["log2Block 11", () => a.encodeBlocks({ log2Block: 11, streams: [{ symbols: out, width: 8, freqs: null, k: 0 }] })],
        ["streams of different lengths", () => a.encodeBlocks({ log2Block: 12, streams: [{ symbols: out, width: 8, freqs: null, k: 0 }, { symbols: frame, width: 8, freqs: null, k: 0 }] })],
        ["a table of 300 symbols", () => a.encodeBlocks({ log2Block: 12, streams: [{ symbols: out, width: 8, freqs: new Uint32Array(300), k: 10 }] })],
        ["setThreadCount(0)", () => a.setThreadCount(0)],
      ];
      for (const [what, call] of bad) expect(call, what).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
      expect(() => a.encodeBlocks({ log2Block: 12, streams: [{ symbols: out, width: 8, freqs: new Uint32Array([512, 511]), k: 10 }] })).toThrow(
        expect.objectContaining({ code: "BAD_FREQ_TABLE" }),
      );
      // A checksum-only block of an empty payload, and a CONST block with a valid checksum.
      frame.fill(0);
      new DataView(frame.buffer).setUint32(44, a.crc32c(frame.subarray(32, 44), 0), true);
      const result = a.decodeBlocks(block([0, 0, 16, 0, 3, 0, 8, 0, 0, 32, 48, 0, 1, 1, 64, 0]));
      expect(result.failures).toEqual([]);
      expect(out.every((s) => s === 1)).toBe(true);
      expect(Array.from(result.crcs)).toEqual([a.crc32c(frame.subarray(0, 12), 0), a.crc32c(frame.subarray(32, 44), 0)]);
    });

    it("decodes a RANS block on the lanes of its lane code, and encoding gives header byte 1 per block", () => {
      const a = addon!;
      const freqs = new Uint32Array([900, 124]);
      const table = a.makeDecodeTable(freqs, 10);
      const random = new Random(5);
      const symbols = Uint8Array.from({ length: 40 }, () => (random.next() < 0.1 ? 1 : 0));
      const tsTable = makeFreqTable(10, 1, [900, 124]);
      for (let code = 0; code <= 5; code++) {
        const payload = a.ransEncode(symbols, freqs, 10, RANS_MAX_LANES >> code);
        expect(payload.length).toBeGreaterThanOrEqual(4 * (RANS_MAX_LANES >> code));
        const frame = new Uint8Array(16 + payload.length);
        frame.set(payload, 16);
        frame.set([2, code], 0);
        const view = new DataView(frame.buffer);
        view.setUint32(4, symbols.length, true);
        view.setUint32(8, payload.length, true);
        view.setUint32(12, a.crc32c(frame.subarray(16), a.crc32c(frame.subarray(0, 12), 0)), true);
        for (let read = 0; read <= 5; read++) {
          const out = new Uint8Array(symbols.length);
          const result = a.decodeBlocks({ frame, streams: [{ table, width: 1, out }], blocks: Float64Array.from([0, 0, 16, payload.length, 2, read, symbols.length, 0]) });
          const expected = codeOf(() => typescriptKernels.ransDecoder(tsTable).decode(payload, symbols.length, RANS_MAX_LANES >> read, new Uint8Array(symbols.length), "t"));
          expect(result.failures.map((f) => (f.error as { code?: string }).code ?? "?"), `lane code ${code} read as ${read}`).toEqual(
            expected === "no error" ? [] : [expected],
          );
          if (read === code) expect(sameBytes(out, symbols)).toBe(true);
        }
      }
      // Blocks of 4096 symbols (4 lanes), a CONST block, a RAW one and a last one of 904 symbols (1 lane).
      const long = Uint8Array.from({ length: 3 * 4096 + 904 }, () => (random.next() < 0.1 ? 1 : 0));
      long.fill(1, 4096, 2 * 4096);
      for (let i = 2 * 4096; i < 3 * 4096; i++) long[i] = i & 1;
      const result = a.encodeBlocks({ log2Block: 12, streams: [{ symbols: long, width: 1, freqs, k: 10 }] });
      expect(Array.from(result.modes)).toEqual([2, 1, 0, 2]);
      expect(Array.from(result.headerParams)).toEqual([3, 1, 0, 5]);
      expect(result.payloads.map((p) => p.length)).toEqual([expect.any(Number), 0, 512, expect.any(Number)]);
    });

    it("setThreadCount clamps to 1..64 and the count is what nativeStatus reports", () => {
      const a = addon!;
      expect(a.setThreadCount(1000)).toBe(64);
      expect(a.setThreadCount(3)).toBe(3);
      expect(a.threadCount()).toBe(3);
      a.setThreadCount(initialThreads!);
    });

    it("an asynchronous job keeps its memory alive when the caller detaches the buffers", async () => {
      const a = addon!;
      const symbols = new Uint8Array(1 << 16).map((_, i) => (i * 7) & 3);
      const job = { log2Block: 12, streams: [{ symbols, width: 2, freqs: null, k: 0 }] };
      const pending = new Promise<{ payloads: Uint8Array[] }>((resolve, reject) => a.encodeBlocksAsync(job, (e, r) => (e ? reject(e) : resolve(r!))));
      const expected = a.encodeBlocks({ ...job, streams: [{ ...job.streams[0], symbols: symbols.slice() }] });
      structuredClone(symbols.buffer, { transfer: [symbols.buffer] });
      expect(symbols.length).toBe(0);
      const result = await pending;
      expect(Buffer.concat(result.payloads)).toEqual(Buffer.concat(expected.payloads));
    });

    it("QANS_THREADS sets the count at load time and a bad value is reported", () => {
      const run = (value: string) => {
        const code = `
          import { nativeStatus } from "./sdk/native/addon.ts";
          const warnings = [];
          process.on("warning", (w) => warnings.push(w.code));
          const threads = nativeStatus().threads;
          await new Promise((r) => setImmediate(r));
          console.log(JSON.stringify({ threads, warnings }));`;
        const env: NodeJS.ProcessEnv = { ...process.env, QANS_THREADS: value };
        delete env.QANS_NATIVE;
        const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, env, encoding: "utf8" });
        expect(result.status, result.stderr).toBe(0);
        return JSON.parse(result.stdout.trim().split("\n").pop()!) as { threads: number; warnings: string[] };
      };
      expect(run("1")).toEqual({ threads: 1, warnings: [] });
      expect(run("5")).toEqual({ threads: 5, warnings: [] });
      const fallback = run("lots");
      expect(fallback.warnings).toEqual(["QANS_THREADS_IGNORED"]);
      expect(fallback.threads).toBeGreaterThanOrEqual(1);
      expect(fallback.threads).toBeLessThanOrEqual(8);
    });
  });
});

describe("decodeFrameStreams without the native codec", () => {
  it("takes the block-by-block path and gives decodeTensorStreams' result", async () => {
    const file = await writeToMemory([{ tensor: gaussianTensor("g", [300, 1000], 3), encoding: { encoding: "int-quant", bits: 5 } }], { log2Block: 12 });
    const reader = await QansReader.open(new MemorySource(file));
    const entry = reader.entry("g");
    const frame = file.subarray(entry.frameOffset, entry.frameOffset + entry.frameLength);
    useKernels("typescript");
    try {
      const viaFrame = await onPath("asynchronous job", () => decodeFrameStreams(frame, entry.frameOffset, file.length, entry));
      const viaReader = await decodeTensorStreams(new BufferForwardReader(frame, entry.frameOffset), entry.frameOffset, file.length, entry);
      expect(sameBytes(viaFrame.streams[0], viaReader.streams[0])).toBe(true);
      expect(viaFrame.frameEnd).toBe(viaReader.frameEnd);
    } finally {
      useKernels("auto");
    }
  });
});
