/**
 * A synthetic Llama-shaped model, generated as a safetensors byte stream on the fly: the header
 * first (every shape and offset is known up front), then each tensor's F32 values in offset order,
 * a few rows at a time, so that the model is never held in memory.
 *
 * The weights are deterministic pseudo-random values shaped like trained ones: each matrix column
 * (input channel) has its own scale, log-normally spread around a base standard deviation, and a
 * few outlier channels are 10-50 times larger. The outlier channels of the residual stream (the
 * `dim` columns) are the same in every matrix that reads it, as in trained transformers; the
 * feed-forward down projection (`hidden` columns) gets its own per tensor. RMSNorm weights are
 * log-normal around 1.
 */
import { Random } from "../../sdk/testing/random.js";

/** The architecture: stories110M is dim 768, hidden 2048, 12 heads, vocab 32000, 12 layers. */
export interface LlamaShape {
  dim: number;
  hidden: number;
  heads: number;
  vocab: number;
  layers: number;
}

export const STORIES110M: LlamaShape = { dim: 768, hidden: 2048, heads: 12, vocab: 32000, layers: 12 };

export type TensorKind = "embedding" | "matrix" | "norm";

/** One F32 tensor of the model, in file order. */
export interface TensorSpec {
  name: string;
  kind: TensorKind;
  /** [rows, cols] for matrices (rows = output channels, cols = input channels), [n] for norms. */
  shape: number[];
  byteLength: number;
}

const F32 = 4;

function spec(name: string, kind: TensorKind, shape: number[]): TensorSpec {
  return { name, kind, shape, byteLength: shape.reduce((a, b) => a * b, 1) * F32 };
}

/** The tensors of a Llama model in llama2.c / Meta naming, in the order they are stored. */
export function llamaTensors(shape: LlamaShape): TensorSpec[] {
  const { dim, hidden, vocab, layers } = shape;
  if (dim % shape.heads !== 0) throw new Error(`dim ${dim} is not a multiple of ${shape.heads} heads`);
  const tensors = [spec("tok_embeddings.weight", "embedding", [vocab, dim])];
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}.`;
    tensors.push(
      spec(`${p}attention_norm.weight`, "norm", [dim]),
      spec(`${p}attention.wq.weight`, "matrix", [dim, dim]),
      spec(`${p}attention.wk.weight`, "matrix", [dim, dim]),
      spec(`${p}attention.wv.weight`, "matrix", [dim, dim]),
      spec(`${p}attention.wo.weight`, "matrix", [dim, dim]),
      spec(`${p}ffn_norm.weight`, "norm", [dim]),
      spec(`${p}feed_forward.w1.weight`, "matrix", [hidden, dim]),
      spec(`${p}feed_forward.w2.weight`, "matrix", [dim, hidden]),
      spec(`${p}feed_forward.w3.weight`, "matrix", [hidden, dim]),
    );
  }
  tensors.push(spec("norm.weight", "norm", [dim]), spec("output.weight", "matrix", [vocab, dim]));
  return tensors;
}

/** Bytes of the tensor data (the header not included). */
export function dataBytes(tensors: readonly TensorSpec[]): number {
  return tensors.reduce((sum, t) => sum + t.byteLength, 0);
}

/** The fewest layers (at least one) for which the model's F32 data holds at least `targetBytes`. */
export function layersForBytes(base: Omit<LlamaShape, "layers">, targetBytes: number): number {
  const fixed = dataBytes(llamaTensors({ ...base, layers: 0 }));
  const perLayer = dataBytes(llamaTensors({ ...base, layers: 1 })) - fixed;
  return Math.max(1, Math.ceil((targetBytes - fixed) / perLayer));
}

/**
 * The safetensors header: 8-byte little-endian length, then compact JSON (`__metadata__` first,
 * then the tensors in data order, each `{"dtype","shape","data_offsets"}`) padded with spaces to a
 * multiple of 8 bytes, as the safetensors library writes it.
 */
export function safetensorsHeader(tensors: readonly TensorSpec[], metadata: Record<string, string> = {}): Uint8Array {
  const members: string[] = [];
  if (Object.keys(metadata).length > 0) members.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const t of tensors) {
    members.push(`${JSON.stringify(t.name)}:{"dtype":"F32","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${offset + t.byteLength}]}`);
    offset += t.byteLength;
  }
  const json = new TextEncoder().encode(`{${members.join(",")}}`);
  const length = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + length).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.set(json, 8);
  return out;
}

/** The knobs of the synthetic values; all are printed by the bench. */
export interface WeightParams {
  seed: number;
  /** Base standard deviation of matrix and embedding values. */
  std: number;
  /** σ of the log-normal spread of column scales around `std`. */
  channelSigma: number;
  /** Outlier input channels per matrix. */
  outlierChannels: number;
  /** Range of the outlier channels' extra factor, drawn uniformly per tensor and channel. */
  outlierMin: number;
  outlierMax: number;
  /** σ of the log-normal RMSNorm weights (median 1). */
  normSigma: number;
}

export const DEFAULT_WEIGHTS: WeightParams = { seed: 1, std: 0.02, channelSigma: 0.3, outlierChannels: 4, outlierMin: 10, outlierMax: 50, normSigma: 0.3 };

/** Entries of the Gaussian quantile table, interpolated linearly between neighbours. */
const TABLE_BITS = 16;
let gaussianTable: Float64Array | undefined;

/**
 * Φ⁻¹ at 2^16 + 1 evenly spaced probabilities (k + 0.5) / (2^16 + 1): the top 16 bits of a random
 * word pick an interval, the low 16 bits a point inside it, so one 32-bit draw gives one Gaussian
 * value (tails cut at about ±4.3σ) with a full mantissa, without a logarithm per value.
 */
function gaussianQuantiles(): Float64Array {
  if (gaussianTable) return gaussianTable;
  const n = (1 << TABLE_BITS) + 1;
  const table = new Float64Array(n);
  for (let k = 0; k < n; k++) table[k] = inverseNormal((k + 0.5) / n);
  gaussianTable = table;
  return table;
}

/** Acklam's rational approximation of Φ⁻¹, relative error below 1.2e-9. */
export function inverseNormal(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  if (!(p > 0 && p < 1)) throw new Error(`inverseNormal: p = ${p} is not in (0, 1)`);
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - low) return -inverseNormal(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** A 32-bit seed from a string and a number (FNV-1a), so each tensor has its own stream. */
function seedOf(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h === 0 ? 0x9e3779b9 : h;
}

/** The `outlierChannels` distinct channels of `cols`, drawn from `random`. */
function pickChannels(random: Random, cols: number, count: number): number[] {
  const picked = new Set<number>();
  while (picked.size < Math.min(count, cols)) picked.add(random.int(cols));
  return [...picked].sort((x, y) => x - y);
}

/** What a model's tensors share: the outlier channels of the residual stream. */
export interface ModelPlan {
  shape: LlamaShape;
  params: WeightParams;
  tensors: TensorSpec[];
  /** Outlier channels of the `dim` columns, shared by every matrix whose input is the residual stream. */
  residualOutliers: number[];
}

export function planModel(shape: LlamaShape, params: WeightParams = DEFAULT_WEIGHTS): ModelPlan {
  const random = new Random(seedOf("residual outliers", params.seed));
  return { shape, params, tensors: llamaTensors(shape), residualOutliers: pickChannels(random, shape.dim, params.outlierChannels) };
}

/**
 * The values of one tensor, produced row by row in storage order. Deterministic: the same plan
 * and tensor give the same values however the rows are split between calls.
 */
export class TensorValues {
  readonly rows: number;
  readonly cols: number;
  /** Per-column scale (standard deviation) of a matrix; for a norm, σ of the log-normal values. */
  readonly columnScale: Float64Array;
  /** The outlier columns and their factors (matrices only). */
  readonly outliers: { channel: number; factor: number }[] = [];
  private state: number;
  private row = 0;

  constructor(
    readonly tensor: TensorSpec,
    plan: ModelPlan,
  ) {
    const { params } = plan;
    const shape = tensor.shape;
    this.rows = shape.length === 1 ? 1 : shape[0];
    this.cols = shape[shape.length - 1];
    const random = new Random(seedOf(tensor.name, params.seed));
    this.columnScale = new Float64Array(this.cols);
    if (tensor.kind === "norm") {
      this.columnScale.fill(params.normSigma);
    } else {
      for (let j = 0; j < this.cols; j++) this.columnScale[j] = params.std * Math.exp(params.channelSigma * random.gaussian());
      const channels = this.cols === plan.shape.dim ? plan.residualOutliers : pickChannels(random, this.cols, params.outlierChannels);
      for (const channel of channels) {
        const factor = params.outlierMin + (params.outlierMax - params.outlierMin) * random.next();
        this.columnScale[channel] *= factor;
        this.outliers.push({ channel, factor });
      }
    }
    this.state = random.uint32() || 1;
  }

  get rowsLeft(): number {
    return this.rows - this.row;
  }

  /** The next `rows` rows (fewer at the end), as a new buffer. */
  next(rows: number): Float32Array {
    const count = Math.min(rows, this.rowsLeft);
    const out = new Float32Array(count * this.cols);
    this.fill(out);
    this.row += count;
    return out;
  }

  private fill(out: Float32Array): void {
    const table = gaussianQuantiles();
    const scale = this.columnScale;
    const cols = this.cols;
    const norm = this.tensor.kind === "norm";
    let x = this.state;
    let k = 0;
    while (k < out.length) {
      for (let j = 0; j < cols; j++, k++) {
        // xorshift32: three shifts per value; its period, 2^32 - 1, is far above any tensor's size.
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const u = x >>> 0;
        const i = u >>> 16;
        const lo = table[i];
        const z = lo + (table[i + 1] - lo) * (u & 0xffff) * (1 / 65536);
        out[k] = norm ? Math.exp(scale[j] * z) : z * scale[j];
      }
    }
    this.state = x;
  }
}

/** Rows per data chunk: about `chunkBytes` of whole rows, at least one. */
export function rowsPerChunk(cols: number, chunkBytes: number): number {
  return Math.max(1, Math.floor(chunkBytes / (cols * F32)));
}

/** The model's metadata, stored in the safetensors header and carried through QANS. */
export function modelMetadata(plan: ModelPlan): Record<string, string> {
  const { shape, params } = plan;
  return {
    format: "pt",
    generator: "qans bench/lib/llama-shape.ts",
    dim: String(shape.dim),
    hidden_dim: String(shape.hidden),
    n_heads: String(shape.heads),
    n_layers: String(shape.layers),
    vocab_size: String(shape.vocab),
    seed: String(params.seed),
  };
}

/**
 * The whole safetensors file as a sequence of chunks: the header, then every tensor's bytes in
 * offset order, about `chunkBytes` (whole rows) at a time, each chunk in a new buffer.
 */
export function* safetensorsChunks(plan: ModelPlan, chunkBytes = 1 << 20): Generator<Uint8Array> {
  yield safetensorsHeader(plan.tensors, modelMetadata(plan));
  for (const tensor of plan.tensors) {
    const values = new TensorValues(tensor, plan);
    const rows = rowsPerChunk(values.cols, chunkBytes);
    while (values.rowsLeft > 0) {
      const chunk = values.next(rows);
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  }
}
