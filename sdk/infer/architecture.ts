import { QansError } from "../errors.js";
import type { ModelArchitecture } from "../tensor/tensor.js";

/** The model-architecture record of a Llama-family decoder (spec §6.2), checked. */
export interface LlamaArchitecture {
  family: "llama";
  dim: number;
  hidden_dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  vocab_size: number;
  max_seq_len: number;
  rope_theta: number;
  norm_eps: number;
  tie_embeddings: boolean;
  rope_layout: "half-split";
}

/** Sizes that follow from the record, computed once. */
export interface LlamaShape {
  headSize: number;
  kvDim: number;
  /** Query heads per key/value head. */
  groupSize: number;
}

const INTEGER_MEMBERS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "max_seq_len"] as const;

/** Every integer member is at most this, so that products of two stay exact and arrays stay allocatable. */
const MAX_INTEGER = 2 ** 24;

/**
 * Checks a file's architecture record as a Llama decoder's. A missing record or another family is
 * INVALID_ARGUMENT (the file is valid, it just does not describe a model this engine runs); a llama
 * record with a missing or ill-typed member, or sizes that do not fit together, is BAD_METADATA.
 */
export function parseLlamaArchitecture(architecture: ModelArchitecture | LlamaArchitecture | undefined, where: string): LlamaArchitecture {
  const record = architecture as ModelArchitecture | undefined;
  if (record === undefined) {
    throw new QansError("INVALID_ARGUMENT", `${where} has no model-architecture record (spec §6.2), so it cannot be run; pack it from a source that carries one, such as a llama2.c checkpoint`);
  }
  if (record.family !== "llama") {
    throw new QansError("INVALID_ARGUMENT", `${where}: architecture family "${record.family}" is not supported; only "llama" is`);
  }
  const at = `${where}: architecture record`;
  for (const member of INTEGER_MEMBERS) {
    const value = record[member];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > MAX_INTEGER) {
      throw new QansError("BAD_METADATA", `${at}: "${member}" must be an integer from 1 to ${MAX_INTEGER}, got ${JSON.stringify(value)}`);
    }
  }
  for (const member of ["rope_theta", "norm_eps"] as const) {
    const value = record[member];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new QansError("BAD_METADATA", `${at}: "${member}" must be a positive number, got ${JSON.stringify(value)}`);
    }
  }
  if (typeof record.tie_embeddings !== "boolean") {
    throw new QansError("BAD_METADATA", `${at}: "tie_embeddings" must be a boolean, got ${JSON.stringify(record.tie_embeddings)}`);
  }
  if (record.rope_layout !== "half-split") {
    throw new QansError("BAD_METADATA", `${at}: "rope_layout" must be "half-split", got ${JSON.stringify(record.rope_layout)}`);
  }
  const checked = record as unknown as LlamaArchitecture;
  const { dim, n_heads, n_kv_heads } = checked;
  if (dim % n_heads !== 0) throw new QansError("BAD_METADATA", `${at}: dim ${dim} is not a multiple of n_heads ${n_heads}`);
  if (n_heads % n_kv_heads !== 0) throw new QansError("BAD_METADATA", `${at}: n_heads ${n_heads} is not a multiple of n_kv_heads ${n_kv_heads}`);
  // Rotary embeddings turn pairs of components, so a head needs an even size.
  if ((dim / n_heads) % 2 !== 0) throw new QansError("BAD_METADATA", `${at}: head size ${dim / n_heads} is odd`);
  return {
    family: "llama",
    dim,
    hidden_dim: checked.hidden_dim,
    n_layers: checked.n_layers,
    n_heads,
    n_kv_heads,
    vocab_size: checked.vocab_size,
    max_seq_len: checked.max_seq_len,
    rope_theta: checked.rope_theta,
    norm_eps: checked.norm_eps,
    tie_embeddings: checked.tie_embeddings,
    rope_layout: "half-split",
  };
}

export function llamaShape(architecture: LlamaArchitecture): LlamaShape {
  const headSize = architecture.dim / architecture.n_heads;
  return { headSize, kvDim: headSize * architecture.n_kv_heads, groupSize: architecture.n_heads / architecture.n_kv_heads };
}

/** A weight matrix of the model: its Hugging Face name and its [rows, cols] shape. */
export interface MatrixSpec {
  name: string;
  rows: number;
  cols: number;
}

/** Names of one decoder layer's matrices and norms. */
export interface LayerNames {
  inputNorm: string;
  q: string;
  k: string;
  v: string;
  o: string;
  postAttentionNorm: string;
  gate: string;
  up: string;
  down: string;
}

export const EMBEDDING_NAME = "model.embed_tokens.weight";
export const FINAL_NORM_NAME = "model.norm.weight";
export const CLASSIFIER_NAME = "lm_head.weight";

export function layerNames(layer: number): LayerNames {
  const prefix = `model.layers.${layer}.`;
  return {
    inputNorm: `${prefix}input_layernorm.weight`,
    q: `${prefix}self_attn.q_proj.weight`,
    k: `${prefix}self_attn.k_proj.weight`,
    v: `${prefix}self_attn.v_proj.weight`,
    o: `${prefix}self_attn.o_proj.weight`,
    postAttentionNorm: `${prefix}post_attention_layernorm.weight`,
    gate: `${prefix}mlp.gate_proj.weight`,
    up: `${prefix}mlp.up_proj.weight`,
    down: `${prefix}mlp.down_proj.weight`,
  };
}

/** The name of the classifier's weight: `lm_head.weight`, or the embedding when they are tied. */
export function classifierName(architecture: LlamaArchitecture): string {
  return architecture.tie_embeddings ? EMBEDDING_NAME : CLASSIFIER_NAME;
}

/**
 * Every matrix the model multiplies by, with the shape the record implies, in the order of a
 * forward pass: the embedding, each layer's q, k, v, o, gate, up, down, then the classifier when it
 * is not the embedding.
 */
export function matrixSpecs(architecture: LlamaArchitecture): MatrixSpec[] {
  const { dim, hidden_dim, vocab_size } = architecture;
  const { kvDim } = llamaShape(architecture);
  const specs: MatrixSpec[] = [{ name: EMBEDDING_NAME, rows: vocab_size, cols: dim }];
  for (let layer = 0; layer < architecture.n_layers; layer++) {
    const names = layerNames(layer);
    specs.push(
      { name: names.q, rows: dim, cols: dim },
      { name: names.k, rows: kvDim, cols: dim },
      { name: names.v, rows: kvDim, cols: dim },
      { name: names.o, rows: dim, cols: dim },
      { name: names.gate, rows: hidden_dim, cols: dim },
      { name: names.up, rows: hidden_dim, cols: dim },
      { name: names.down, rows: dim, cols: hidden_dim },
    );
  }
  if (!architecture.tie_embeddings) specs.push({ name: CLASSIFIER_NAME, rows: vocab_size, cols: dim });
  return specs;
}

/** Every norm weight vector (length `dim`) of the model. */
export function normNames(architecture: LlamaArchitecture): string[] {
  const names: string[] = [];
  for (let layer = 0; layer < architecture.n_layers; layer++) {
    const layerNorms = layerNames(layer);
    names.push(layerNorms.inputNorm, layerNorms.postAttentionNorm);
  }
  names.push(FINAL_NORM_NAME);
  return names;
}

/**
 * Checks that a tensor of the file has the shape the record implies: BAD_INPUT naming both shapes
 * otherwise, since a file whose tensors contradict its own record is malformed.
 */
export function checkTensorShape(name: string, actual: readonly number[], expected: readonly number[], where: string): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new QansError("BAD_INPUT", `${where}: tensor ${name} has shape [${actual.join(", ")}], the architecture record implies [${expected.join(", ")}]`);
  }
}

/**
 * Checks that a model's tensors hold every matrix and norm the record implies, each with the shape
 * it implies: NOT_FOUND for a missing one, BAD_INPUT for a wrong shape. Other tensors may be there.
 */
export function checkWeightShapes(architecture: LlamaArchitecture, shapeOf: (name: string) => readonly number[] | undefined, where: string): void {
  const expected: [string, number[]][] = [
    ...matrixSpecs(architecture).map((spec): [string, number[]] => [spec.name, [spec.rows, spec.cols]]),
    ...normNames(architecture).map((name): [string, number[]] => [name, [architecture.dim]]),
  ];
  for (const [name, shape] of expected) {
    const actual = shapeOf(name);
    if (actual === undefined) throw new QansError("NOT_FOUND", `${where}: no tensor named "${name}"`);
    checkTensorShape(name, actual, shape, where);
  }
}

/** Bytes the model's weights take fully decoded to F32: every matrix and norm the record implies. */
export function decodedWeightBytes(architecture: LlamaArchitecture): number {
  const matrices = matrixSpecs(architecture).reduce((sum, spec) => sum + spec.rows * spec.cols, 0);
  return (matrices + normNames(architecture).length * architecture.dim) * 4;
}
