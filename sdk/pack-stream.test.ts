import { createReadStream, existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { JOB_THRESHOLDS, nativeKernelSet, useKernels } from "./codec/kernels.js";
import { writeSafetensors } from "./export/safetensors.js";
import { importModel, openModelTensors } from "./import/detect.js";
import { importSafetensors, openSafetensorsFile } from "./import/safetensors.js";
import { readSafetensorsStream } from "./import/safetensors-stream.js";
import { MemorySink } from "./io/sink.js";
import { StreamSink } from "./io/stream-sink.js";
import { encodeLargeTensorFrame } from "./tensor/windowed-frame.js";
import { packModel, packStream, packStreamToFile, type PackMode, type PackOptions } from "./pack.js";
import { QansReader } from "./reader.js";
import { MemorySource } from "./io/source.js";
import { concatBytes } from "./format/bytes.js";
import { fromFloat32 } from "./tensor/convert.js";
import { encodeTensorFrame, type EncodedFrame, type TensorEncoding } from "./tensor/frame-encode.js";
import { dtypeSize } from "./tensor/dtype.js";
import { elementCount, isTensorReader, type ImportedModel, type TensorData, type TensorReader } from "./tensor/tensor.js";
import { STORIES_PATH, gaussianTensor, sameBytes, specialFloatTensor } from "./testing/fixtures.js";
import { codeOfAsync } from "./testing/outcome.js";
import { Random } from "./testing/random.js";
import { useTempDir } from "./testing/temp-dir.js";

const dir = useTempDir("qans-pack-stream-");

const MODES: [PackMode, PackOptions][] = [
  ["lossless", {}],
  ["int8", {}],
  ["int4", { groupSize: 32 }],
  ["int4", { groupSize: 32, asymmetric: true }],
];

async function viaModel(model: ImportedModel, options: PackOptions): Promise<Uint8Array> {
  const sink = new MemorySink();
  await packModel(model, sink, options);
  return sink.bytes();
}

/** The tensors one at a time, each handed out only when asked for, as a stream would. */
async function* oneByOne(tensors: TensorData[]): AsyncGenerator<TensorData> {
  for (const tensor of tensors) yield { ...tensor, shape: [...tensor.shape], data: tensor.data.slice() };
}

const frameBytes = (frame: EncodedFrame) => concatBytes(frame.chunks);

describe("packStream", () => {
  let stories: ImportedModel;
  let storiesSafetensors: string;

  beforeAll(async () => {
    stories = await importModel(STORIES_PATH);
    storiesSafetensors = join(dir(), "stories260K.safetensors");
    await writeSafetensors(storiesSafetensors, stories.tensors, stories.metadata);
  });

  it.each(MODES)("gives packModel's bytes for stories260K in %s mode %o", async (mode, extra) => {
    const options = { mode, ...extra };
    const expected = await viaModel(stories, options);
    const sink = new MemorySink();
    const result = await packStream(oneByOne(stories.tensors), stories, sink, options);
    expect(sameBytes(sink.bytes(), expected)).toBe(true);
    expect(result).toEqual({ bytes: expected.length, tensors: 47, inputBytes: stories.tensors.reduce((sum, t) => sum + t.data.length, 0) });
  });

  it.each(MODES)("packs a safetensors stream as packModel packs the imported file, %s mode %o", async (mode, extra) => {
    const options = { mode, ...extra };
    const expected = await viaModel(await importSafetensors(storiesSafetensors), options);
    const stream = await readSafetensorsStream(createReadStream(storiesSafetensors, { highWaterMark: 7000 }));
    const sink = new MemorySink();
    await packStream(stream.tensors, { metadata: stream.header.metadata }, sink, options);
    expect(sameBytes(sink.bytes(), expected)).toBe(true);
  });

  it.each(MODES)("packs a safetensors file read a tensor at a time, large ones through readers, as packModel packs it, %s mode %o", async (mode, extra) => {
    const options = { mode, ...extra };
    const expected = await viaModel(await importSafetensors(storiesSafetensors), options);
    const file = await openSafetensorsFile(storiesSafetensors, { wholeBytes: 4096 });
    try {
      const seen: boolean[] = [];
      async function* watched() {
        for await (const tensor of file.tensors()) {
          seen.push(isTensorReader(tensor));
          yield tensor;
        }
      }
      const sink = new MemorySink();
      const result = await packStream(watched(), file, sink, { ...options, tensorCount: file.count });
      expect(sameBytes(sink.bytes(), expected)).toBe(true);
      expect(result.inputBytes).toBe(stories.tensors.reduce((sum, t) => sum + t.data.length, 0));
      // The embedding and the layers' matrices come as readers, the norms whole.
      expect(seen.filter(Boolean).length).toBe(stories.tensors.filter((t) => t.data.length > 4096).length);
      expect(seen.some((reader) => !reader)).toBe(true);
    } finally {
      await file.close();
    }
  });

  it("packs sharded safetensors (an index and its files) through openModelTensors as packModel packs the imported model", async () => {
    const folder = join(dir(), "sharded-st");
    await mkdir(folder, { recursive: true });
    const half = 20;
    const parts = [stories.tensors.slice(0, half), stories.tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of parts.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(join(folder, file), part, {});
      for (const t of part) weightMap[t.name] = file;
    }
    await writeFile(join(folder, "model.safetensors.index.json"), JSON.stringify({ metadata: { origin: "test" }, weight_map: weightMap }));
    const expected = await viaModel(await importModel(folder), { mode: "int8" });
    const model = await openModelTensors(folder, { wholeBytes: 4096 });
    try {
      expect(model.count).toBe(stories.tensors.length);
      const sink = new MemorySink();
      await packStream(model.tensors(), model, sink, { mode: "int8", tensorCount: model.count });
      expect(sameBytes(sink.bytes(), expected)).toBe(true);
    } finally {
      await model.close();
    }
  });

  it("a tensor reader over a safetensors file refuses bytes outside its tensor", async () => {
    const file = await openSafetensorsFile(storiesSafetensors, { wholeBytes: 0 });
    try {
      const first = (await file.tensors().next()).value as TensorReader;
      const bytes = elementCount(first.shape) * dtypeSize(first.dtype);
      expect((await first.readBytes(bytes - 4, 4)).length).toBe(4);
      expect(await codeOfAsync(first.readBytes(bytes - 4, 5))).toBe("INVALID_ARGUMENT");
      expect(await codeOfAsync(first.readBytes(-1, 2))).toBe("INVALID_ARGUMENT");
    } finally {
      await file.close();
    }
  });

  it("gives the same bytes when every tensor takes the large-tensor path", async () => {
    for (const [mode, extra] of MODES) {
      const options = { mode, ...extra, log2Block: 12 };
      const expected = await viaModel(stories, options);
      const sink = new MemorySink();
      await packStream(oneByOne(stories.tensors), stories, sink, { ...options, largeTensorBytes: 0 });
      expect([mode, extra, sameBytes(sink.bytes(), expected)]).toEqual([mode, extra, true]);
    }
  });

  it("writes each tensor before asking for the next, and reports progress", async () => {
    const sink = new MemorySink();
    const written: number[] = [];
    const progress: [number, number, string][] = [];
    const tensors = stories.tensors.slice(0, 5);
    async function* watched() {
      for (const tensor of tensors) {
        written.push(sink.bytes().length);
        yield tensor;
      }
    }
    await packStream(watched(), stories, sink, { onTensor: (done, total, name) => progress.push([done, total, name]) });
    // Asked for tensor i + 1 only once tensor i's frame was in the sink.
    for (let i = 1; i < written.length; i++) expect(written[i]).toBeGreaterThan(written[i - 1]);
    expect(progress).toEqual(tensors.map((t, i) => [i + 1, 0, t.name]));
    const counted: number[] = [];
    await packStream(watched(), stories, new MemorySink(), { tensorCount: 5, onTensor: (_, total) => counted.push(total) });
    expect(counted).toEqual([5, 5, 5, 5, 5]);
  });

  it("writes a file that reads back, atomically: a failing source leaves nothing behind", async () => {
    const path = join(dir(), "streamed.qans");
    const result = await packStreamToFile(oneByOne(stories.tensors), stories, path, { mode: "int8" });
    const bytes = await readFile(path);
    expect(result.bytes).toBe(bytes.length);
    expect(sameBytes(bytes, await viaModel(stories, { mode: "int8" }))).toBe(true);
    const reader = await QansReader.open(new MemorySource(bytes));
    // Vectors stay lossless in int modes.
    const norm = stories.tensors.find((t) => t.shape.length === 1)!;
    expect((await reader.readTensor(norm.name)).data).toEqual(norm.data);
    await reader.close();

    async function* failing() {
      yield stories.tensors[0];
      throw new Error("source went away");
    }
    const failed = join(dir(), "failed.qans");
    await expect(packStreamToFile(failing(), stories, failed)).rejects.toThrow(/source went away/);
    expect(existsSync(failed)).toBe(false);
    expect((await readdir(dir())).filter((name) => name.includes("failed"))).toEqual([]);
  });

  it("rejects what is not a tensor and a bad largeTensorBytes", async () => {
    expect(await codeOfAsync(() => packStream([{ name: "x" } as TensorData], stories, new MemorySink()))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => packStream([null as unknown as TensorData], stories, new MemorySink()))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => packStream([], stories, new MemorySink(), { largeTensorBytes: -1 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => packStream([], stories, new MemorySink(), { largeTensorBytes: Number.NaN }))).toBe("INVALID_ARGUMENT");
  });

  it("passes on a failing sink's IO_ERROR", async () => {
    let writes = 0;
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        callback(++writes > 2 ? new Error("no space left") : null);
      },
    });
    const sink = new StreamSink(stream, { bufferSize: 0 });
    const packing = (async () => {
      await packStream(oneByOne(stories.tensors), stories, sink);
      await sink.end();
    })();
    expect(await codeOfAsync(packing)).toBe("IO_ERROR");
  });
});

describe("encodeLargeTensorFrame", () => {
  const saved = { ...JOB_THRESHOLDS.encode };
  afterEach(() => {
    Object.assign(JOB_THRESHOLDS.encode, saved);
    useKernels("auto");
  });

  /** Rows of very different ranges: some need F32 scales, and so the whole tensor does. */
  function mixedScaleTensor(rows: number, cols: number): TensorData {
    const random = new Random(11);
    const values = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const scale = r % 37 === 5 ? 1e9 : 0.02;
      for (let c = 0; c < cols; c++) values[r * cols + c] = random.gaussian() * scale;
    }
    return { name: "mixed", dtype: "F32", shape: [rows, cols], data: fromFloat32("F32", values) };
  }

  function zeroRowsTensor(): TensorData {
    const tensor = gaussianTensor("zeros", [300, 50], 4, "BF16");
    tensor.data.fill(0, 0, 100 * 50 * 2);
    return tensor;
  }

  const CASES: [string, TensorData, TensorEncoding][] = [
    ["F32 planes", gaussianTensor("f32", [333, 97], 1, "F32"), { encoding: "float-planes" }],
    ["F16 planes", gaussianTensor("f16", [40_000], 2, "F16"), { encoding: "float-planes" }],
    ["BF16 planes", gaussianTensor("bf16", [7, 11, 123], 3, "BF16"), { encoding: "float-planes" }],
    ["special F32 bit patterns", specialFloatTensor("special", "F32", 20_000, 5), { encoding: "float-planes" }],
    ["raw I32", { ...gaussianTensor("i32", [9_999], 6, "F32"), dtype: "I32" }, { encoding: "raw" }],
    ["raw BF16", gaussianTensor("raw", [123, 45], 7, "BF16"), { encoding: "raw" }],
    ["int8 per row", gaussianTensor("q8", [301, 129], 8, "BF16"), { encoding: "int-quant", bits: 8 }],
    ["int4 groups, asymmetric", gaussianTensor("q4", [250, 96], 9, "F16"), { encoding: "int-quant", bits: 4, groupSize: 32, asymmetric: true }],
    ["int3 with input scale", gaussianTensor("q3", [64, 100], 10, "F32"), { encoding: "int-quant", bits: 3, inputScale: Float32Array.from({ length: 100 }, (_, i) => 0.5 + i / 100) }],
    ["int8 with F32 scales in some rows", mixedScaleTensor(200, 64), { encoding: "int-quant", bits: 8 }],
    ["int8 with F32 scales forced", gaussianTensor("f32scales", [100, 64], 12, "F32"), { encoding: "int-quant", bits: 8, scaleType: "F32" }],
    ["int4 with all-zero rows", zeroRowsTensor(), { encoding: "int-quant", bits: 4 }],
    ["rows longer than a window", gaussianTensor("wide", [3, 10_000], 13, "BF16"), { encoding: "int-quant", bits: 6 }],
    ["empty", { name: "empty", dtype: "F32", shape: [0, 8], data: new Uint8Array(0) }, { encoding: "float-planes" }],
    ["empty int-quant", { name: "empty-q", dtype: "F32", shape: [0, 8], data: new Uint8Array(0) }, { encoding: "int-quant", bits: 8 }],
    ["scalar", gaussianTensor("scalar", [], 14, "F32"), { encoding: "float-planes" }],
  ];

  function expectSameFrame(actual: EncodedFrame, expected: EncodedFrame): void {
    expect(actual.header).toEqual(expected.header);
    expect(actual.headerLength).toBe(expected.headerLength);
    expect(actual.frameLength).toBe(expected.frameLength);
    expect(actual.payloadLengths).toEqual(expected.payloadLengths);
    expect(sameBytes(frameBytes(actual), frameBytes(expected))).toBe(true);
  }

  it.each(CASES)("gives encodeTensorFrame's frame byte for byte: %s", async (_, tensor, encoding) => {
    const expected = encodeTensorFrame(tensor, encoding, 12);
    for (const windowSymbols of [4096, 3 * 4096, 1 << 22]) {
      expectSameFrame(await encodeLargeTensorFrame(tensor, encoding, 12, { windowSymbols }), expected);
    }
    expectSameFrame(await encodeLargeTensorFrame(tensor, encoding), encodeTensorFrame(tensor, encoding));
  });

  it.each(CASES)("gives the same frame from a TensorReader, read window by window within the tensor: %s", async (_, tensor, encoding) => {
    const expected = encodeTensorFrame(tensor, encoding, 12);
    const windowSymbols = 3 * 4096;
    const reads: [number, number][] = [];
    const reader: TensorReader = {
      name: tensor.name,
      dtype: tensor.dtype,
      shape: tensor.shape,
      readBytes: async (offset, length) => {
        expect(offset >= 0 && offset + length <= tensor.data.length).toBe(true);
        reads.push([offset, length]);
        return tensor.data.slice(offset, offset + length);
      },
    };
    expectSameFrame(await encodeLargeTensorFrame(reader, encoding, 12, { windowSymbols }), expected);
    const size = dtypeSize(tensor.dtype);
    // A window of elements, of rows for int-quant (a row longer than a window is read whole), or
    // of bytes for raw, widened to whole elements.
    const cols = tensor.shape.at(-1) ?? 1;
    const longest = encoding.encoding === "int-quant" ? Math.max(windowSymbols, cols) * size : encoding.encoding === "raw" ? windowSymbols + 2 * size : windowSymbols * size;
    expect(Math.max(0, ...reads.map(([, length]) => length))).toBeLessThanOrEqual(longest);
  });

  it("has cases that take each int-quant slice path", () => {
    const mixed = CASES.find(([name]) => name.startsWith("int8 with F32 scales in some rows"))![1];
    expect(encodeTensorFrame(mixed, { encoding: "int-quant", bits: 8 }, 12).header.quant?.scaleType).toBe("F32");
    // Its last window of rows alone would take F16 scales.
    const lastRows = { ...mixed, shape: [8, 64], data: mixed.data.subarray(192 * 64 * 4) };
    expect(encodeTensorFrame(lastRows, { encoding: "int-quant", bits: 8 }, 12).header.quant?.scaleType).toBe("F16");
  });

  it("gives the same frames on both kernel sets and through the native block jobs", async () => {
    const kernelSets = nativeKernelSet() ? (["typescript", "native"] as const) : (["typescript"] as const);
    for (const set of kernelSets) {
      useKernels(set);
      JOB_THRESHOLDS.encode.job = 1;
      JOB_THRESHOLDS.encode.async = 1;
      for (const [name, tensor, encoding] of CASES.slice(0, 9)) {
        const expected = encodeTensorFrame(tensor, encoding, 12);
        expect([set, name, sameBytes(frameBytes(await encodeLargeTensorFrame(tensor, encoding, 12, { windowSymbols: 8192 })), frameBytes(expected))]).toEqual([set, name, true]);
      }
    }
  });

  it("checks its arguments with encodeTensorFrame's codes", async () => {
    const tensor = gaussianTensor("w", [16, 16], 1);
    const codes = async (t: TensorData, encoding: TensorEncoding, log2Block = 12) => [
      await codeOfAsync(() => encodeTensorFrame(t, encoding, log2Block)),
      await codeOfAsync(() => encodeLargeTensorFrame(t, encoding, log2Block)),
    ];
    expect(await codes({ ...tensor, name: "" }, { encoding: "raw" })).toEqual(["INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
    expect(await codes({ ...tensor, shape: [16, 15] }, { encoding: "raw" })).toEqual(["INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
    expect(await codes({ ...tensor, shape: [1, 1, 1, 1, 1, 1, 1, 1, 256] }, { encoding: "raw" })).toEqual(["INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
    expect(await codes(tensor, { encoding: "raw" }, 11)).toEqual(["BAD_HEADER", "BAD_HEADER"]);
    expect(await codes({ ...tensor, dtype: "I32" }, { encoding: "float-planes" })).toEqual(["BAD_DTYPE", "BAD_DTYPE"]);
    expect(await codes({ ...tensor, dtype: "I32" }, { encoding: "int-quant", bits: 8 })).toEqual(["BAD_DTYPE", "BAD_DTYPE"]);
    expect(await codes(tensor, { encoding: "int-quant", bits: 9 })).toEqual(["INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
    expect(await codeOfAsync(() => encodeLargeTensorFrame(tensor, { encoding: "raw" }, 12, { windowSymbols: 5000 }))).toBe("INVALID_ARGUMENT");
  });
});
