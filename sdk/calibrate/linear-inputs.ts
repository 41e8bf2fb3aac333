import { QansError } from "../errors.js";
import type { LinearInputHook } from "../infer/llama.js";
import { XorShiftRandom } from "../infer/sampler.js";
import type { ChannelStatistics } from "../quant/setting.js";

/** What calibration learned about the inputs of one linear layer. */
export interface LinearInputStatistics extends ChannelStatistics {
  /** Input channels. */
  cols: number;
  /** Input vectors seen. */
  count: number;
  /** max_t |X_tj| per channel j. */
  absMax: Float32Array;
  /** mean_t |X_tj| per channel j. */
  absMean: Float32Array;
  /** A uniform sample of the input vectors seen, row-major [count, cols]. */
  sample: { rows: Float32Array; count: number };
}

export interface LinearInputCollectorOptions {
  /** Input vectors kept per layer for measuring output error and compensated rounding; default `defaultSampleRows`. */
  sampleRows?: number;
  /** Seeds the choice of sampled vectors; default 0. */
  seed?: number;
}

/** At most this many input vectors per layer are kept by default. */
export const MAX_DEFAULT_SAMPLE_ROWS = 2048;
/** At least this many, whatever the model's width. */
export const MIN_DEFAULT_SAMPLE_ROWS = 64;
/** What the default samples of all layers may take together. */
export const SAMPLE_MEMORY_BYTES = 512 * 1024 * 1024;

/**
 * Input vectors kept per layer when not given: up to 2048, which on stories260K is every token of
 * the 8 default calibration sequences (compensated rounding's error estimate improves with each:
 * with 2048 instead of 512 the int8 model's KL divergence falls by 15%), but no more than
 * SAMPLE_MEMORY_BYTES of binary32 vectors for all the layers of a model with these input widths.
 */
export function defaultSampleRows(layerInputWidths: readonly number[]): number {
  const bytesPerRow = 4 * layerInputWidths.reduce((sum, cols) => sum + cols, 0);
  const fitting = bytesPerRow > 0 ? Math.floor(SAMPLE_MEMORY_BYTES / bytesPerRow) : MAX_DEFAULT_SAMPLE_ROWS;
  return Math.max(MIN_DEFAULT_SAMPLE_ROWS, Math.min(MAX_DEFAULT_SAMPLE_ROWS, fitting));
}

class LayerAccumulator {
  readonly absMax: Float32Array;
  readonly absSum: Float64Array;
  readonly rows: Float32Array;
  count = 0;

  constructor(
    readonly cols: number,
    readonly capacity: number,
  ) {
    this.absMax = new Float32Array(cols);
    this.absSum = new Float64Array(cols);
    this.rows = new Float32Array(capacity * cols);
  }
}

/**
 * Collects, through the decoder's LinearInputHook, per linear layer: max |x_j| and mean |x_j| of
 * every input channel, and a bounded uniform sample of whole input vectors (reservoir sampling,
 * so that every vector seen has the same chance whatever the number of calibration tokens).
 * Deterministic for a seed and a sequence of calls.
 */
export class LinearInputCollector {
  private readonly layers = new Map<string, LayerAccumulator>();
  private readonly random: XorShiftRandom;
  private readonly capacity: number;

  /** `sampleRows` is given: its default depends on the model's widths (`defaultSampleRows`). */
  constructor(options: LinearInputCollectorOptions & { sampleRows: number }) {
    const { sampleRows, seed = 0 } = options;
    if (!Number.isSafeInteger(sampleRows) || sampleRows < 0) throw new QansError("INVALID_ARGUMENT", `sampleRows must be a non-negative integer, got ${sampleRows}`);
    this.capacity = sampleRows;
    this.random = new XorShiftRandom(seed);
  }

  /** The hook to give the model; it copies what it keeps, as the hook's contract asks. */
  readonly hook: LinearInputHook = (name, x) => {
    let layer = this.layers.get(name);
    if (layer === undefined) {
      layer = new LayerAccumulator(x.length, this.capacity);
      this.layers.set(name, layer);
    } else if (layer.cols !== x.length) {
      throw new QansError("INVALID_ARGUMENT", `linear input of ${name} has ${x.length} channels, earlier ${layer.cols}`);
    }
    const { absMax, absSum, cols } = layer;
    for (let j = 0; j < cols; j++) {
      const v = Math.abs(x[j]);
      if (v > absMax[j]) absMax[j] = v;
      absSum[j] += v;
    }
    const seen = layer.count++;
    let slot = seen;
    if (seen >= this.capacity) {
      // Reservoir sampling: the new vector replaces a kept one with probability capacity / (seen + 1).
      slot = Math.floor((this.random.nextUint32() / 4294967296) * (seen + 1));
      if (slot >= this.capacity) return;
    }
    layer.rows.set(x, slot * cols);
  };

  /** The statistics of every layer seen so far, by weight name. */
  statistics(): Map<string, LinearInputStatistics> {
    const out = new Map<string, LinearInputStatistics>();
    for (const [name, layer] of this.layers) {
      const kept = Math.min(layer.count, this.capacity);
      out.set(name, {
        cols: layer.cols,
        count: layer.count,
        absMax: Float32Array.from(layer.absMax),
        absMean: Float32Array.from(layer.absSum, (sum) => sum / layer.count),
        sample: { rows: layer.rows.slice(0, kept * layer.cols), count: kept },
      });
    }
    return out;
  }
}
