import { describe, expect, it } from "vitest";
import type { ByteSink } from "./io/sink.js";
import { MemorySink } from "./io/sink.js";
import { MemorySource } from "./io/source.js";
import { QansReader } from "./reader.js";
import { encodeTensorFrame, type TensorEncoding } from "./tensor/frame-encode.js";
import type { TensorData } from "./tensor/tensor.js";
import { gaussianTensor, sameBytes, specialFloatTensor } from "./testing/fixtures.js";
import { codeOfAsync } from "./testing/outcome.js";
import { Random } from "./testing/random.js";
import { verifySource } from "./verify.js";
import { QansWriter } from "./writer.js";

const LOG2_BLOCK = 12;
const WINDOW = 4 * 2 ** LOG2_BLOCK;

async function fileOf(tensors: [TensorData, TensorEncoding][], add: (writer: QansWriter, tensor: TensorData, encoding: TensorEncoding) => Promise<unknown>): Promise<Uint8Array> {
  const sink = new MemorySink();
  const writer = new QansWriter(sink, { log2Block: LOG2_BLOCK, windowSymbols: WINDOW });
  await writer.begin({ metadata: {} });
  for (const [tensor, encoding] of tensors) await add(writer, tensor, encoding);
  await writer.finish();
  return sink.bytes();
}

function randomBytesTensor(name: string, length: number, seed: number): TensorData {
  const random = new Random(seed);
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = random.int(256);
  return { name, dtype: "U8", shape: [length], data };
}

/** Records the size of every write, and lets a test act when a write arrives. */
class WatchingSink implements ByteSink {
  readonly inner = new MemorySink();
  readonly sizes: number[] = [];
  constructor(private readonly onWrite: (bytes: Uint8Array, written: number) => void = () => {}) {}
  async write(bytes: Uint8Array): Promise<void> {
    this.onWrite(bytes, this.sizes.reduce((a, b) => a + b, 0));
    this.sizes.push(bytes.length);
    await this.inner.write(bytes);
  }
}

describe("QansWriter.addTensor", () => {
  const tensors: [TensorData, TensorEncoding][] = [
    [gaussianTensor("planes.f32", [40, 1000], 1), { encoding: "float-planes" }],
    [specialFloatTensor("planes.bf16", "BF16", 50_000, 2), { encoding: "float-planes" }],
    [gaussianTensor("int4.g32", [37, 1100], 3, "F16"), { encoding: "int-quant", bits: 4, groupSize: 32, asymmetric: true }],
    [gaussianTensor("int8.row", [64, 900], 4), { encoding: "int-quant", bits: 8 }],
    [randomBytesTensor("raw.u8", 70_001, 5), { encoding: "raw" }],
    [{ name: "empty", dtype: "F32", shape: [0, 5], data: new Uint8Array(0) }, { encoding: "float-planes" }],
  ];

  it("writes the same bytes as a whole frame from encodeTensorFrame, over many windows", async () => {
    const streamed = await fileOf(tensors, (writer, tensor, encoding) => writer.addTensor(tensor, encoding));
    const whole = await fileOf(tensors, (writer, tensor, encoding) => writer.addFrame(encodeTensorFrame(tensor, encoding, LOG2_BLOCK)));
    expect(sameBytes(streamed, whole)).toBe(true);
    expect((await verifySource(new MemorySource(streamed))).tensors.length).toBe(tensors.length);
  });

  it("hands each block to the sink as its window is encoded, never the frame whole", async () => {
    const tensor = randomBytesTensor("raw.u8", 10 * WINDOW + 123, 6);
    const original = tensor.data.slice();
    const frameStart = { at: -1 };
    // When the frame's first block payload reaches the sink, change the tensor's last window: if the
    // writer encoded every window before writing, the file would hold the original bytes there.
    const lastWindow = 10 * WINDOW;
    const sink = new WatchingSink((bytes, written) => {
      if (frameStart.at < 0 && bytes.length === 2 ** LOG2_BLOCK) {
        frameStart.at = written;
        tensor.data.fill(7, lastWindow);
      }
    });
    const writer = new QansWriter(sink, { log2Block: LOG2_BLOCK, windowSymbols: WINDOW });
    await writer.begin({ metadata: {} });
    await writer.addTensor(tensor, { encoding: "raw" });
    await writer.finish();
    expect(frameStart.at).toBeGreaterThan(0);
    expect(Math.max(...sink.sizes)).toBeLessThanOrEqual(2 ** LOG2_BLOCK);

    const back = await (await QansReader.open(new MemorySource(sink.inner.bytes()))).readTensor("raw.u8");
    expect(sameBytes(back.data.subarray(0, lastWindow), original.subarray(0, lastWindow))).toBe(true);
    expect(back.data.subarray(lastWindow).every((b) => b === 7)).toBe(true);
  });

  it("refuses further tensors once a frame failed after some of its bytes went out", async () => {
    let fail = false;
    const sink = new WatchingSink((bytes) => {
      if (fail && bytes.length === 2 ** LOG2_BLOCK) throw new Error("disk full");
    });
    const writer = new QansWriter(sink, { log2Block: LOG2_BLOCK, windowSymbols: WINDOW });
    await writer.begin({ metadata: {} });
    fail = true;
    await expect(writer.addTensor(randomBytesTensor("a", 3 * WINDOW, 7), { encoding: "raw" })).rejects.toThrow("disk full");
    fail = false;
    expect(await codeOfAsync(() => writer.addTensor(randomBytesTensor("b", 10, 8), { encoding: "raw" }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => writer.finish())).toBe("INVALID_ARGUMENT");
  });

  it("checks its arguments before writing anything", async () => {
    const sink = new WatchingSink();
    const writer = new QansWriter(sink, { log2Block: LOG2_BLOCK });
    await writer.begin({ metadata: {} });
    const before = sink.inner.bytes().length;
    const bad: TensorData = { name: "bad", dtype: "F32", shape: [3], data: new Uint8Array(5) };
    expect(await codeOfAsync(() => writer.addTensor(bad, { encoding: "raw" }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => writer.addTensor(randomBytesTensor("u8", 8, 9), { encoding: "float-planes" }))).toBe("BAD_DTYPE");
    expect(sink.inner.bytes().length).toBe(before);
    // Neither failure wrote a byte, so the writer goes on.
    await writer.addTensor(randomBytesTensor("ok", 8, 10), { encoding: "raw" });
    await writer.addTensor(randomBytesTensor("ok2", 8, 10), { encoding: "raw" });
    expect(await codeOfAsync(() => writer.addTensor(randomBytesTensor("ok", 8, 10), { encoding: "raw" }))).toBe("DUPLICATE_NAME");
    await writer.finish();
    expect((await verifySource(new MemorySource(sink.inner.bytes()))).tensors.length).toBe(2);
  });
});
