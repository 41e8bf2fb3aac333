import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { QansError } from "./errors.js";
import { importModel } from "./import/detect.js";
import { MemorySource } from "./io/source.js";
import { MemorySink } from "./io/sink.js";
import { summarizeReport } from "./inspect.js";
import { packModel, packToFile, type PackMode } from "./pack.js";
import { QansReader } from "./reader.js";
import { toFloat32 } from "./tensor/convert.js";
import type { ImportedModel, TensorData } from "./tensor/tensor.js";
import { verifySource } from "./verify.js";
import { DEMO_MODEL_PATH, STORIES_PATH, gaussianTensor, sha256, specialFloatTensor, writeToMemory } from "./testing/fixtures.js";
import { CountingSource } from "./testing/counting-source.js";
import { Random } from "./testing/random.js";
import { useTempDir } from "./testing/temp-dir.js";

const workDir = useTempDir("qans-roundtrip-");

async function packInMemory(model: ImportedModel, mode: PackMode, groupSize?: number): Promise<Uint8Array> {
  const sink = new MemorySink();
  await packModel(model, sink, { mode, groupSize });
  return sink.bytes();
}

/** Every element within half a step of the original, the step being the stored delta (spec §8.3). */
async function expectWithinHalfStep(reader: QansReader, original: TensorData): Promise<number> {
  const { header } = await reader.readStreams(original.name);
  const values = toFloat32(original.dtype, original.data);
  const restored = await reader.readFloat32(original.name);
  const quant = header.quant!;
  const cols = original.shape[original.shape.length - 1];
  const groups = quant.groupSize ? Math.ceil(cols / quant.groupSize) : 1;
  let worst = 0;
  for (let i = 0; i < values.length; i++) {
    const row = Math.floor(i / cols);
    const group = quant.groupSize ? Math.floor((i % cols) / quant.groupSize) : 0;
    const delta = quant.deltas[row * groups + group];
    const error = Math.abs(restored[i] - values[i]);
    // Only binary32 rounding of the reconstruction may exceed the exact half step.
    const bound = delta / 2 + 2 ** -23 * Math.abs(values[i]) + 2 ** -23 * delta;
    if (error > bound) throw new Error(`${original.name}[${i}]: error ${error} exceeds half step ${delta / 2}`);
    if (delta > 0) worst = Math.max(worst, error / (delta / 2));
  }
  return worst;
}

describe.each([
  ["stories260K", STORIES_PATH],
  ["the demo model", DEMO_MODEL_PATH],
])("%s", (_, path) => {
  let model: ImportedModel;

  it("round-trips lossless bit-exactly, by sha256 of every tensor, through a file", async () => {
    model = await importModel(path);
    const file = join(workDir(), `${_.replace(/ /g, "-")}.qans`);
    await packToFile(model, file, { mode: "lossless" });
    const reader = await QansReader.openLocation(file);
    try {
      expect(reader.entries.length).toBe(model.tensors.length);
      for (const tensor of model.tensors) {
        const back = await reader.readTensor(tensor.name);
        expect(back.dtype).toBe(tensor.dtype);
        expect(back.shape).toEqual(tensor.shape);
        expect(sha256(back.data), tensor.name).toBe(sha256(tensor.data));
      }
      expect((await reader.metadata()).metadata).toEqual(model.metadata);
    } finally {
      await reader.close();
    }
  });

  it.each(["int8", "int4"] as const)("keeps every quantized weight within half a step in %s, and vectors exact", async (mode) => {
    const bytes = await packInMemory(model, mode);
    const reader = await QansReader.open(new MemorySource(bytes));
    let worst = 0;
    for (const tensor of model.tensors) {
      const entry = reader.entry(tensor.name);
      if (entry.encoding === "int-quant") worst = Math.max(worst, await expectWithinHalfStep(reader, tensor));
      else expect(sha256((await reader.readTensor(tensor.name)).data)).toBe(sha256(tensor.data));
    }
    // The bound is tight: round-to-nearest uses almost all of it.
    expect(worst).toBeGreaterThan(0.9);
    expect(worst).toBeLessThanOrEqual(1 + 1e-6);
  });
});

describe("lossless float planes", () => {
  it.each(["F32", "F16", "BF16"] as const)("keeps %s NaN payloads, infinities, subnormals and -0 bit-exact", async (dtype) => {
    const tensors = [100_000, 4096, 4097, 33, 1].map((count, i) => specialFloatTensor(`${dtype}-${count}`, dtype, count, 10 + i));
    const bytes = await writeToMemory(
      tensors.map((tensor) => ({ tensor, encoding: { encoding: "float-planes" as const } })),
      { log2Block: 12 },
    );
    const reader = await QansReader.open(new MemorySource(bytes));
    for (const tensor of tensors) expect(sha256((await reader.readTensor(tensor.name)).data)).toBe(sha256(tensor.data));
    await verifySource(new MemorySource(bytes));
  });
});

describe("shapes and block boundaries", () => {
  const log2Block = 12;
  const counts = [0, 1, 31, 32, 33, 4095, 4096, 4097, 3 * 4096 + 5];
  it.each(["raw", "float-planes", "int-quant"] as const)("round-trips %s tensors of every awkward length", async (encoding) => {
    const tensors = counts.map((count, i) => gaussianTensor(`t${count}`, [count], i + 1));
    tensors.push({ name: "scalar", dtype: "F32", shape: [], data: new Uint8Array(new Float32Array([1.5]).buffer) });
    tensors.push({ name: "empty-matrix", dtype: "F32", shape: [0, 7], data: new Uint8Array(0) });
    const spec = encoding === "int-quant" ? { encoding, bits: 5 } : { encoding };
    const bytes = await writeToMemory(tensors.map((tensor) => ({ tensor, encoding: spec })), { log2Block });
    const reader = await QansReader.open(new MemorySource(bytes));
    for (const tensor of tensors) {
      const back = await reader.readTensor(tensor.name);
      expect(back.shape).toEqual(tensor.shape);
      if (encoding === "int-quant") await expectWithinHalfStep(reader, tensor);
      else expect(sha256(back.data)).toBe(sha256(tensor.data));
    }
    const report = await verifySource(new MemorySource(bytes));
    const longest = report.tensors.find((t) => t.name === "t12293")!;
    const symbolsPerElement = encoding === "raw" ? 4 : 1;
    const blocksPerStream = Math.ceil((12293 * symbolsPerElement) / 2 ** log2Block);
    for (const stream of longest.streams) {
      const modes = stream.blockModes;
      expect(modes.RAW + modes.CONST + modes.RANS).toBe(blocksPerStream);
      expect(stream.symbols).toBe(12293 * symbolsPerElement);
    }
  });

  it("uses CONST blocks for constant data and RAW blocks where coding does not pay", async () => {
    const random = new Random(3);
    const tensors: TensorData[] = [
      { name: "zeros", dtype: "U8", shape: [10000], data: new Uint8Array(10000) },
      { name: "noise", dtype: "U8", shape: [10000], data: random.bytes(10000) },
    ];
    const bytes = await writeToMemory(tensors.map((tensor) => ({ tensor, encoding: { encoding: "raw" as const } })), { log2Block: 12 });
    const report = await verifySource(new MemorySource(bytes));
    expect(report.tensors[0].streams[0].blockModes).toEqual({ RAW: 0, CONST: 3, RANS: 0 });
    expect(report.tensors[1].streams[0].blockModes).toEqual({ RAW: 3, CONST: 0, RANS: 0 });
  });

  it("supports group sizes, asymmetric quantization and every bit width", async () => {
    const tensor = gaussianTensor("w", [48, 100], 9);
    for (let bits = 2; bits <= 8; bits++) {
      for (const groupSize of [0, 32]) {
        for (const asymmetric of [false, true]) {
          const bytes = await writeToMemory([{ tensor, encoding: { encoding: "int-quant", bits, groupSize, asymmetric } }]);
          const reader = await QansReader.open(new MemorySource(bytes));
          await expectWithinHalfStep(reader, tensor);
          expect(reader.entry("w").streamCount).toBe(1);
        }
      }
    }
  });
});

describe("random access", () => {
  it("reads one tensor by touching only the file's tail and that tensor's frame", async () => {
    const tensors = Array.from({ length: 40 }, (_, i) => gaussianTensor(`layer.${i}`, [64, 64], i));
    const bytes = await writeToMemory(tensors.map((tensor) => ({ tensor, encoding: { encoding: "float-planes" as const } })));
    const source = new CountingSource(new MemorySource(bytes));
    const reader = await QansReader.open(source);
    expect(source.reads.length).toBe(1);
    const entry = reader.entry("layer.17");
    source.reads.length = 0;
    const back = await reader.readTensor("layer.17");
    expect(sha256(back.data)).toBe(sha256(tensors[17].data));
    expect(source.reads).toEqual([{ offset: entry.frameOffset, length: entry.frameLength }]);
  });

  it("reads the index with a second request when it is larger than the speculative tail", async () => {
    const tensors = Array.from({ length: 3000 }, (_, i) => ({ name: `tensor.with.a.long.name.${i}`, dtype: "U8" as const, shape: [1], data: Uint8Array.of(i & 255) }));
    const bytes = await writeToMemory(tensors.map((tensor) => ({ tensor, encoding: { encoding: "raw" as const } })));
    const source = new CountingSource(new MemorySource(bytes));
    const reader = await QansReader.open(source);
    expect(reader.trailer.indexLength).toBeGreaterThan(64 * 1024);
    expect(source.reads.length).toBe(2);
    expect((await reader.readTensor("tensor.with.a.long.name.2999")).data).toEqual(Uint8Array.of(2999 & 255));
  });
});

describe("corruption", () => {
  it("fails verify with a named code for every single-byte change of a small file", async () => {
    const bytes = await writeToMemory(
      [
        { tensor: gaussianTensor("q", [16, 64], 1), encoding: { encoding: "int-quant", bits: 4 } },
        { tensor: gaussianTensor("f", [70], 2, "F16"), encoding: { encoding: "float-planes" } },
        { tensor: { name: "z", dtype: "U8", shape: [40], data: new Uint8Array(40) }, encoding: { encoding: "raw" } },
      ],
      { log2Block: 12, metadata: { metadata: { k: "v" } } },
    );
    await verifySource(new MemorySource(bytes));
    const codes = new Map<string, number>();
    for (let at = 0; at < bytes.length; at++) {
      for (const flip of [0xff, 0x01]) {
        const corrupt = bytes.slice();
        corrupt[at] ^= flip;
        const error = await verifySource(new MemorySource(corrupt)).then(
          () => new Error(`byte ${at} ^ ${flip} went unnoticed`),
          (e: unknown) => e,
        );
        if (!(error instanceof QansError)) throw error;
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      }
    }
    expect(codes.get("CHECKSUM_MISMATCH")).toBeGreaterThan(bytes.length);
    expect(codes.get("NONZERO_PADDING")).toBeGreaterThan(0);
    expect(codes.get("BAD_MAGIC")).toBeGreaterThan(0);
  });
});

describe("entropy overhead (inspect accounting)", () => {
  it.each(["lossless", "int8", "int4"] as const)("on the demo model in %s: within 0.5 percent at 2^20+ symbols and 1.5 percent at 2^16+", async (mode) => {
    const model = await importModel(DEMO_MODEL_PATH);
    const bytes = await packInMemory(model, mode);
    const summary = summarizeReport(await verifySource(new MemorySource(bytes)));
    const coded = summary.tensors.filter((t) => t.entropyCoded);
    const large = coded.filter((t) => t.elements >= 2 ** 20);
    const medium = coded.filter((t) => t.elements >= 2 ** 16);
    expect(large.length).toBeGreaterThan(0);
    expect(medium.length).toBeGreaterThan(large.length);
    for (const t of large) expect(t.overheadPct!, t.name).toBeLessThan(0.5);
    for (const t of medium) expect(t.overheadPct!, t.name).toBeLessThan(1.5);
    for (const t of coded) expect(t.overheadPct!, t.name).toBeGreaterThan(0);
  });
});
