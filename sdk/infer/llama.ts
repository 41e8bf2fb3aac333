import { QansError } from "../errors.js";
import type { ModelReader } from "../reader.js";
import type { ModelArchitecture } from "../tensor/tensor.js";
import {
  EMBEDDING_NAME,
  FINAL_NORM_NAME,
  checkTensorShape,
  classifierName,
  layerNames,
  llamaShape,
  matrixSpecs,
  normNames,
  parseLlamaArchitecture,
  type LayerNames,
  type LlamaArchitecture,
  type LlamaShape,
  type MatrixSpec,
} from "./architecture.js";
import { addInPlace, applyRope, attention, rmsNorm, ropeAngles, swiglu } from "./kernels.js";
import { ResidentF32Linear, loadResidentF32, type LinearLoader, type LinearWeight } from "./linear.js";

/**
 * Called during `forward` with the input vector of every linear layer, before the product, named by
 * the layer's weight tensor (the classifier: `lm_head.weight`, or `model.embed_tokens.weight` when
 * tied). The vector is the model's own buffer, valid only during the call: copy what you keep.
 */
export type LinearInputHook = (weightName: string, x: Float32Array) => void;

export interface LlamaModelOptions {
  onLinearInput?: LinearInputHook;
}

export interface LlamaLoadOptions extends LlamaModelOptions {
  /** Makes the holder of each matrix; the default keeps it decoded as F32. */
  loadLinear?: LinearLoader;
  /** Names the model in error messages, e.g. its path. */
  name?: string;
}

interface LayerWeights {
  names: LayerNames;
  inputNorm: Float32Array;
  q: LinearWeight;
  k: LinearWeight;
  v: LinearWeight;
  o: LinearWeight;
  postAttentionNorm: Float32Array;
  gate: LinearWeight;
  up: LinearWeight;
  down: LinearWeight;
}

interface LlamaWeights {
  embedding: LinearWeight;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  classifier: LinearWeight;
}

/** Positions the key/value cache first has room for; it doubles as a sequence grows. */
const INITIAL_CACHE_POSITIONS = 64;

/**
 * A Llama-architecture decoder (spec §6.2) in F32: RMSNorm, rotary embeddings in the half-split
 * layout, grouped-query attention over a key/value cache, a SwiGLU MLP and a tied or separate
 * classifier. One token at a time: `forward(token, pos)` appends the token at `pos` to the cache
 * and returns the logits for the next token.
 */
export class LlamaModel {
  readonly config: LlamaArchitecture;
  private readonly shape: LlamaShape;
  private readonly hook: LinearInputHook | undefined;
  private readonly classifierWeightName: string;

  // Activations, allocated once.
  private readonly x: Float32Array;
  private readonly xb: Float32Array;
  private readonly xb2: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly hb: Float32Array;
  private readonly hb2: Float32Array;
  private readonly logits: Float32Array;
  private readonly scores: Float32Array;
  private readonly cos: Float32Array;
  private readonly sin: Float32Array;

  private keyCache: Float32Array[];
  private valueCache: Float32Array[];
  private cachePositions = 0;
  private filled = 0;

  private constructor(
    config: LlamaArchitecture,
    private readonly weights: LlamaWeights,
    options: LlamaModelOptions,
  ) {
    this.config = config;
    this.shape = llamaShape(config);
    this.hook = options.onLinearInput;
    this.classifierWeightName = classifierName(config);
    const { dim, hidden_dim, vocab_size, max_seq_len, n_layers } = config;
    const { kvDim, headSize } = this.shape;
    this.x = new Float32Array(dim);
    this.xb = new Float32Array(dim);
    this.xb2 = new Float32Array(dim);
    this.q = new Float32Array(dim);
    this.k = new Float32Array(kvDim);
    this.v = new Float32Array(kvDim);
    this.hb = new Float32Array(hidden_dim);
    this.hb2 = new Float32Array(hidden_dim);
    this.logits = new Float32Array(vocab_size);
    this.scores = new Float32Array(max_seq_len);
    this.cos = new Float32Array(headSize / 2);
    this.sin = new Float32Array(headSize / 2);
    this.keyCache = Array.from({ length: n_layers }, () => new Float32Array(0));
    this.valueCache = Array.from({ length: n_layers }, () => new Float32Array(0));
  }

  /**
   * Loads a model from a QANS file or set: the configuration from its architecture record, the
   * tensors by their Hugging Face names. A missing record is INVALID_ARGUMENT, a malformed one
   * BAD_METADATA, a missing tensor NOT_FOUND, a tensor of the wrong shape BAD_INPUT.
   */
  static async load(reader: ModelReader, options: LlamaLoadOptions = {}): Promise<LlamaModel> {
    const where = options.name ?? "model";
    const config = parseLlamaArchitecture((await reader.metadata()).architecture, where);
    const loadLinear = options.loadLinear ?? loadResidentF32;
    const matrices = new Map<string, LinearWeight>();
    for (const spec of matrixSpecs(config)) {
      await checkShape(reader, spec.name, [spec.rows, spec.cols], where);
      const weight = await loadLinear(reader, spec);
      if (weight.rows !== spec.rows || weight.cols !== spec.cols) {
        throw new QansError("INVALID_ARGUMENT", `${where}: the loader made a ${weight.rows} x ${weight.cols} holder for ${spec.name}, which is ${spec.rows} x ${spec.cols}`);
      }
      matrices.set(spec.name, weight);
    }
    const norms = new Map<string, Float32Array>();
    for (const name of normNames(config)) {
      await checkShape(reader, name, [config.dim], where);
      norms.set(name, await reader.readFloat32(name));
    }
    return new LlamaModel(config, assemble(config, matrices, norms), options);
  }

  /**
   * Builds a model from F32 tensors in memory, named as in a file, so that a candidate set of
   * weights can be run without writing one. The arrays are used in place, not copied.
   */
  static fromWeights(architecture: LlamaArchitecture | ModelArchitecture, weights: (name: string) => Float32Array, options: LlamaModelOptions = {}): LlamaModel {
    const config = parseLlamaArchitecture(architecture, "architecture");
    const tensor = (name: string, length: number): Float32Array => {
      const values = weights(name);
      if (!(values instanceof Float32Array) || values.length !== length) {
        throw new QansError("INVALID_ARGUMENT", `weights("${name}") must give a Float32Array of ${length} values, got ${describeValue(values)}`);
      }
      return values;
    };
    const matrices = new Map<string, LinearWeight>(
      matrixSpecs(config).map((spec: MatrixSpec) => [spec.name, new ResidentF32Linear(spec.rows, spec.cols, tensor(spec.name, spec.rows * spec.cols))]),
    );
    const norms = new Map(normNames(config).map((name) => [name, tensor(name, config.dim)]));
    return new LlamaModel(config, assemble(config, matrices, norms), options);
  }

  /** Bytes of weights held in memory: every matrix holder's resident bytes, and the norms. */
  get residentWeightBytes(): number {
    const { embedding, layers, finalNorm, classifier } = this.weights;
    let bytes = embedding.residentBytes + finalNorm.byteLength + (classifier === embedding ? 0 : classifier.residentBytes);
    for (const layer of layers) {
      bytes += layer.inputNorm.byteLength + layer.postAttentionNorm.byteLength;
      for (const matrix of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) bytes += matrix.residentBytes;
    }
    return bytes;
  }

  /** Positions held in the key/value cache: the next `forward` may be at any position up to this. */
  get length(): number {
    return this.filled;
  }

  /** Empties the key/value cache, to start a new sequence. */
  reset(): void {
    this.filled = 0;
  }

  /**
   * Runs `token` at position `pos` and returns the logits for the next token. Positions before
   * `pos` must be in the cache; a `pos` below `length` drops the cached positions from `pos` on.
   * The returned array is the model's own and is overwritten by the next call.
   */
  forward(token: number, pos: number): Float32Array {
    const { config, shape, weights, hook } = this;
    if (!Number.isInteger(token) || token < 0 || token >= config.vocab_size) {
      throw new QansError("INVALID_ARGUMENT", `token ${token} is outside the vocabulary of ${config.vocab_size}`);
    }
    if (!Number.isInteger(pos) || pos < 0 || pos > this.filled) {
      throw new QansError("INVALID_ARGUMENT", `position ${pos} does not follow the ${this.filled} cached positions`);
    }
    if (pos >= config.max_seq_len) {
      throw new QansError("LIMIT_EXCEEDED", `position ${pos} is beyond the model's context of ${config.max_seq_len} (max_seq_len)`);
    }
    this.ensureCache(pos + 1);
    const { x, xb, xb2, q, k, v, hb, hb2, cos, sin } = this;
    const { headSize, kvDim, groupSize } = shape;
    weights.embedding.row(token, x);
    ropeAngles(pos, headSize, config.rope_theta, cos, sin);
    for (let l = 0; l < weights.layers.length; l++) {
      const layer = weights.layers[l];
      const { names } = layer;
      rmsNorm(xb, x, layer.inputNorm, config.norm_eps);
      if (hook) {
        hook(names.q, xb);
        hook(names.k, xb);
        hook(names.v, xb);
      }
      layer.q.matvec(xb, q);
      layer.k.matvec(xb, k);
      layer.v.matvec(xb, v);
      applyRope(q, config.n_heads, headSize, cos, sin);
      applyRope(k, config.n_kv_heads, headSize, cos, sin);
      this.keyCache[l].set(k, pos * kvDim);
      this.valueCache[l].set(v, pos * kvDim);
      attention(xb, q, this.keyCache[l], this.valueCache[l], pos + 1, config.n_heads, headSize, groupSize, this.scores);
      if (hook) hook(names.o, xb);
      layer.o.matvec(xb, xb2);
      addInPlace(x, xb2);

      rmsNorm(xb, x, layer.postAttentionNorm, config.norm_eps);
      if (hook) {
        hook(names.gate, xb);
        hook(names.up, xb);
      }
      layer.gate.matvec(xb, hb);
      layer.up.matvec(xb, hb2);
      swiglu(hb, hb2);
      if (hook) hook(names.down, hb);
      layer.down.matvec(hb, xb);
      addInPlace(x, xb);
    }
    rmsNorm(x, x, weights.finalNorm, config.norm_eps);
    if (hook) hook(this.classifierWeightName, x);
    weights.classifier.matvec(x, this.logits);
    this.filled = pos + 1;
    return this.logits;
  }

  /**
   * Runs `tokens` at positions startPos, startPos + 1, ... and returns the logits after the last,
   * as calling `forward` for each in turn would, but layer by layer over the whole batch: each
   * linear layer multiplies every token's vector in one `matmul` (where its holder has one), so a
   * holder that decodes its weights as it multiplies decodes them once per batch. The classifier runs
   * for the last token only. With an `onLinearInput` hook, it runs `forward` token by token.
   * Equal to `forward`'s logits when each holder's `matmul` gives its `matvec`'s results (the holders
   * of linear-f32.ts, linear-int8.ts and linear-compressed.ts give them bit for bit).
   */
  forwardBatch(tokens: readonly number[], startPos: number): Float32Array {
    const { config, shape, weights } = this;
    const n = tokens.length;
    if (n === 0) throw new QansError("INVALID_ARGUMENT", "forwardBatch needs at least one token");
    for (const token of tokens) {
      if (!Number.isInteger(token) || token < 0 || token >= config.vocab_size) {
        throw new QansError("INVALID_ARGUMENT", `token ${token} is outside the vocabulary of ${config.vocab_size}`);
      }
    }
    if (!Number.isInteger(startPos) || startPos < 0 || startPos > this.filled) {
      throw new QansError("INVALID_ARGUMENT", `position ${startPos} does not follow the ${this.filled} cached positions`);
    }
    if (startPos + n > config.max_seq_len) {
      throw new QansError("LIMIT_EXCEEDED", `positions up to ${startPos + n - 1} are beyond the model's context of ${config.max_seq_len} (max_seq_len)`);
    }
    if (this.hook || n === 1) {
      let logits = this.logits;
      for (let i = 0; i < n; i++) logits = this.forward(tokens[i], startPos + i);
      return logits;
    }
    this.ensureCache(startPos + n);
    const { dim, hidden_dim } = config;
    const { headSize, kvDim, groupSize } = shape;
    const x = new Float32Array(n * dim);
    const xb = new Float32Array(n * dim);
    const xb2 = new Float32Array(n * dim);
    const q = new Float32Array(n * dim);
    const k = new Float32Array(n * kvDim);
    const v = new Float32Array(n * kvDim);
    const hb = new Float32Array(n * hidden_dim);
    const hb2 = new Float32Array(n * hidden_dim);
    const rows = (values: Float32Array, width: number, i: number) => values.subarray(i * width, (i + 1) * width);
    const { cos, sin } = this;
    for (let i = 0; i < n; i++) weights.embedding.row(tokens[i], rows(x, dim, i));
    for (let l = 0; l < weights.layers.length; l++) {
      const layer = weights.layers[l];
      for (let i = 0; i < n; i++) rmsNorm(rows(xb, dim, i), rows(x, dim, i), layer.inputNorm, config.norm_eps);
      multiplyBatch(layer.q, xb, n, q);
      multiplyBatch(layer.k, xb, n, k);
      multiplyBatch(layer.v, xb, n, v);
      for (let i = 0; i < n; i++) {
        const pos = startPos + i;
        ropeAngles(pos, headSize, config.rope_theta, cos, sin);
        applyRope(rows(q, dim, i), config.n_heads, headSize, cos, sin);
        applyRope(rows(k, kvDim, i), config.n_kv_heads, headSize, cos, sin);
        this.keyCache[l].set(rows(k, kvDim, i), pos * kvDim);
        this.valueCache[l].set(rows(v, kvDim, i), pos * kvDim);
      }
      for (let i = 0; i < n; i++) {
        attention(rows(xb, dim, i), rows(q, dim, i), this.keyCache[l], this.valueCache[l], startPos + i + 1, config.n_heads, headSize, groupSize, this.scores);
      }
      multiplyBatch(layer.o, xb, n, xb2);
      addInPlace(x, xb2);
      for (let i = 0; i < n; i++) rmsNorm(rows(xb, dim, i), rows(x, dim, i), layer.postAttentionNorm, config.norm_eps);
      multiplyBatch(layer.gate, xb, n, hb);
      multiplyBatch(layer.up, xb, n, hb2);
      swiglu(hb, hb2);
      multiplyBatch(layer.down, hb, n, xb);
      addInPlace(x, xb);
    }
    this.x.set(rows(x, dim, n - 1));
    rmsNorm(this.x, this.x, weights.finalNorm, config.norm_eps);
    weights.classifier.matvec(this.x, this.logits);
    this.filled = startPos + n;
    return this.logits;
  }

  /** Grows every layer's cache to hold `positions`, doubling so that growth is rare. */
  private ensureCache(positions: number): void {
    if (positions <= this.cachePositions) return;
    const grown = Math.min(this.config.max_seq_len, Math.max(positions, INITIAL_CACHE_POSITIONS, this.cachePositions * 2));
    const { kvDim } = this.shape;
    const resize = (old: Float32Array): Float32Array => {
      const next = new Float32Array(grown * kvDim);
      next.set(old.subarray(0, this.filled * kvDim));
      return next;
    };
    this.keyCache = this.keyCache.map(resize);
    this.valueCache = this.valueCache.map(resize);
    this.cachePositions = grown;
  }
}

/** out = n products of `weight` with the vectors back to back in xs: its matmul, or matvec per vector. */
function multiplyBatch(weight: LinearWeight, xs: Float32Array, n: number, out: Float32Array): void {
  if (weight.matmul) {
    weight.matmul(xs, n, out);
    return;
  }
  const { rows, cols } = weight;
  for (let i = 0; i < n; i++) weight.matvec(xs.subarray(i * cols, (i + 1) * cols), out.subarray(i * rows, (i + 1) * rows));
}

/** Checks that the file's tensor `name` has `shape` (BAD_INPUT otherwise; NOT_FOUND if absent). */
async function checkShape(reader: ModelReader, name: string, shape: number[], where: string): Promise<void> {
  checkTensorShape(name, (await reader.tensorEntry(name)).shape, shape, where);
}

function assemble(config: LlamaArchitecture, matrices: Map<string, LinearWeight>, norms: Map<string, Float32Array>): LlamaWeights {
  const matrix = (name: string) => matrices.get(name)!;
  const norm = (name: string) => norms.get(name)!;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.n_layers; l++) {
    const names = layerNames(l);
    layers.push({
      names,
      inputNorm: norm(names.inputNorm),
      q: matrix(names.q),
      k: matrix(names.k),
      v: matrix(names.v),
      o: matrix(names.o),
      postAttentionNorm: norm(names.postAttentionNorm),
      gate: matrix(names.gate),
      up: matrix(names.up),
      down: matrix(names.down),
    });
  }
  return { embedding: matrix(EMBEDDING_NAME), layers, finalNorm: norm(FINAL_NORM_NAME), classifier: matrix(classifierName(config)) };
}

function describeValue(value: unknown): string {
  if (value instanceof Float32Array) return `${value.length} values`;
  if (value === undefined || value === null) return String(value);
  return (value as object).constructor?.name ?? typeof value;
}
