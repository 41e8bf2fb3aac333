import { describe, expect, it } from "vitest";
import { MemorySource, type ByteRange } from "./io/source.js";
import { QansReader } from "./reader.js";
import { gaussianTensor, sha256, writeToMemory } from "./testing/fixtures.js";
import { TestHttpServer } from "./testing/http-server.js";
import { HttpSource } from "./io/http-source.js";

const LAYERS = 4;

async function layeredFile(): Promise<Uint8Array> {
  const tensors = [];
  for (let layer = 0; layer < LAYERS; layer++) {
    for (const part of ["attn.wq", "attn.wk", "mlp.w1"]) {
      tensors.push({ tensor: gaussianTensor(`model.layers.${layer}.${part}.weight`, [16, 32], 10 * layer + part.length), encoding: { encoding: "int-quant", bits: 4 } as const });
    }
  }
  tensors.push({ tensor: gaussianTensor("model.layers.10.attn.wq.weight", [8, 8], 99), encoding: { encoding: "float-planes" } as const });
  return writeToMemory(tensors, { log2Block: 12 });
}

/** A MemorySource that records its readRanges calls. */
class RangeCountingSource extends MemorySource {
  readonly batches: ByteRange[][] = [];
  async readRanges(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    this.batches.push([...ranges]);
    return Promise.all(ranges.map(({ offset, length, what }) => this.read(offset, length, what)));
  }
}

describe("QansReader.readMatching", () => {
  it("reads the tensors a prefix, a RegExp or a predicate selects, in file order, as readTensor does", async () => {
    const bytes = await layeredFile();
    const reader = await QansReader.open(new MemorySource(bytes));
    const names = async (selector: Parameters<QansReader["readMatching"]>[0]) => {
      const out: string[] = [];
      for await (const tensor of reader.readMatching(selector)) {
        expect(sha256(tensor.data), tensor.name).toBe(sha256((await reader.readTensor(tensor.name)).data));
        out.push(tensor.name);
      }
      return out;
    };
    // "model.layers.1." must not select layer 10 or 11.
    expect(await names("model.layers.1.")).toEqual(["model.layers.1.attn.wq.weight", "model.layers.1.attn.wk.weight", "model.layers.1.mlp.w1.weight"]);
    expect(await names(/\.attn\.wq\./g)).toEqual([0, 1, 2, 3, 10].map((l) => `model.layers.${l}.attn.wq.weight`));
    expect(await names((name) => name.endsWith("w1.weight"))).toHaveLength(LAYERS);
    expect(await names("nothing.")).toEqual([]);
  });

  it("fetches frames through readRanges in batches of at most batchBytes", async () => {
    const bytes = await layeredFile();
    const source = new RangeCountingSource(bytes);
    const reader = await QansReader.open(source);
    const frames = reader.entries.filter((e) => e.name.startsWith("model.layers.")).map((e) => e.frameLength);
    let count = 0;
    for await (const _ of reader.readMatching("model.layers.")) count++;
    expect(count).toBe(frames.length);
    expect(source.batches).toHaveLength(1);
    source.batches.length = 0;
    const budget = 2 * Math.max(...frames);
    for await (const _ of reader.readMatching("model.layers.", { batchBytes: budget })) count++;
    expect(source.batches.length).toBeGreaterThan(1);
    for (const batch of source.batches) expect(batch.length === 1 || batch.reduce((s, r) => s + r.length, 0) <= budget).toBe(true);
    expect(source.batches.flat().map((r) => r.offset)).toEqual(reader.entries.filter((e) => e.name.startsWith("model.layers.")).map((e) => e.frameOffset));
  });

  it("costs one coalesced request for a layer over HTTP", async () => {
    const bytes = await layeredFile();
    const server = await TestHttpServer.start(bytes);
    try {
      const reader = await QansReader.open(await HttpSource.open(server.url(), { tailBytes: 1024 }));
      const before = server.log.length;
      const read: string[] = [];
      for await (const tensor of reader.readMatching("model.layers.2.")) read.push(tensor.name);
      expect(read).toHaveLength(3);
      expect(server.log.length - before).toBe(1);
      await reader.close();
    } finally {
      await server.stop();
    }
  });

  it("rejects a selector of another type and a batch size that is not positive", async () => {
    const reader = await QansReader.open(new MemorySource(await layeredFile()));
    const first = async (selector: unknown, batchBytes?: number) => {
      for await (const _ of reader.readMatching(selector as string, { batchBytes })) break;
    };
    expect(await first(42).then(() => "ok", (e) => e.code)).toBe("INVALID_ARGUMENT");
    expect(await first("model.", 0).then(() => "ok", (e) => e.code)).toBe("INVALID_ARGUMENT");
  });
});
