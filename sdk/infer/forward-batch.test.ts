import { beforeAll, describe, expect, it } from "vitest";
import { MemorySource } from "../io/source.js";
import { QansReader } from "../reader.js";
import { codeOf } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { buildHolder, type HolderKind } from "./holders.js";
import { LlamaModel } from "./llama.js";
import { loadPlannedModel } from "./planned-model.js";
import { packStories } from "./stories-fixture.js";

/**
 * LlamaModel.forwardBatch (batched prefill through matmul) against forward() token by token on
 * stories260K: the same logits, bit for bit, with the holders of every kind, which compute their
 * products in one order whatever the number of inputs; and the same logits across holder kinds.
 */

let int8File: Uint8Array;

beforeAll(async () => {
  int8File = await packStories("int8");
});

async function loadWith(kind: HolderKind | "default"): Promise<LlamaModel> {
  const reader = await QansReader.open(new MemorySource(int8File, "stories260K int8"));
  try {
    if (kind === "default") return await LlamaModel.load(reader);
    return await LlamaModel.load(reader, { loadLinear: async (file, spec) => buildHolder(kind, await file.readFrame(spec.name)) });
  } finally {
    await reader.close();
  }
}

const tokens = (() => {
  const random = new Random(3);
  return Array.from({ length: 23 }, () => random.int(512));
})();

function bytes(logits: Float32Array): Buffer {
  return Buffer.from(logits.slice().buffer);
}

function tokenByToken(model: LlamaModel, list: number[], start = 0): Buffer {
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < list.length; i++) logits = model.forward(list[i], start + i);
  return bytes(logits);
}

describe("LlamaModel.forwardBatch", () => {
  it("gives forward()'s logits bit for bit with every holder kind, and the same logits across kinds", async () => {
    const results: Buffer[] = [];
    for (const kind of ["f32", "int8", "compressed"] as const) {
      const model = await loadWith(kind);
      model.reset();
      const batched = bytes(model.forwardBatch(tokens, 0));
      expect(model.length).toBe(tokens.length);
      model.reset();
      expect(batched.equals(tokenByToken(model, tokens)), kind).toBe(true);
      results.push(batched);
    }
    expect(results[1].equals(results[0])).toBe(true);
    expect(results[2].equals(results[0])).toBe(true);
  });

  it("gives forward()'s logits with the default holders, which have no matmul of their own", async () => {
    const model = await loadWith("default");
    const batched = bytes(model.forwardBatch(tokens, 0));
    model.reset();
    expect(batched.equals(tokenByToken(model, tokens))).toBe(true);
  });

  it("continues a sequence from a cached position, as forward() does", async () => {
    const model = await loadWith("int8");
    tokenByToken(model, tokens.slice(0, 5));
    const batched = bytes(model.forwardBatch(tokens.slice(5), 5));
    model.reset();
    expect(batched.equals(tokenByToken(model, tokens))).toBe(true);
  });

  it("gives forward()'s logits under a plan that mixes holders", async () => {
    const reader = await QansReader.open(new MemorySource(int8File, "stories260K int8"));
    const { model, plan } = await loadPlannedModel(reader, { budget: { percent: 26.5 }, workload: { prefillTokens: tokens.length, generatedTokens: 0 } });
    await reader.close();
    expect(new Set(plan.choices.values()).size).toBeGreaterThan(1);
    const batched = bytes(model.forwardBatch(tokens, 0));
    model.reset();
    expect(batched.equals(tokenByToken(model, tokens))).toBe(true);
    const f32 = await loadWith("f32");
    expect(batched.equals(bytes(f32.forwardBatch(tokens, 0)))).toBe(true);
  });

  it("calls an onLinearInput hook as forward() does, token by token", async () => {
    const reader = await QansReader.open(new MemorySource(int8File, "stories260K int8"));
    const seen: string[][] = [[], []];
    let which = 0;
    const model = await LlamaModel.load(reader, { onLinearInput: (name, x) => seen[which].push(`${name}:${x[0]}`) });
    await reader.close();
    model.forwardBatch(tokens.slice(0, 4), 0);
    which = 1;
    model.reset();
    tokenByToken(model, tokens.slice(0, 4));
    expect(seen[0].length).toBeGreaterThan(0);
    expect(seen[0]).toEqual(seen[1]);
  });

  it("refuses no tokens, a token outside the vocabulary, a gap in positions and positions past the context", async () => {
    const model = await loadWith("int8");
    expect(codeOf(() => model.forwardBatch([], 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => model.forwardBatch([1, 512], 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => model.forwardBatch([1, 2], 1))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => model.forwardBatch(new Array<number>(model.config.max_seq_len + 1).fill(1), 0))).toBe("LIMIT_EXCEEDED");
  });
});
