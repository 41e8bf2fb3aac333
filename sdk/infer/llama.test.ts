import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { importLlama2c } from "../import/llama2c.js";
import { MemorySource } from "../io/source.js";
import { QansReader } from "../reader.js";
import { toFloat32 } from "../tensor/convert.js";
import type { ModelArchitecture, TensorData } from "../tensor/tensor.js";
import { STORIES_PATH, gaussianTensor, writeToMemory } from "../testing/fixtures.js";
import { codeOf, codeOfAsync } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { matrixSpecs, normNames, type LlamaArchitecture } from "./architecture.js";
import { generateTokens } from "./generate.js";
import { LlamaModel } from "./llama.js";
import { Sampler } from "./sampler.js";
import { STORIES_TOKENIZER_PATH, loadPackedStories, packStories, readmeGreedyText } from "./stories-fixture.js";
import { decodeTokens } from "./tokenizer.js";
import { Llama2cTokenizer } from "./tokenizer-llama2c.js";

type Weights = (name: string) => Float32Array;

/**
 * A float64 forward pass over a whole sequence, written from the model's definition with no cache:
 * logits at every position. `rope` says how q/k components pair: "interleaved" (2p, 2p+1), as in
 * llama2.c's own checkpoint, or "half-split" (p, p + headSize/2).
 */
function referenceLogits(arch: LlamaArchitecture, weights: Weights, tokens: number[], rope: "interleaved" | "half-split"): number[][] {
  const { dim, hidden_dim, n_heads, n_kv_heads, vocab_size } = arch;
  const hs = dim / n_heads;
  const kvDim = hs * n_kv_heads;
  const matvec = (w: Float32Array, x: number[], rows: number) =>
    Array.from({ length: rows }, (_, r) => x.reduce((s, v, c) => s + w[r * x.length + c] * v, 0));
  const norm = (x: number[], w: Float32Array) => {
    const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + arch.norm_eps);
    return x.map((v, i) => (w[i] * v) / rms);
  };
  const rotate = (v: number[], heads: number, pos: number) => {
    const out = [...v];
    for (let h = 0; h < heads; h++) {
      for (let p = 0; p < hs / 2; p++) {
        const [i, j] = rope === "interleaved" ? [h * hs + 2 * p, h * hs + 2 * p + 1] : [h * hs + p, h * hs + p + hs / 2];
        const angle = pos * arch.rope_theta ** ((-2 * p) / hs);
        out[i] = v[i] * Math.cos(angle) - v[j] * Math.sin(angle);
        out[j] = v[i] * Math.sin(angle) + v[j] * Math.cos(angle);
      }
    }
    return out;
  };
  const embed = weights("model.embed_tokens.weight");
  let xs = tokens.map((t) => Array.from(embed.subarray(t * dim, (t + 1) * dim)));
  for (let l = 0; l < arch.n_layers; l++) {
    const w = (name: string) => weights(`model.layers.${l}.${name}`);
    const normed = xs.map((x) => norm(x, w("input_layernorm.weight")));
    const qs = normed.map((x, pos) => rotate(matvec(w("self_attn.q_proj.weight"), x, dim), n_heads, pos));
    const ks = normed.map((x, pos) => rotate(matvec(w("self_attn.k_proj.weight"), x, kvDim), n_kv_heads, pos));
    const vs = normed.map((x) => matvec(w("self_attn.v_proj.weight"), x, kvDim));
    xs = xs.map((x, pos) => {
      const attended: number[] = [];
      for (let h = 0; h < n_heads; h++) {
        const g = Math.floor(h / (n_heads / n_kv_heads));
        const scores = ks.slice(0, pos + 1).map((k) => {
          let dot = 0;
          for (let i = 0; i < hs; i++) dot += qs[pos][h * hs + i] * k[g * hs + i];
          return dot / Math.sqrt(hs);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < hs; i++) attended.push(e.reduce((s, a, t) => s + (a / z) * vs[t][g * hs + i], 0));
      }
      const h1 = matvec(w("self_attn.o_proj.weight"), attended, dim).map((v, i) => v + x[i]);
      const n2 = norm(h1, w("post_attention_layernorm.weight"));
      const gate = matvec(w("mlp.gate_proj.weight"), n2, hidden_dim);
      const up = matvec(w("mlp.up_proj.weight"), n2, hidden_dim);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      return matvec(w("mlp.down_proj.weight"), act, dim).map((v, i) => v + h1[i]);
    });
  }
  const classifier = weights(arch.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  return xs.map((x) => matvec(classifier, norm(x, weights("model.norm.weight")), vocab_size));
}

/** The stories260K checkpoint's arrays as they are in the file (q/k rows in llama2.c's interleaved order), by Hugging Face name. */
function storiesAsStored(): { arch: LlamaArchitecture; weights: Weights } {
  const file = readFileSync(STORIES_PATH);
  const header = new Int32Array(file.buffer.slice(file.byteOffset, file.byteOffset + 28));
  const [dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len] = Array.from(header);
  const floats = new Float32Array(file.buffer.slice(file.byteOffset + 28, file.byteOffset + file.length));
  const kvDim = (dim * n_kv_heads) / n_heads;
  const arrays = new Map<string, Float32Array>();
  let at = 0;
  const take = (name: string, size: number) => {
    arrays.set(name, floats.subarray(at, at + size));
    at += size;
  };
  const perLayer = (suffix: string, size: number) => {
    for (let l = 0; l < n_layers; l++) take(`model.layers.${l}.${suffix}`, size);
  };
  take("model.embed_tokens.weight", vocab_size * dim);
  perLayer("input_layernorm.weight", dim);
  perLayer("self_attn.q_proj.weight", dim * dim);
  perLayer("self_attn.k_proj.weight", kvDim * dim);
  perLayer("self_attn.v_proj.weight", kvDim * dim);
  perLayer("self_attn.o_proj.weight", dim * dim);
  perLayer("post_attention_layernorm.weight", dim);
  perLayer("mlp.gate_proj.weight", hidden_dim * dim);
  perLayer("mlp.down_proj.weight", dim * hidden_dim);
  perLayer("mlp.up_proj.weight", hidden_dim * dim);
  take("model.norm.weight", dim);
  const arch: LlamaArchitecture = {
    family: "llama", dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len: seq_len,
    rope_theta: 10000, norm_eps: 1e-5, tie_embeddings: true, rope_layout: "half-split",
  };
  return { arch, weights: (name) => arrays.get(name)! };
}

/** Largest difference relative to the largest reference logit. */
function relativeError(actual: Float32Array, expected: number[]): number {
  const scale = Math.max(...expected.map(Math.abs));
  return Math.max(...expected.map((e, i) => Math.abs(actual[i] - e))) / scale;
}

function tensorsByName(tensors: TensorData[]): Weights {
  const map = new Map(tensors.map((t) => [t.name, toFloat32(t.dtype, t.data)]));
  return (name) => map.get(name)!;
}

/** A random model of the given shape, as F32 tensors by name. */
function randomModel(arch: LlamaArchitecture, seed: number): Weights {
  const tensors = new Map<string, Float32Array>();
  for (const spec of matrixSpecs(arch)) tensors.set(spec.name, toFloat32("F32", gaussianTensor(spec.name, [spec.rows, spec.cols], seed++, "F32", 0.3).data));
  const random = new Random(seed);
  for (const name of normNames(arch)) tensors.set(name, Float32Array.from({ length: arch.dim }, () => 0.5 + random.next()));
  return (name) => tensors.get(name)!;
}

const SMALL: LlamaArchitecture = {
  family: "llama", dim: 24, hidden_dim: 40, n_layers: 2, n_heads: 6, n_kv_heads: 2, vocab_size: 50, max_seq_len: 16,
  rope_theta: 500000, norm_eps: 1e-6, tie_embeddings: false, rope_layout: "half-split",
};

let lossless: LlamaModel;
let tokenizer: Llama2cTokenizer;

beforeAll(async () => {
  lossless = await loadPackedStories("lossless");
  tokenizer = Llama2cTokenizer.parse(readFileSync(STORIES_TOKENIZER_PATH), STORIES_TOKENIZER_PATH);
});

/** The text llama2.c's run prints for `steps` positions from `prompt`: the prompt's tokens after BOS count among them. */
function runLikeLlama2c(prompt: string, steps: number, temperature: number, topP: number, seed: number): string {
  const ids = tokenizer.encode(prompt);
  const tokens = [ids[0]];
  const sampler = new Sampler(lossless.config.vocab_size, { temperature, topP, seed });
  for (const { token } of generateTokens(lossless, { prompt: ids, maxNewTokens: steps - (ids.length - 1), sampler, stopTokens: tokenizer.stopTokens })) tokens.push(token);
  expect(tokens.length - 1).toBe(steps);
  return decodeTokens(tokenizer, tokens);
}

describe("LlamaModel on stories260K packed lossless", () => {
  it("reproduces the README's greedy text exactly", () => {
    const { prompt, steps, text } = readmeGreedyText();
    expect(runLikeLlama2c(prompt, steps, 0, 1, 0)).toBe(text);
  });

  it("reproduces llama2.c's sampled text for a seed, with and without top-p", () => {
    // Printed by llama2.c's run.c: `run stories260K.bin -z tok512.bin -t 0.8 -p 0.9 -s 42 -n 80 -i "Once upon a time"`
    // and `-t 1.0 -p 1.0 -s 7 -n 80 -i "Tom had a dog"`.
    expect(runLikeLlama2c("Once upon a time", 80, 0.8, 0.9, 42)).toBe(
      'Once upon a time, there was a little boy named Timmy. Timmy loved to play with his ball and make it fun. One day, Timmy\'s mom asked him to take it away from the park. Timmy said, "I want to get it back, Timmy, it\'s n',
    );
    expect(runLikeLlama2c("Tom had a dog", 80, 1, 1, 7)).toBe(
      "Tom had a dog named Max. He loved to play with his dad and dug from the lady around Tom. He tried to jump because he was home, but his dad said thought it was a restuite hom",
    );
  });

  it("gives the logits of a float64 forward pass over the checkpoint's own interleaved rotary layout", () => {
    const { arch, weights } = storiesAsStored();
    const tokens = [1, 403, 407, 261, 378, 30, 290, 7, 511, 2, 100, 259];
    const expected = referenceLogits(arch, weights, tokens, "interleaved");
    lossless.reset();
    tokens.forEach((token, pos) => expect(relativeError(lossless.forward(token, pos), expected[pos])).toBeLessThan(1e-5));
  });

  it("holds every weight resident as F32: the bytes of all the file's tensors", async () => {
    const imported = await importLlama2c(STORIES_PATH);
    expect(lossless.residentWeightBytes).toBe(imported.tensors.reduce((sum, t) => sum + t.data.byteLength, 0));
  });

  it("recomputes from a cached prefix: a forward at an earlier position replaces the positions after it", () => {
    lossless.reset();
    [1, 50, 60, 70].forEach((token, pos) => lossless.forward(token, pos));
    const rewritten = lossless.forward(80, 2).slice();
    expect(lossless.length).toBe(3);
    lossless.reset();
    [1, 50].forEach((token, pos) => lossless.forward(token, pos));
    expect(lossless.forward(80, 2)).toEqual(rewritten);
  });

  it("refuses tokens outside the vocabulary and positions that skip ahead or pass the context", () => {
    lossless.reset();
    expect(codeOf(() => lossless.forward(512, 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => lossless.forward(-1, 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => lossless.forward(1, 1))).toBe("INVALID_ARGUMENT");
    const small = LlamaModel.fromWeights(SMALL, randomModel(SMALL, 6));
    for (let pos = 0; pos < SMALL.max_seq_len; pos++) small.forward(pos % SMALL.vocab_size, pos);
    expect(codeOf(() => small.forward(1, SMALL.max_seq_len))).toBe("LIMIT_EXCEEDED");
  });
});

describe("LlamaModel.fromWeights", () => {
  it("gives bit-identical logits to the model loaded from the packed file", async () => {
    const imported = await importLlama2c(STORIES_PATH);
    const model = LlamaModel.fromWeights(imported.architecture!, tensorsByName(imported.tensors));
    lossless.reset();
    for (const [pos, token] of [1, 274, 287, 381].entries()) expect(model.forward(token, pos)).toEqual(lossless.forward(token, pos));
  });

  it("runs an untied classifier and grouped-query attention like the float64 definition (half-split)", () => {
    const weights = randomModel(SMALL, 1);
    const model = LlamaModel.fromWeights(SMALL, weights);
    const tokens = [3, 17, 49, 0, 22, 22, 8, 31];
    const expected = referenceLogits(SMALL, weights, tokens, "half-split");
    tokens.forEach((token, pos) => expect(relativeError(model.forward(token, pos), expected[pos])).toBeLessThan(1e-5));
  });

  it("uses the arrays in place, so a changed weight changes the output", () => {
    const weights = randomModel(SMALL, 2);
    const model = LlamaModel.fromWeights(SMALL, weights);
    const before = model.forward(5, 0).slice();
    weights("lm_head.weight").fill(0);
    model.reset();
    expect(Array.from(model.forward(5, 0)).every((v) => v === 0)).toBe(true);
    expect(before.some((v) => v !== 0)).toBe(true);
  });

  it("refuses arrays of the wrong length and malformed records", () => {
    const weights = randomModel(SMALL, 3);
    const short = (name: string) => (name === "model.layers.1.mlp.up_proj.weight" ? new Float32Array(3) : weights(name));
    expect(codeOf(() => LlamaModel.fromWeights(SMALL, short))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => LlamaModel.fromWeights({ ...SMALL, n_kv_heads: 4 }, weights))).toBe("BAD_METADATA");
    expect(codeOf(() => LlamaModel.fromWeights({ ...SMALL, rope_layout: "interleaved" } as never, weights))).toBe("BAD_METADATA");
    expect(codeOf(() => LlamaModel.fromWeights({ ...SMALL, dim: 24.5 }, weights))).toBe("BAD_METADATA");
    expect(codeOf(() => LlamaModel.fromWeights({ family: "gpt2" }, weights))).toBe("INVALID_ARGUMENT");
  });
});

describe("the linear-input hook", () => {
  it("sees every linear layer's input, named by its weight, in forward order, before the product", () => {
    const seen: { name: string; x: Float32Array }[] = [];
    const weights = randomModel(SMALL, 4);
    const model = LlamaModel.fromWeights(SMALL, weights, { onLinearInput: (name, x) => seen.push({ name, x: x.slice() }) });
    model.forward(7, 0);
    const perLayer = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];
    const expectedNames = [0, 1].flatMap((l) => perLayer.map((p) => `model.layers.${l}.${p}.weight`));
    expect(seen.map((s) => s.name)).toEqual([...expectedNames, "lm_head.weight"]);
    // Layer 0's attention input is the RMS-normed embedding of token 7.
    const embedding = weights("model.embed_tokens.weight").subarray(7 * 24, 8 * 24);
    const gain = weights("model.layers.0.input_layernorm.weight");
    const rms = Math.sqrt(embedding.reduce((s, v) => s + v * v, 0) / 24 + SMALL.norm_eps);
    for (const i of [0, 1, 2]) for (let c = 0; c < 24; c++) expect(seen[i].x[c]).toBeCloseTo((gain[c] * embedding[c]) / rms, 5);
    expect(seen[6].x.length).toBe(SMALL.hidden_dim);
  });

  it("names the classifier model.embed_tokens.weight when it is tied", async () => {
    const names: string[] = [];
    const reader = await QansReader.open(new MemorySource(await packStories("lossless")));
    const model = await LlamaModel.load(reader, { onLinearInput: (name) => names.push(name) });
    await reader.close();
    model.forward(1, 0);
    expect(names.at(-1)).toBe("model.embed_tokens.weight");
    expect(names.length).toBe(5 * 7 + 1);
  });
});

describe("LlamaModel.load errors", () => {
  const tensor = (name: string, shape: number[]) => ({ tensor: gaussianTensor(name, shape, 1), encoding: { encoding: "float-planes" } as const });

  async function loadFrom(bytes: Uint8Array) {
    const reader = await QansReader.open(new MemorySource(bytes));
    return LlamaModel.load(reader, { name: "test.qans" });
  }

  it("a file without an architecture record is INVALID_ARGUMENT, naming the file", async () => {
    const bytes = await writeToMemory([tensor("w", [4, 4])]);
    await expect(loadFrom(bytes)).rejects.toThrow(/test\.qans has no model-architecture record/);
    expect(await codeOfAsync(loadFrom(bytes))).toBe("INVALID_ARGUMENT");
  });

  it("a missing tensor is NOT_FOUND and a tensor of the wrong shape BAD_INPUT", async () => {
    const arch = { ...SMALL };
    const weights = randomModel(arch, 5);
    const all = [...matrixSpecs(arch).map((s) => ({ name: s.name, shape: [s.rows, s.cols] })), ...normNames(arch).map((name) => ({ name, shape: [arch.dim] }))];
    const entry = (name: string, shape: number[]) => ({ tensor: { name, dtype: "F32" as const, shape, data: new Uint8Array(weights(name).buffer.slice(0)) }, encoding: { encoding: "float-planes" } as const });
    const metadata = { metadata: {}, architecture: arch as unknown as ModelArchitecture };
    const missing = await writeToMemory(all.filter((t) => t.name !== "model.layers.1.self_attn.o_proj.weight").map((t) => entry(t.name, t.shape)), { metadata });
    expect(await codeOfAsync(loadFrom(missing))).toBe("NOT_FOUND");
    const transposed = await writeToMemory(all.map((t) => entry(t.name, t.name === "model.layers.0.mlp.down_proj.weight" ? [...t.shape].reverse() : t.shape)), { metadata });
    await expect(loadFrom(transposed)).rejects.toThrow(/down_proj\.weight has shape \[40, 24\], the architecture record implies \[24, 40\]/);
    expect(await codeOfAsync(loadFrom(transposed))).toBe("BAD_INPUT");
    const complete = await writeToMemory(all.map((t) => entry(t.name, t.shape)), { metadata });
    const model = await loadFrom(complete);
    expect(model.forward(3, 0)).toEqual(LlamaModel.fromWeights(arch, weights).forward(3, 0));
  });
});
