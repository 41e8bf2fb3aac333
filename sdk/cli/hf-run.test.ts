import { spawnSync } from "node:child_process";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TINY_LLAMA, tinyLlamaModel, writeTinyLlama2c } from "../calibrate/tiny-llama.js";
import { writeSafetensors } from "../export/safetensors.js";
import { llamaShape, type LlamaArchitecture } from "../infer/architecture.js";
import { loadLlamaModel } from "../infer/model-file.js";
import { STORIES_TOKENIZER_PATH } from "../infer/stories-fixture.js";
import { QansReader } from "../reader.js";
import { fromFloat32, toFloat32 } from "../tensor/convert.js";
import type { TensorData } from "../tensor/tensor.js";
import { useTempDir } from "../testing/temp-dir.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-hf-run-");
const at = (...parts: string[]) => join(dir(), ...parts);

function qans(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir(), encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The tiny random Llama with stories260K's tokenizer's vocabulary, so that `qans run` can drive it. */
const ARCH: LlamaArchitecture = { ...TINY_LLAMA, vocab_size: 512 };
const SEED = 11;

/**
 * Hugging Face's conversion of Meta's q/k rows (convert_llama_weights_to_hf.py):
 * `w.view(heads, rows // heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)`.
 */
function hfPermute(w: Float32Array, heads: number, rows: number, cols: number): Float32Array {
  const half = rows / heads / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < 2; t++) {
      for (let i = 0; i < half; i++) {
        const from = ((h * half + i) * 2 + t) * cols;
        const to = ((h * 2 + t) * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

/**
 * The tensors of the model that writeTinyLlama2c writes, as a Hugging Face checkpoint holds them:
 * q/k rows in rotate-half order, unless `metaOrder` keeps the checkpoint's interleaved order.
 */
function hfTensors(metaOrder = false): TensorData[] {
  const { kvDim } = llamaShape(ARCH);
  return tinyLlamaModel(SEED, ARCH).tensors.map((tensor) => {
    const rotary = /self_attn\.(q|k)_proj/.exec(tensor.name)?.[1];
    if (rotary === undefined || metaOrder) return tensor;
    const [heads, rows] = rotary === "q" ? [ARCH.n_heads, ARCH.dim] : [ARCH.n_kv_heads, kvDim];
    return { ...tensor, data: fromFloat32("F32", hfPermute(toFloat32("F32", tensor.data), heads, rows, ARCH.dim)) };
  });
}

/** config.json as transformers writes it for ARCH. */
function hfConfig(overrides: Record<string, unknown> = {}): string {
  const config = {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: ARCH.dim,
    intermediate_size: ARCH.hidden_dim,
    max_position_embeddings: ARCH.max_seq_len,
    mlp_bias: false,
    model_type: "llama",
    num_attention_heads: ARCH.n_heads,
    num_hidden_layers: ARCH.n_layers,
    num_key_value_heads: ARCH.n_kv_heads,
    rms_norm_eps: ARCH.norm_eps,
    rope_scaling: null,
    rope_theta: ARCH.rope_theta,
    tie_word_embeddings: ARCH.tie_embeddings,
    torch_dtype: "float32",
    vocab_size: ARCH.vocab_size,
    ...overrides,
  };
  return JSON.stringify(config, null, 2);
}

async function hfFolder(name: string, config: string, tensors = hfTensors()): Promise<void> {
  await mkdir(at(name));
  await writeSafetensors(at(name, "model.safetensors"), tensors, { format: "pt" });
  await writeFile(at(name, "config.json"), config);
  await copyFile(STORIES_TOKENIZER_PATH, at(name, "tok512.bin"));
}

function pack(input: string, output: string, ...flags: string[]) {
  const packed = qans("pack", input, "-o", output, ...flags);
  expect(packed.code, packed.stderr).toBe(0);
  return packed;
}

function architectureOf(file: string): unknown {
  const inspected = qans("inspect", file, "--json");
  expect(inspected.code, inspected.stderr).toBe(0);
  return JSON.parse(inspected.stdout).metadata.architecture;
}

/** The logits after each token of `tokens`, fed one position at a time. */
async function logitsAlong(location: string, tokens: number[]): Promise<Float32Array[]> {
  const model = await loadLlamaModel(location);
  return tokens.map((token, pos) => model.forward(token, pos).slice());
}

const TOKENS = [1, 403, 261, 17, 498, 300, 45, 2, 129, 77, 301, 250];

beforeAll(async () => {
  expect(existsSync(CLI), "the CLI is built by `npm run build`").toBe(true);
  await mkdir(at("l2c"));
  writeTinyLlama2c(at("l2c", "model.bin"), SEED, ARCH);
  await copyFile(STORIES_TOKENIZER_PATH, at("l2c", "tok512.bin"));
  await hfFolder("hf", hfConfig());
  await hfFolder("hf-meta-order", hfConfig(), hfTensors(true));
  await hfFolder("hf-scaled", hfConfig({ rope_scaling: { rope_type: "linear", factor: 2 } }));
  await hfFolder("hf-other", JSON.stringify({ model_type: "gpt2", n_embd: ARCH.dim }));
});

describe("a Hugging Face Llama folder packs with its architecture and runs as its llama2.c checkpoint does", () => {
  it("packs both into the same record and the same tensors", async () => {
    pack(at("l2c", "model.bin"), at("l2c", "model.qans"));
    const packed = pack(at("hf"), at("hf", "model.qans"));
    expect(packed.stderr).toBe("");
    expect(architectureOf(at("hf", "model.qans"))).toEqual(ARCH);
    expect(architectureOf(at("l2c", "model.qans"))).toEqual(ARCH);

    const fromHf = await QansReader.openLocation(at("hf", "model.qans"));
    const fromL2c = await QansReader.openLocation(at("l2c", "model.qans"));
    const names = [...fromL2c.names].sort();
    expect([...fromHf.names].sort()).toEqual(names);
    for (const name of names) expect(Buffer.from((await fromHf.readTensor(name)).data).equals(Buffer.from((await fromL2c.readTensor(name)).data)), name).toBe(true);
    await fromHf.close();
    await fromL2c.close();
  });

  it("qans run --temperature 0 writes the same text from both, lossless and int8", () => {
    pack(at("l2c", "model.bin"), at("l2c", "model8.qans"), "--mode", "int8");
    pack(at("hf"), at("hf", "model8.qans"), "--mode", "int8");
    for (const file of ["model.qans", "model8.qans"]) {
      const run = (folder: string) => qans("run", at(folder, file), "--prompt", "Once upon a time", "-n", "40", "--temperature", "0");
      const l2c = run("l2c");
      const hf = run("hf");
      expect(l2c.code, l2c.stderr).toBe(0);
      expect(hf.code, hf.stderr).toBe(0);
      expect(hf.stderr).toMatch(/generated: 40 tokens/);
      expect(l2c.stdout.startsWith("Once upon a time")).toBe(true);
      expect(l2c.stdout.length).toBeGreaterThan("Once upon a time".length + 40);
      expect(hf.stdout, file).toBe(l2c.stdout);
    }
  });

  it("gives the checkpoint's logits at every position; rows left in the checkpoint's order do not", async () => {
    const reference = await logitsAlong(at("l2c", "model.bin"), TOKENS);
    expect(await logitsAlong(at("hf", "model.qans"), TOKENS)).toEqual(reference);
    // `qans eval --reference` reads the folder itself, through the same record.
    expect(await logitsAlong(at("hf"), TOKENS)).toEqual(reference);

    pack(at("hf-meta-order"), at("hf-meta-order", "model.qans"));
    const wrong = await logitsAlong(at("hf-meta-order", "model.qans"), TOKENS);
    // Position 0 attends only to itself, so rotary order shows from position 1 on.
    expect(wrong[0]).toEqual(reference[0]);
    const largestGap = Math.max(...wrong.slice(1).map((logits, p) => Math.max(...logits.map((v, i) => Math.abs(v - reference[p + 1][i])))));
    expect(largestGap).toBeGreaterThan(1e-3);
  });

  it("qans eval finds the folder and the packed file identical", () => {
    const result = qans("eval", at("hf", "model.qans"), "--reference", at("hf"), "--samples", "2", "--length", "32", "--json");
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ meanKld: 0, top1Agreement: 1, perplexityChange: 0 });
  });

  it("packs a Llama config the decoder cannot run without a record and says why; run and eval refuse it", () => {
    const packed = pack(at("hf-scaled"), at("hf-scaled", "model.qans"));
    expect(packed.stderr).toMatch(/^qans: warning: BAD_INPUT: .*hf-scaled\/config\.json: "rope_scaling" is \{"rope_type":"linear","factor":2\}.*packing without a model-architecture record/);
    expect(architectureOf(at("hf-scaled", "model.qans"))).toBeUndefined();

    const run = qans("run", at("hf-scaled", "model.qans"), "--prompt", "Once", "-n", "2");
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^qans: INVALID_ARGUMENT: .*has no model-architecture record/);
    const evaluated = qans("eval", at("hf", "model.qans"), "--reference", at("hf-scaled"), "--samples", "1", "--length", "8");
    expect(evaluated.code).toBe(1);
    expect(evaluated.stderr).toMatch(/^qans: BAD_INPUT: .*hf-scaled\/config\.json: "rope_scaling"/);
  });

  it("packs weights beside a config of another model type without a record, silently", () => {
    const packed = pack(at("hf-other"), at("hf-other", "model.qans"));
    expect(packed.stderr).toBe("");
    expect(architectureOf(at("hf-other", "model.qans"))).toBeUndefined();
  });
});
