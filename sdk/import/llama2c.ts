import { QansError } from "../errors.js";
import { withFile } from "../io/source.js";
import type { ImportedModel, ModelArchitecture, TensorData } from "../tensor/tensor.js";

const HEADER_BYTES = 28;
const FLOAT_BYTES = 4;
const MAX_DIM = 2 ** 20;
const HEADER_FIELDS = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] as const;

export interface Llama2cConfig {
  dim: number;
  hidden_dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  /** Always positive; `shared` tells whether the classifier reuses the embedding. */
  vocab_size: number;
  seq_len: number;
  shared: boolean;
}

/** Parses and validates the seven-int32 header; every value is checked before it sizes anything. */
export function parseLlama2cHeader(header: Uint8Array, where: string): Llama2cConfig {
  if (header.byteLength < HEADER_BYTES) {
    throw new QansError("TRUNCATED", `${where}: ${header.byteLength} bytes, too short for the ${HEADER_BYTES}-byte llama2.c header`);
  }
  const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  const raw = HEADER_FIELDS.map((_, i) => view.getInt32(i * 4, true));
  const shared = raw[5] > 0;
  const values = raw.map((v, i) => (i === 5 ? Math.abs(v) : v));
  values.forEach((value, i) => {
    const at = `${where}: header ${HEADER_FIELDS[i]} (offset ${i * 4})`;
    if (value <= 0) throw new QansError("BAD_HEADER", `${at} is ${raw[i]}, must be ${i === 5 ? "non-zero" : "positive"}`);
    if (value > MAX_DIM) throw new QansError("LIMIT_EXCEEDED", `${at} is ${raw[i]}, more than 2^20`);
  });
  const [dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len] = values;
  if (dim % n_heads !== 0) throw new QansError("BAD_HEADER", `${where}: dim ${dim} is not a multiple of n_heads ${n_heads}`);
  if (n_heads % n_kv_heads !== 0) {
    throw new QansError("BAD_HEADER", `${where}: n_heads ${n_heads} is not a multiple of n_kv_heads ${n_kv_heads}`);
  }
  // Rotary embeddings rotate pairs of components, so each head needs an even size.
  if ((dim / n_heads) % 2 !== 0) throw new QansError("BAD_HEADER", `${where}: head size ${dim / n_heads} is odd`);
  return { dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared };
}

/**
 * One array of the checkpoint: a tensor of `shape`, stacked once per layer when `layered`.
 * `name` is the Hugging Face name (the per-layer suffix when layered); null marks an array that is
 * skipped because it can be derived (freq_cis).
 */
interface Section {
  name: string | null;
  layered: boolean;
  shape: number[];
  /** Set for q/k projections: the head count whose rows need the rotary permutation. */
  rotaryHeads?: number;
}

/** The file's arrays in order. */
function sections(c: Llama2cConfig): Section[] {
  const kvDim = (c.dim * c.n_kv_heads) / c.n_heads;
  const half = c.dim / c.n_heads / 2;
  const layer = (name: string, shape: number[], rotaryHeads?: number): Section => ({ name, layered: true, shape, rotaryHeads });
  const single = (name: string | null, shape: number[]): Section => ({ name, layered: false, shape });
  const list: Section[] = [
    single("model.embed_tokens.weight", [c.vocab_size, c.dim]),
    layer("input_layernorm.weight", [c.dim]),
    layer("self_attn.q_proj.weight", [c.dim, c.dim], c.n_heads),
    layer("self_attn.k_proj.weight", [kvDim, c.dim], c.n_kv_heads),
    layer("self_attn.v_proj.weight", [kvDim, c.dim]),
    layer("self_attn.o_proj.weight", [c.dim, c.dim]),
    layer("post_attention_layernorm.weight", [c.dim]),
    layer("mlp.gate_proj.weight", [c.hidden_dim, c.dim]),
    layer("mlp.down_proj.weight", [c.dim, c.hidden_dim]),
    layer("mlp.up_proj.weight", [c.hidden_dim, c.dim]),
    single("model.norm.weight", [c.dim]),
    single(null, [c.seq_len, half]),
    single(null, [c.seq_len, half]),
  ];
  if (!c.shared) list.push(single("lm_head.weight", [c.vocab_size, c.dim]));
  return list;
}

/** The exact file size the header implies, computed in BigInt so that no product can round. */
export function llama2cFileSize(c: Llama2cConfig): bigint {
  let floats = 0n;
  for (const { layered, shape } of sections(c)) {
    floats += BigInt(layered ? c.n_layers : 1) * shape.reduce((p, d) => p * BigInt(d), 1n);
  }
  return BigInt(HEADER_BYTES) + floats * BigInt(FLOAT_BYTES);
}

/**
 * Reorders the rows of a q/k projection from llama2.c's interleaved rotary layout to Hugging
 * Face's half-split one: view [heads, headSize/2, 2, cols], swap the middle axes. Bytes are moved,
 * never recomputed, so the result is bit-exact.
 */
export function permuteRotaryRows(data: Uint8Array, heads: number, headSize: number, rowBytes: number): Uint8Array {
  const out = new Uint8Array(data.byteLength);
  const half = headSize / 2;
  for (let h = 0; h < heads; h++) {
    for (let p = 0; p < half; p++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * headSize + 2 * p + t) * rowBytes;
        const to = (h * headSize + t * half + p) * rowBytes;
        out.set(data.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}

/**
 * Imports a llama2.c checkpoint as Hugging Face-named F32 tensors, in file order (each array for
 * all layers, then the next), so the file is read front to back.
 */
export async function importLlama2c(path: string): Promise<ImportedModel> {
  return withFile(path, async (file) => {
    const config = parseLlama2cHeader(await file.read(0, Math.min(HEADER_BYTES, file.size), "header"), path);
    const expected = llama2cFileSize(config);
    const actual = BigInt(file.size);
    if (actual < expected) throw new QansError("TRUNCATED", `${path}: file has ${actual} bytes but its header implies ${expected}`);
    if (actual > expected) throw new QansError("BAD_INPUT", `${path}: file has ${actual} bytes but its header implies ${expected}; ${actual - expected} extra bytes`);

    const headSize = config.dim / config.n_heads;
    const tensors: TensorData[] = [];
    let offset = HEADER_BYTES;
    for (const section of sections(config)) {
      const { shape } = section;
      const bytes = shape.reduce((p, d) => p * d, FLOAT_BYTES);
      if (section.name === null) {
        offset += bytes;
        continue;
      }
      for (let i = 0; i < (section.layered ? config.n_layers : 1); i++) {
        const name = section.layered ? `model.layers.${i}.${section.name}` : section.name;
        let data = await file.read(offset, bytes, `${name} at offset ${offset}`);
        if (section.rotaryHeads !== undefined) data = permuteRotaryRows(data, section.rotaryHeads, headSize, shape[1] * FLOAT_BYTES);
        tensors.push({ name, dtype: "F32", shape: [...shape], data });
        offset += bytes;
      }
    }
    const architecture: ModelArchitecture = {
      family: "llama",
      dim: config.dim,
      hidden_dim: config.hidden_dim,
      n_layers: config.n_layers,
      n_heads: config.n_heads,
      n_kv_heads: config.n_kv_heads,
      vocab_size: config.vocab_size,
      max_seq_len: config.seq_len,
      rope_theta: 10000,
      norm_eps: 1e-5,
      tie_embeddings: config.shared,
      rope_layout: "half-split",
    };
    return { metadata: { source_format: "llama2c" }, architecture, tensors };
  });
}
