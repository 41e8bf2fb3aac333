import { writeFileSync } from "node:fs";
import type { LlamaArchitecture } from "../infer/architecture.js";
import { matrixSpecs, normNames } from "../infer/architecture.js";
import { fromFloat32 } from "../tensor/convert.js";
import type { ImportedModel } from "../tensor/tensor.js";
import { Random } from "../testing/random.js";

/**
 * A randomly initialised Llama model small enough for tests of calibration and planning to run in
 * well under a second per model pass. Matrices are Gaussian with per-input-channel spreads that
 * vary by a factor of about e^±1, and channel 3 of the model width carries large values, so that
 * activations have an outlier channel as in real models.
 */
export const TINY_LLAMA: LlamaArchitecture = {
  family: "llama",
  dim: 16,
  hidden_dim: 40,
  n_layers: 2,
  n_heads: 4,
  n_kv_heads: 2,
  vocab_size: 48,
  max_seq_len: 64,
  rope_theta: 10000,
  norm_eps: 1e-5,
  tie_embeddings: true,
  rope_layout: "half-split",
};

export function tinyLlamaValues(seed: number, arch: LlamaArchitecture = TINY_LLAMA): Map<string, Float32Array> {
  const random = new Random(seed);
  const values = new Map<string, Float32Array>();
  for (const { name, rows, cols } of matrixSpecs(arch)) {
    const columnSpread = Float32Array.from({ length: cols }, () => Math.exp(random.gaussian()));
    const matrix = Float32Array.from({ length: rows * cols }, (_, k) => (random.gaussian() * columnSpread[k % cols]) / Math.sqrt(cols));
    values.set(name, matrix);
  }
  for (const name of normNames(arch)) values.set(name, Float32Array.from({ length: arch.dim }, (_, j) => (j === 3 ? 8 : 1) + 0.1 * random.gaussian()));
  return values;
}

/** The model as an importer would give it: F32 tensors with the architecture record. */
export function tinyLlamaModel(seed: number, arch: LlamaArchitecture = TINY_LLAMA): ImportedModel {
  const values = tinyLlamaValues(seed, arch);
  const shapes = new Map<string, number[]>([...matrixSpecs(arch).map((s): [string, number[]] => [s.name, [s.rows, s.cols]]), ...normNames(arch).map((n): [string, number[]] => [n, [arch.dim]])]);
  const tensors = [...values].map(([name, v]) => ({ name, dtype: "F32" as const, shape: shapes.get(name)!, data: fromFloat32("F32", v) }));
  return { metadata: {}, architecture: { ...arch }, tensors };
}

/**
 * Writes the model as a llama2.c checkpoint (the seven-int32 header, then the arrays in the
 * checkpoint's order, rotary tables included), so that `qans pack` can be run on it.
 */
export function writeTinyLlama2c(path: string, seed: number, arch: LlamaArchitecture = TINY_LLAMA): void {
  const values = tinyLlamaValues(seed, arch);
  const layers = (suffix: string) => Array.from({ length: arch.n_layers }, (_, l) => values.get(`model.layers.${l}.${suffix}`)!);
  const headSize = arch.dim / arch.n_heads;
  const rotary = new Float32Array((arch.max_seq_len * headSize) / 2);
  const arrays = [
    values.get("model.embed_tokens.weight")!,
    ...layers("input_layernorm.weight"),
    ...layers("self_attn.q_proj.weight"),
    ...layers("self_attn.k_proj.weight"),
    ...layers("self_attn.v_proj.weight"),
    ...layers("self_attn.o_proj.weight"),
    ...layers("post_attention_layernorm.weight"),
    ...layers("mlp.gate_proj.weight"),
    ...layers("mlp.down_proj.weight"),
    ...layers("mlp.up_proj.weight"),
    values.get("model.norm.weight")!,
    rotary,
    rotary,
  ];
  const header = Int32Array.of(arch.dim, arch.hidden_dim, arch.n_layers, arch.n_heads, arch.n_kv_heads, arch.tie_embeddings ? arch.vocab_size : -arch.vocab_size, arch.max_seq_len);
  writeFileSync(path, Buffer.concat([Buffer.from(header.buffer), ...arrays.map((a) => Buffer.from(fromFloat32("F32", a)))]));
}
