import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TINY_LLAMA, tinyLlamaModel } from "../calibrate/tiny-llama.js";
import { QansError } from "../errors.js";
import { writeSafetensors } from "../export/safetensors.js";
import type { TensorData } from "../tensor/tensor.js";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { importModel, openModelTensors } from "./detect.js";
import { architectureFromHfConfig, readHfConfig } from "./hf-config.js";

/** TinyLlama-1.1B's config.json as Hugging Face publishes it (transformers 4.35), byte for byte in its numbers. */
const TINYLLAMA_CONFIG = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
}
`;

/** The least a config needs: the members without a default. */
const MINIMAL = {
  model_type: "llama",
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 5,
  num_attention_heads: 8,
  vocab_size: 512,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
};

const WHERE = "/models/x/config.json";

function refusal(config: Record<string, unknown>): QansError {
  try {
    architectureFromHfConfig(config as never, WHERE);
  } catch (error) {
    expect(error).toBeInstanceOf(QansError);
    return error as QansError;
  }
  throw new Error(`accepted ${JSON.stringify(config)}`);
}

/** A config of TINY_LLAMA's sizes, the way Hugging Face writes one. */
function tinyConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_act: "silu",
    hidden_size: TINY_LLAMA.dim,
    intermediate_size: TINY_LLAMA.hidden_dim,
    num_hidden_layers: TINY_LLAMA.n_layers,
    num_attention_heads: TINY_LLAMA.n_heads,
    num_key_value_heads: TINY_LLAMA.n_kv_heads,
    vocab_size: TINY_LLAMA.vocab_size,
    max_position_embeddings: TINY_LLAMA.max_seq_len,
    rms_norm_eps: TINY_LLAMA.norm_eps,
    rope_theta: TINY_LLAMA.rope_theta,
    rope_scaling: null,
    tie_word_embeddings: TINY_LLAMA.tie_embeddings,
    ...overrides,
  };
}

describe("architectureFromHfConfig", () => {
  const dir = useTempDir("qans-hf-config-");

  it("maps TinyLlama-1.1B's published config.json to the §6.2 record", async () => {
    await writeFile(join(dir(), "config.json"), TINYLLAMA_CONFIG);
    const where = join(dir(), "config.json");
    expect(architectureFromHfConfig(await readHfConfig(where), where)).toEqual({
      family: "llama",
      dim: 2048,
      hidden_dim: 5632,
      n_layers: 22,
      n_heads: 32,
      n_kv_heads: 4,
      vocab_size: 32000,
      max_seq_len: 2048,
      rope_theta: 10000,
      norm_eps: 1e-5,
      tie_embeddings: false,
      rope_layout: "half-split",
    });
  });

  it("applies Hugging Face's defaults: key/value heads = heads, rope_theta 10000, untied embeddings", () => {
    expect(architectureFromHfConfig(MINIMAL, WHERE)).toMatchObject({ n_heads: 8, n_kv_heads: 8, rope_theta: 10000, tie_embeddings: false, norm_eps: 1e-6 });
    expect(architectureFromHfConfig({ ...MINIMAL, num_key_value_heads: null, rope_theta: 500000, tie_word_embeddings: true }, WHERE)).toMatchObject({
      n_kv_heads: 8,
      rope_theta: 500000,
      tie_embeddings: true,
    });
  });

  it("accepts a config that names LlamaForCausalLM without a model_type, and a head_dim that agrees", () => {
    const { model_type: _, ...untyped } = MINIMAL;
    expect(architectureFromHfConfig({ ...untyped, architectures: ["LlamaForCausalLM"], head_dim: 8 }, WHERE)).toMatchObject({ dim: 64, n_heads: 8 });
  });

  it("reads plain RoPE's base from rope_parameters, as newer configs write it", () => {
    expect(architectureFromHfConfig({ ...MINIMAL, rope_parameters: { rope_type: "default", rope_theta: 500000 } }, WHERE).rope_theta).toBe(500000);
    expect(architectureFromHfConfig({ ...MINIMAL, rope_parameters: { rope_type: "default" } }, WHERE).rope_theta).toBe(10000);
  });

  it("refuses, with BAD_INPUT naming the file and the member, what the decoder does not implement", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...MINIMAL, rope_scaling: { type: "linear", factor: 2 } }, "rope_scaling"],
      [{ ...MINIMAL, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, "rope_scaling"],
      [{ ...MINIMAL, rope_parameters: { rope_type: "yarn", rope_theta: 10000, factor: 4 } }, "rope_parameters"],
      [{ ...MINIMAL, rope_parameters: { rope_type: "default", rope_theta: 10000, partial_rotary_factor: 0.5 } }, "rope_parameters"],
      [{ ...MINIMAL, rope_parameters: { rope_theta: 20000 }, rope_theta: 10000 }, "rope_parameters"],
      [{ ...MINIMAL, hidden_act: "gelu" }, "hidden_act"],
      [{ ...MINIMAL, head_dim: 16 }, "head_dim"],
      [{ ...MINIMAL, attention_bias: true }, "attention_bias"],
      [{ ...MINIMAL, mlp_bias: true }, "mlp_bias"],
      [{ ...MINIMAL, mlp_bias: "no" }, "mlp_bias"],
      [{ ...MINIMAL, model_type: "mistral" }, "model_type"],
      [{ ...MINIMAL, model_type: undefined, architectures: ["GPT2LMHeadModel"] }, "model_type"],
      [{ ...MINIMAL, rms_norm_eps: undefined }, "rms_norm_eps"],
      [{ ...MINIMAL, rms_norm_eps: 0 }, "rms_norm_eps"],
      [{ ...MINIMAL, hidden_size: 64.5 }, "hidden_size"],
      [{ ...MINIMAL, vocab_size: "512" }, "vocab_size"],
      [{ ...MINIMAL, num_hidden_layers: -1 }, "num_hidden_layers"],
      [{ ...MINIMAL, tie_word_embeddings: 1 }, "tie_word_embeddings"],
      [{ ...MINIMAL, rope_theta: -5 }, "rope_theta"],
    ];
    for (const [config, member] of cases) {
      const error = refusal(JSON.parse(JSON.stringify(config)));
      expect(error.code, member).toBe("BAD_INPUT");
      expect(error.message, member).toContain(WHERE);
      expect(error.message, member).toContain(`"${member}"`);
    }
  });

  it("refuses sizes that do not fit together by the record's own rules, as BAD_INPUT", () => {
    for (const [config, text] of [
      [{ ...MINIMAL, num_attention_heads: 7 }, "not a multiple of n_heads"],
      [{ ...MINIMAL, num_key_value_heads: 3 }, "not a multiple of n_kv_heads"],
      [{ ...MINIMAL, hidden_size: 24, num_attention_heads: 8 }, "head size 3 is odd"],
    ] as const) {
      const error = refusal(config);
      expect(error.code).toBe("BAD_INPUT");
      expect(error.message).toContain(WHERE);
      expect(error.message).toContain(text);
    }
    expect(refusal([] as never).message).toContain("not a JSON object");
  });
});

describe("readHfConfig", () => {
  const dir = useTempDir("qans-hf-read-");

  it("reads with the strict JSON rules and a size cap", async () => {
    const cases: [string, string | Uint8Array, string][] = [
      ["duplicate.json", '{"model_type": "llama", "model_type": "gpt2"}', "BAD_INPUT"],
      ["comment.json", '{"model_type": "llama"} // trained 2023', "BAD_INPUT"],
      ["array.json", "[1, 2]", "BAD_INPUT"],
      ["latin1.json", Uint8Array.of(0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d), "BAD_UTF8"],
      ["huge.json", `{"pad": "${"x".repeat(1024 * 1024)}"}`, "LIMIT_EXCEEDED"],
    ];
    for (const [name, content, code] of cases) {
      await writeFile(join(dir(), name), content);
      expect(await codeOfAsync(readHfConfig(join(dir(), name))), name).toBe(code);
    }
    expect(await codeOfAsync(readHfConfig(join(dir(), "absent.json")))).toBe("IO_ERROR");
  });
});

describe("importModel and openModelTensors with a config.json beside the weights", () => {
  const dir = useTempDir("qans-hf-import-");
  const folder = (name: string) => join(dir(), name);
  const tiny = tinyLlamaModel(5);

  /** Writes TINY_LLAMA's tensors as model.safetensors (or two shards and an index) and `config` as config.json. */
  async function hfFolder(name: string, config: unknown, options: { sharded?: boolean; tensors?: TensorData[] } = {}): Promise<string> {
    const path = folder(name);
    await mkdir(path);
    const tensors = options.tensors ?? tiny.tensors;
    if (options.sharded) {
      const half = Math.ceil(tensors.length / 2);
      const shards: [string, TensorData[]][] = [
        ["model-00001-of-00002.safetensors", tensors.slice(0, half)],
        ["model-00002-of-00002.safetensors", tensors.slice(half)],
      ];
      for (const [file, part] of shards) await writeSafetensors(join(path, file), part);
      const weightMap = Object.fromEntries(shards.flatMap(([file, part]) => part.map((t) => [t.name, file])));
      await writeFile(join(path, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    } else {
      await writeSafetensors(join(path, "model.safetensors"), tensors);
    }
    if (config !== undefined) await writeFile(join(path, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
    return path;
  }

  beforeAll(async () => {
    await hfFolder("llama", tinyConfig());
    await hfFolder("sharded", tinyConfig(), { sharded: true });
    await hfFolder("bare", undefined);
    await hfFolder("gpt2", { model_type: "gpt2", n_embd: 16 });
    await hfFolder("scaled", tinyConfig({ rope_scaling: { type: "dynamic", factor: 2 } }));
    await hfFolder("broken", "{ not json");
    await hfFolder("wrong-vocab", tinyConfig({ vocab_size: TINY_LLAMA.vocab_size + 1 }));
    await hfFolder("untied", tinyConfig({ tie_word_embeddings: false }));
  });

  it("gives safetensors weights the record of a Llama config.json beside them: folder, file and sharded index", async () => {
    for (const path of [folder("llama"), join(folder("llama"), "model.safetensors"), folder("sharded"), join(folder("sharded"), "model.safetensors.index.json")]) {
      const model = await importModel(path);
      expect(model.architecture, path).toEqual(TINY_LLAMA);
      expect(model.tensors.map((t) => t.name).sort()).toEqual(tiny.tensors.map((t) => t.name).sort());
      const streamed = await openModelTensors(path, { wholeBytes: 64 });
      expect(streamed.architecture, path).toEqual(TINY_LLAMA);
      expect(streamed.count).toBe(tiny.tensors.length);
      await streamed.close();
    }
  });

  it("gives no record without a config.json or with one of another model type, and says nothing", async () => {
    for (const name of ["bare", "gpt2"]) {
      const problems: QansError[] = [];
      const model = await importModel(folder(name), { onConfigProblem: (problem) => problems.push(problem) });
      expect(model.architecture, name).toBeUndefined();
      expect(model.tensors.length).toBe(tiny.tensors.length);
      expect(problems).toEqual([]);
      const streamed = await openModelTensors(folder(name));
      expect(streamed.architecture).toBeUndefined();
      await streamed.close();
    }
  });

  it("without onConfigProblem, refuses a config it cannot use: unrunnable, unreadable, or contradicting the tensors", async () => {
    const cases: [string, string, RegExp][] = [
      ["scaled", "BAD_INPUT", /config\.json: "rope_scaling" is \{"type":"dynamic","factor":2\}/],
      ["broken", "BAD_INPUT", /config\.json/],
      ["wrong-vocab", "BAD_INPUT", /config\.json against .*: tensor model\.embed_tokens\.weight has shape \[48, 16\], the architecture record implies \[49, 16\]/],
      ["untied", "NOT_FOUND", /no tensor named "lm_head\.weight"/],
    ];
    for (const [name, code, message] of cases) {
      const openings: (() => Promise<unknown>)[] = [() => importModel(folder(name)), () => openModelTensors(folder(name))];
      for (const open of openings) {
        const error = await open().catch((e: unknown) => e);
        expect(error, name).toBeInstanceOf(QansError);
        expect((error as QansError).code, name).toBe(code);
        expect((error as QansError).message, name).toMatch(message);
      }
    }
  });

  it("with onConfigProblem, reports such a config and imports the weights without a record", async () => {
    for (const name of ["scaled", "broken", "wrong-vocab", "untied"]) {
      const problems: QansError[] = [];
      const model = await importModel(folder(name), { onConfigProblem: (problem) => problems.push(problem) });
      expect(model.architecture, name).toBeUndefined();
      expect(model.tensors.length).toBe(tiny.tensors.length);
      expect(problems.map((p) => p.message.includes(join(folder(name), "config.json"))), name).toEqual([true]);
      const streamedProblems: QansError[] = [];
      const streamed = await openModelTensors(folder(name), { onConfigProblem: (problem) => streamedProblems.push(problem) });
      expect(streamed.architecture).toBeUndefined();
      expect(streamedProblems.length).toBe(1);
      await streamed.close();
    }
  });
});
