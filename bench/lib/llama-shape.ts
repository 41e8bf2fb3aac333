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
 *
 * Optional per-kind parameters (`WeightParams.matrices`, `.norms`) replace the global ones for the
 * kinds they name: a standard deviation c / sqrt(fan-in) per kind of matrix, its own column spread,
 * a heavier-than-Gaussian tail (a Gaussian/Laplace mixture) and log-normal norms with their own
 * median. Without them the values are those of the global parameters, byte for byte.
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

/** What a matrix does in the model; the classifier is the untied `output.weight`. */
export type MatrixRole = "embedding" | "q" | "k" | "v" | "o" | "gate" | "up" | "down" | "classifier";
export const MATRIX_ROLES: readonly MatrixRole[] = ["embedding", "q", "k", "v", "o", "gate", "up", "down", "classifier"];
/** Which RMSNorm a weight vector belongs to: before attention, before the feed-forward, or final. */
export type NormRole = "attention" | "ffn" | "final";
export const NORM_ROLES: readonly NormRole[] = ["attention", "ffn", "final"];

/** One F32 tensor of the model, in file order. */
export interface TensorSpec {
  name: string;
  kind: TensorKind;
  role: MatrixRole | NormRole;
  /** [rows, cols] for matrices (rows = output channels, cols = input channels), [n] for norms. */
  shape: number[];
  byteLength: number;
}

const F32 = 4;

function spec(name: string, kind: TensorKind, role: MatrixRole | NormRole, shape: number[]): TensorSpec {
  return { name, kind, role, shape, byteLength: shape.reduce((a, b) => a * b, 1) * F32 };
}

/** The tensors of a Llama model in llama2.c / Meta naming, in the order they are stored. */
export function llamaTensors(shape: LlamaShape): TensorSpec[] {
  const { dim, hidden, vocab, layers } = shape;
  if (dim % shape.heads !== 0) throw new Error(`dim ${dim} is not a multiple of ${shape.heads} heads`);
  const tensors = [spec("tok_embeddings.weight", "embedding", "embedding", [vocab, dim])];
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}.`;
    tensors.push(
      spec(`${p}attention_norm.weight`, "norm", "attention", [dim]),
      spec(`${p}attention.wq.weight`, "matrix", "q", [dim, dim]),
      spec(`${p}attention.wk.weight`, "matrix", "k", [dim, dim]),
      spec(`${p}attention.wv.weight`, "matrix", "v", [dim, dim]),
      spec(`${p}attention.wo.weight`, "matrix", "o", [dim, dim]),
      spec(`${p}ffn_norm.weight`, "norm", "ffn", [dim]),
      spec(`${p}feed_forward.w1.weight`, "matrix", "gate", [hidden, dim]),
      spec(`${p}feed_forward.w2.weight`, "matrix", "down", [dim, hidden]),
      spec(`${p}feed_forward.w3.weight`, "matrix", "up", [hidden, dim]),
    );
  }
  tensors.push(spec("norm.weight", "norm", "final", [dim]), spec("output.weight", "matrix", "classifier", [vocab, dim]));
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

/** One kind of matrix's values: column scales c / sqrt(fan-in) spread log-normally, and a tail shape. */
export interface MatrixParams {
  /** The matrix's standard deviation (outlier channels aside) times sqrt(fan-in), fan-in = columns. */
  stdTimesSqrtFanIn: number;
  /** σ of the log-normal spread of column scales. */
  channelSigma: number;
  /**
   * Share p of the Laplace component in a Gaussian/Laplace mixture of equal (unit) variance: the
   * kurtosis of a column's values is 3(1 − p) + 6p. 0 is the plain Gaussian.
   */
  laplaceShare: number;
}

/** One kind of RMSNorm weight vector: exp(logMean + sigma·N(0,1)). */
export interface NormParams {
  logMean: number;
  sigma: number;
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
  /** Per-kind matrix parameters; a kind not named here uses `std` and `channelSigma`, Gaussian. */
  matrices?: Partial<Record<MatrixRole, MatrixParams>>;
  /** Per-kind norm parameters; a kind not named here uses median 1 and `normSigma`. */
  norms?: Partial<Record<NormRole, NormParams>>;
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

const mixtureTables = new Map<number, Float64Array>();

/**
 * The quantile table of the Gaussian/Laplace mixture of unit variance with Laplace share p, at the
 * probabilities of `gaussianQuantiles`, so that drawing from it costs what drawing a Gaussian does.
 * Built once per p by inverting the mixture's CDF numerically; p = 0 is the Gaussian table itself.
 */
export function mixtureQuantiles(laplaceShare: number): Float64Array {
  if (!(laplaceShare >= 0 && laplaceShare <= 1)) throw new Error(`mixtureQuantiles: Laplace share ${laplaceShare} is not in [0, 1]`);
  if (laplaceShare === 0) return gaussianQuantiles();
  const cached = mixtureTables.get(laplaceShare);
  if (cached) return cached;
  const n = (1 << TABLE_BITS) + 1;
  const table = new Float64Array(n);
  // The table is odd-symmetric: solve the lower half, mirror it.
  for (let k = 0; k < n >> 1; k++) {
    const q = (k + 0.5) / n;
    // A mixture's quantile lies between its components' quantiles, which bracket the root.
    const gaussian = inverseNormal(q);
    const laplace = Math.log(2 * q) / Math.SQRT2;
    let lo = Math.min(gaussian, laplace);
    let hi = Math.max(gaussian, laplace);
    for (let i = 0; i < 60 && hi - lo > 1e-13; i++) {
      const mid = 0.5 * (lo + hi);
      if (mixtureCdf(mid, laplaceShare) < q) lo = mid;
      else hi = mid;
    }
    table[k] = 0.5 * (lo + hi);
    table[n - 1 - k] = -table[k];
  }
  table[n >> 1] = 0;
  mixtureTables.set(laplaceShare, table);
  return table;
}

/** CDF of (1 − p)·N(0, 1) + p·Laplace(0, 1/√2), both of unit variance, for x ≤ 0. */
function mixtureCdf(x: number, laplaceShare: number): number {
  return (1 - laplaceShare) * 0.5 * erfc(-x / Math.SQRT2) + laplaceShare * 0.5 * Math.exp(Math.SQRT2 * x);
}

/** The complementary error function (Chebyshev fit, relative error below 1.2e-7 everywhere). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
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
  /** The quantile table the values are drawn from: the tail shape of the tensor's kind. */
  private readonly quantiles: Float64Array = gaussianQuantiles();
  /** Norms only: the log of the median weight. */
  private readonly logOffset: number = 0;
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
      const norm = params.norms?.[tensor.role as NormRole];
      this.columnScale.fill(norm ? norm.sigma : params.normSigma);
      this.logOffset = norm ? norm.logMean : 0;
    } else {
      const matrix = params.matrices?.[tensor.role as MatrixRole];
      if (matrix) {
        this.quantiles = mixtureQuantiles(matrix.laplaceShare);
        // Column scales base·exp(σz) have mean square base²·exp(2σ²): the base that gives the matrix its std.
        const base = (matrix.stdTimesSqrtFanIn / Math.sqrt(this.cols)) * Math.exp(-matrix.channelSigma * matrix.channelSigma);
        for (let j = 0; j < this.cols; j++) this.columnScale[j] = base * Math.exp(matrix.channelSigma * random.gaussian());
      } else {
        for (let j = 0; j < this.cols; j++) this.columnScale[j] = params.std * Math.exp(params.channelSigma * random.gaussian());
      }
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
    const table = this.quantiles;
    const offset = this.logOffset;
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
        out[k] = norm ? Math.exp(offset + scale[j] * z) : z * scale[j];
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
