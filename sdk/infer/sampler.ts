import { QansError } from "../errors.js";

const MASK_64 = (1n << 64n) - 1n;
const XORSHIFT_MULTIPLIER = 0x2545f4914f6cdd1dn;
/** xorshift's state 0 never leaves 0, so seed 0 starts from this state instead. */
const SEED_ZERO_STATE = 0x9e3779b97f4a7c15n;

/**
 * llama2.c's random numbers (xorshift64*), so that a seed gives the same stream as its `run -s`.
 * Deterministic for a seed; no global state.
 */
export class XorShiftRandom {
  private state: bigint;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new QansError("INVALID_ARGUMENT", `a seed is a non-negative integer, got ${seed}`);
    this.state = seed === 0 ? SEED_ZERO_STATE : BigInt(seed);
  }

  nextUint32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & MASK_64;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * XORSHIFT_MULTIPLIER) & MASK_64) >> 32n);
  }

  /** Uniform in [0, 1), with 24 bits, as llama2.c's random_f32. */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }
}

/** The index of the largest value; the first one among equals. */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export interface SamplerOptions {
  /** 0 picks the most likely token; otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Nucleus sampling: sample only from the most likely tokens whose probabilities sum past this; 1 or absent turns it off. */
  topP?: number;
  seed?: number;
}

/**
 * Picks the next token from logits as llama2.c's sampler does: greedy at temperature 0, otherwise
 * one random number per token against the cumulative distribution (of the top-p nucleus when set).
 */
export class Sampler {
  readonly temperature: number;
  readonly topP: number;
  private readonly random: XorShiftRandom;
  private readonly probabilities: Float32Array;
  private readonly order: Int32Array;
  /** Likeliest first, then by token id: made once, not per token. */
  private readonly byProbability = (a: number, b: number): number => this.probabilities[b] - this.probabilities[a] || a - b;

  constructor(vocabSize: number, options: SamplerOptions) {
    const { temperature, topP = 1, seed = 0 } = options;
    if (!Number.isFinite(temperature) || temperature < 0) throw new QansError("INVALID_ARGUMENT", `temperature must be a number of at least 0, got ${temperature}`);
    if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw new QansError("INVALID_ARGUMENT", `top-p must be a number above 0 and at most 1, got ${topP}`);
    this.temperature = temperature;
    this.topP = topP;
    this.random = new XorShiftRandom(seed);
    this.probabilities = new Float32Array(vocabSize);
    this.order = new Int32Array(vocabSize);
  }

  /** The next token; `logits` is left as it is. */
  sample(logits: Float32Array): number {
    if (this.temperature === 0) return argmax(logits);
    const probabilities = this.probabilities;
    const n = probabilities.length;
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp((logits[i] - max) / this.temperature);
      probabilities[i] = e;
      sum += e;
    }
    for (let i = 0; i < n; i++) probabilities[i] /= sum;
    const coin = this.random.nextFloat();
    return this.topP < 1 ? this.sampleNucleus(coin) : sampleCumulative(probabilities, coin);
  }

  private sampleNucleus(coin: number): number {
    const { probabilities, order, topP } = this;
    const n = probabilities.length;
    // A token below this cannot be in the nucleus, so it is left out of the sort.
    const cutoff = (1 - topP) / (n - 1);
    let candidates = 0;
    for (let i = 0; i < n; i++) if (probabilities[i] >= cutoff) order[candidates++] = i;
    const sorted = order.subarray(0, candidates).sort(this.byProbability);
    let cumulative = 0;
    let last = candidates - 1;
    for (let i = 0; i < candidates; i++) {
      cumulative += probabilities[sorted[i]];
      if (cumulative > topP) {
        last = i;
        break;
      }
    }
    const target = coin * cumulative;
    let cdf = 0;
    for (let i = 0; i <= last; i++) {
      cdf += probabilities[sorted[i]];
      if (target < cdf) return sorted[i];
    }
    return sorted[last];
  }
}

function sampleCumulative(probabilities: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < probabilities.length; i++) {
    cdf += probabilities[i];
    if (coin < cdf) return i;
  }
  return probabilities.length - 1;
}
