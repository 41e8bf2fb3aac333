import { stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { QansError } from "../errors.js";
import { checkWeightShapes, parseLlamaArchitecture, type LlamaArchitecture } from "../infer/architecture.js";
import { readSmallFile } from "../io/source.js";
import { decodeUtf8Strict, isJsonObject, parseStrictJson, stringifyJson, type JsonObject, type JsonValue } from "../json/strict-json.js";

/** The name Hugging Face gives a model's configuration, in the folder of its weights. */
export const HF_CONFIG_FILE = "config.json";

/** A config.json is a few kilobytes; a label map can make it larger, never near this. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Whether a Hugging Face config.json describes a Llama model (it may still use features the decoder lacks). */
export function isLlamaConfig(config: JsonObject): boolean {
  const architectures = config.architectures;
  return config.model_type === "llama" || (Array.isArray(architectures) && architectures.includes("LlamaForCausalLM"));
}

/**
 * The model-architecture record (spec §6.2) of a Hugging Face Llama config.json. Hugging Face
 * checkpoints keep q/k rows in rotate-half order, so the record says "half-split". Everything the
 * reference decoder does not implement is refused with BAD_INPUT naming `where` and the member:
 * another model type, scaled RoPE, an activation other than SiLU, a head size other than
 * hidden_size / num_attention_heads, and biases on attention or feed-forward projections.
 */
export function architectureFromHfConfig(json: JsonValue, where: string): LlamaArchitecture {
  if (!isJsonObject(json)) throw new QansError("BAD_INPUT", `${where}: not a JSON object`);
  const config = json;
  if (!isLlamaConfig(config)) {
    const modelType = config.model_type === undefined ? "missing" : stringifyJson(config.model_type);
    throw new QansError("BAD_INPUT", `${where}: "model_type" is ${modelType}, not "llama", and "architectures" does not list LlamaForCausalLM`);
  }
  const refuse = (member: string, why: string): never => {
    const found = config[member] === undefined ? "missing" : stringifyJson(config[member]);
    throw new QansError("BAD_INPUT", `${where}: "${member}" is ${found}; ${why}`);
  };
  const integer = (member: string): number => {
    const value = config[member];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) refuse(member, "a positive integer is required");
    return value as number;
  };
  const positive = (member: string): number => {
    const value = config[member];
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) refuse(member, "a positive number is required");
    return value as number;
  };
  // Hugging Face's LlamaConfig defaults these members when they are absent or null.
  const given = (member: string) => config[member] !== undefined && config[member] !== null;
  const flag = (member: string, fallback: boolean): boolean => {
    if (!given(member)) return fallback;
    if (typeof config[member] !== "boolean") refuse(member, "a boolean is required");
    return config[member] as boolean;
  };

  const dim = integer("hidden_size");
  const nHeads = integer("num_attention_heads");
  if (given("hidden_act") && config.hidden_act !== "silu") refuse("hidden_act", 'the decoder implements only "silu" (SwiGLU)');
  if (given("rope_scaling")) refuse("rope_scaling", "the decoder implements only unscaled RoPE");
  if (given("head_dim") && config.head_dim !== dim / nHeads) refuse("head_dim", `the decoder needs hidden_size / num_attention_heads = ${dim / nHeads}`);
  for (const member of ["attention_bias", "mlp_bias"]) if (flag(member, false)) refuse(member, "the decoder has no projection biases");
  const ropeTheta = given("rope_parameters") ? ropeParametersTheta(config, refuse) : undefined;

  const record = {
    family: "llama",
    dim,
    hidden_dim: integer("intermediate_size"),
    n_layers: integer("num_hidden_layers"),
    n_heads: nHeads,
    n_kv_heads: given("num_key_value_heads") ? integer("num_key_value_heads") : nHeads,
    vocab_size: integer("vocab_size"),
    max_seq_len: integer("max_position_embeddings"),
    rope_theta: ropeTheta ?? (given("rope_theta") ? positive("rope_theta") : 10000),
    norm_eps: positive("rms_norm_eps"),
    tie_embeddings: flag("tie_word_embeddings", false),
    rope_layout: "half-split",
  };
  try {
    // The record's own rules (limits, heads dividing the width, an even head size) in one place.
    return parseLlamaArchitecture(record, where);
  } catch (error) {
    if (error instanceof QansError) throw new QansError("BAD_INPUT", error.message, { cause: error });
    throw error;
  }
}

/**
 * Newer Hugging Face configs hold RoPE's settings in `rope_parameters` instead of `rope_theta`
 * and `rope_scaling`: only the default rope type, with nothing but its base, is plain RoPE.
 */
function ropeParametersTheta(config: JsonObject, refuse: (member: string, why: string) => never): number | undefined {
  const parameters = config.rope_parameters;
  const plain = isJsonObject(parameters) && (parameters.rope_type ?? "default") === "default" && Object.keys(parameters).every((key) => key === "rope_type" || key === "rope_theta");
  if (!plain) refuse("rope_parameters", 'the decoder implements only unscaled RoPE (rope_type "default" with rope_theta)');
  const theta = (parameters as JsonObject).rope_theta;
  if (theta === undefined) return undefined;
  if (typeof theta !== "number" || !(theta > 0) || !Number.isFinite(theta)) refuse("rope_parameters", "its rope_theta must be a positive number");
  if (config.rope_theta !== undefined && config.rope_theta !== null && config.rope_theta !== theta) refuse("rope_parameters", `its rope_theta contradicts "rope_theta" ${JSON.stringify(config.rope_theta)}`);
  return theta as number;
}

/** Reads a config.json with the strict JSON rules and a size cap. */
export async function readHfConfig(path: string): Promise<JsonObject> {
  const text = decodeUtf8Strict(await readSmallFile(path, MAX_CONFIG_BYTES, "model configuration"), path);
  const json = parseStrictJson(text, path, "BAD_INPUT");
  if (!isJsonObject(json)) throw new QansError("BAD_INPUT", `${path}: not a JSON object`);
  return json;
}

export interface HfConfigOptions {
  /**
   * Called with the error when the config.json beside the weights is a Llama config the decoder
   * cannot run, cannot be read, or contradicts the tensors; the model then has no architecture
   * record. Without it, such a config is an error: what running a model needs.
   */
  onConfigProblem?: (problem: QansError) => void;
}

/**
 * The architecture record of the Hugging Face model whose weights file (a .safetensors file or
 * index) is `weightsPath`, from the config.json in the same folder, checked against the tensors'
 * shapes (`shapeOf`). Undefined when there is no config.json, or when it describes another
 * model type: such weights pack as they are, without a record.
 */
export async function hfArchitectureBeside(
  weightsPath: string,
  shapeOf: (name: string) => readonly number[] | undefined,
  options: HfConfigOptions = {},
): Promise<LlamaArchitecture | undefined> {
  const path = join(dirname(weightsPath), HF_CONFIG_FILE);
  const isFile = await stat(path).then(
    (stats) => stats.isFile(),
    () => false,
  );
  if (!isFile) return undefined;
  try {
    const config = await readHfConfig(path);
    if (!isLlamaConfig(config)) return undefined;
    const architecture = architectureFromHfConfig(config, path);
    checkWeightShapes(architecture, shapeOf, `${path} against ${weightsPath}`);
    return architecture;
  } catch (error) {
    if (!(error instanceof QansError) || options.onConfigProblem === undefined) throw error;
    options.onConfigProblem(error);
    return undefined;
  }
}
