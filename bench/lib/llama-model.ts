/**
 * A generated Llama-shaped model (llama-shape.ts) as a runnable model: its tensors under the
 * Hugging Face names LlamaModel loads, one at a time, and the architecture record that goes with
 * them, plus the text that says which synthetic parameters were used.
 */
import type { ModelArchitecture, TensorData } from "../../sdk/tensor/tensor.js";
import { MATRIX_ROLES, NORM_ROLES, TensorValues, type LlamaShape, type ModelPlan, type WeightParams } from "./llama-shape.js";

/** llama2.c / Meta names (llama-shape.ts) to the Hugging Face names of the architecture record (spec §6.2). */
const RENAMES: [RegExp, string][] = [
  [/^tok_embeddings\.weight$/, "model.embed_tokens.weight"],
  [/^norm\.weight$/, "model.norm.weight"],
  [/^output\.weight$/, "lm_head.weight"],
  [/^layers\.(\d+)\.attention_norm\.weight$/, "model.layers.$1.input_layernorm.weight"],
  [/^layers\.(\d+)\.ffn_norm\.weight$/, "model.layers.$1.post_attention_layernorm.weight"],
  [/^layers\.(\d+)\.attention\.wq\.weight$/, "model.layers.$1.self_attn.q_proj.weight"],
  [/^layers\.(\d+)\.attention\.wk\.weight$/, "model.layers.$1.self_attn.k_proj.weight"],
  [/^layers\.(\d+)\.attention\.wv\.weight$/, "model.layers.$1.self_attn.v_proj.weight"],
  [/^layers\.(\d+)\.attention\.wo\.weight$/, "model.layers.$1.self_attn.o_proj.weight"],
  [/^layers\.(\d+)\.feed_forward\.w1\.weight$/, "model.layers.$1.mlp.gate_proj.weight"],
  [/^layers\.(\d+)\.feed_forward\.w2\.weight$/, "model.layers.$1.mlp.down_proj.weight"],
  [/^layers\.(\d+)\.feed_forward\.w3\.weight$/, "model.layers.$1.mlp.up_proj.weight"],
];

export function huggingFaceName(name: string): string {
  for (const [pattern, replacement] of RENAMES) if (pattern.test(name)) return name.replace(pattern, replacement);
  throw new Error(`no Hugging Face name for tensor ${name}`);
}

/** The architecture record of the generated model: untied classifier, as llama-shape.ts generates `output.weight`. */
export function llamaArchitecture(shape: LlamaShape, maxSeqLen = 1024): ModelArchitecture {
  return {
    family: "llama",
    dim: shape.dim,
    hidden_dim: shape.hidden,
    n_layers: shape.layers,
    n_heads: shape.heads,
    n_kv_heads: shape.heads,
    vocab_size: shape.vocab,
    max_seq_len: maxSeqLen,
    rope_theta: 10000,
    norm_eps: 1e-5,
    tie_embeddings: false,
    rope_layout: "half-split",
  };
}

/** The model's tensors in file order, each generated whole (F32) when it is reached. */
export function* llamaTensorData(plan: ModelPlan): Generator<TensorData> {
  for (const tensor of plan.tensors) {
    const values = new TensorValues(tensor, plan).next(Number.MAX_SAFE_INTEGER);
    yield { name: huggingFaceName(tensor.name), dtype: "F32", shape: [...tensor.shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  }
}

/** Three significant digits: enough to name a fitted parameter. */
export function shortNumber(value: number): string {
  return String(Number(value.toPrecision(3)));
}

/** One line naming every synthetic parameter of the weights. */
export function describeWeights(params: WeightParams, shape: LlamaShape): string {
  if (params.matrices || params.norms) return describePerKind(params, shape);
  const w = params;
  return (
    `weights (seed ${w.seed}): Gaussian (tails cut at ±4.3σ) × per-input-channel scale = ${w.std} × exp(${w.channelSigma}·N(0,1)); ` +
    `${w.outlierChannels} outlier channels per matrix × U(${w.outlierMin}, ${w.outlierMax}) (the same ${w.outlierChannels} residual-stream channels in every matrix with ${shape.dim} columns); ` +
    `RMSNorm weights exp(${w.normSigma}·N(0,1))`
  );
}

function describeOutliers(params: WeightParams, shape: LlamaShape): string {
  const n = params.outlierChannels;
  if (n === 0) return "no outlier channels";
  return `${n} outlier channels per matrix × U(${shortNumber(params.outlierMin)}, ${shortNumber(params.outlierMax)}) (the same ${n} residual-stream channels in every matrix with ${shape.dim} columns)`;
}

function describePerKind(params: WeightParams, shape: LlamaShape): string {
  const matrices = MATRIX_ROLES.map((role) => {
    const m = params.matrices?.[role];
    return m ? `${role} c ${shortNumber(m.stdTimesSqrtFanIn)} σ ${shortNumber(m.channelSigma)} p ${shortNumber(m.laplaceShare)}` : `${role} std ${params.std} σ ${params.channelSigma} Gaussian`;
  });
  const norms = NORM_ROLES.map((role) => {
    const n = params.norms?.[role];
    return n ? `${role} μ ${shortNumber(n.logMean)} σ ${shortNumber(n.sigma)}` : `${role} μ 0 σ ${params.normSigma}`;
  });
  return (
    `weights (seed ${params.seed}): per kind of matrix, std = c/sqrt(fan-in) (fan-in = columns: ${shape.dim}, or ${shape.hidden} for down), ` +
    `per-input-channel scale log-normal with σ (its mean square kept at std²), values a unit-variance Gaussian/Laplace mixture with Laplace share p (kurtosis 3+3p, tails cut at ±4.3σ Gaussian to ±7.8σ Laplace): ` +
    `${matrices.join(", ")}; ${describeOutliers(params, shape)}; RMSNorm weights exp(μ + σ·N(0,1)): ${norms.join(", ")}`
  );
}
