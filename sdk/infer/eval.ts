import { QansError } from "../errors.js";
import type { LlamaModel } from "./llama.js";
import { Sampler, argmax } from "./sampler.js";

/**
 * The seeds of the default evaluation set are EVAL_SEED_BASE, EVAL_SEED_BASE + 1, ...: sequence i
 * is sampled with seed EVAL_SEED_BASE + i. Calibration sets must use other seeds, so that a model
 * is never scored on the text it was calibrated on.
 */
export const EVAL_SEED_BASE = 1_000_000;
/** The BOS token of llama2.c and Llama 2 vocabularies. */
export const DEFAULT_BOS = 1;

/**
 * The default evaluation set of `qans eval`: `sequences` sequences of `length` tokens sampled from
 * the reference at `temperature` (its own distribution) with the seeds `evalSeeds(sequences)`.
 */
export const DEFAULT_EVAL_SET = { sequences: 16, length: 128, temperature: 1 } as const;

/** `count` seeds from `first` on: the default evaluation set's when `first` is EVAL_SEED_BASE. */
export function evalSeeds(count: number, first = EVAL_SEED_BASE): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

export interface SampleOptions {
  seeds: readonly number[];
  /** Tokens per sequence, BOS included. */
  length: number;
  temperature: number;
  /** The first token of every sequence; DEFAULT_BOS when absent. */
  bos?: number;
}

/**
 * Token sequences sampled from `model`, one per seed, each starting with BOS and `length` tokens
 * long. The same seeds give the same sequences. Sampling goes on through an end of story (a BOS the
 * model samples), as the model saw stories run together in training.
 */
export function sampleSequences(model: LlamaModel, options: SampleOptions): number[][] {
  const { seeds, length, temperature, bos = DEFAULT_BOS } = options;
  const { vocab_size, max_seq_len } = model.config;
  if (!Number.isSafeInteger(length) || length < 2 || length > max_seq_len) {
    throw new QansError("INVALID_ARGUMENT", `a sampled sequence has 2 to ${max_seq_len} (the model's context) tokens, asked for ${length}`);
  }
  return seeds.map((seed) => {
    const sampler = new Sampler(vocab_size, { temperature, seed });
    const sequence = [bos];
    model.reset();
    for (let pos = 0; pos + 1 < length; pos++) sequence.push(sampler.sample(model.forward(sequence[pos], pos)));
    return sequence;
  });
}

export interface Agreement {
  /** exp of the mean negative log-likelihood the model gives the scored next tokens. */
  perplexity: number;
  /** The same for the reference, on the same tokens. */
  referencePerplexity: number;
  /** KL(reference || model) of the next-token distributions, in nats, averaged over scored positions. */
  meanKld: number;
  /** Fraction of scored positions where the model's and the reference's most likely tokens agree. */
  top1Agreement: number;
  /** Scored positions. */
  tokens: number;
  /**
   * Standard errors of the three figures above, as llama.cpp's perplexity tool prints them after
   * "±": of the mean over positions (the perplexity's through its log), and of a proportion for the
   * agreement. A difference smaller than about two of them is not a difference this set can show.
   */
  standardErrors: {
    perplexity: number;
    /**
     * Of perplexity / referencePerplexity, from the two models' log-likelihoods paired position by
     * position, so much smaller than the perplexity's own when the models are close.
     */
    perplexityRatio: number;
    meanKld: number;
    top1Agreement: number;
  };
}

export interface EvaluateOptions {
  /** Positions before this in each sequence are run but not scored (llama.cpp scores a window's second half). */
  scoreFrom?: number;
}

/**
 * Scores `model` against `reference` on token sequences, as llama.cpp's perplexity tool does with
 * --kl-divergence: at each scored position p both models see tokens 0..p, and the model's
 * log-probability of token p + 1, KL(reference || model) of the two next-token distributions, and
 * whether their argmaxes agree are accumulated. Log-probabilities are computed in double precision.
 */
export function evaluateAgainst(model: LlamaModel, reference: LlamaModel, sequences: readonly (readonly number[])[], options: EvaluateOptions = {}): Agreement {
  const { scoreFrom = 0 } = options;
  if (model.config.vocab_size !== reference.config.vocab_size) {
    throw new QansError("INVALID_ARGUMENT", `the model's vocabulary has ${model.config.vocab_size} tokens, the reference's ${reference.config.vocab_size}`);
  }
  const nll = new MeanAccumulator();
  let referenceNll = 0;
  const nllExcess = new MeanAccumulator();
  const kld = new MeanAccumulator();
  let agreed = 0;
  for (const sequence of sequences) {
    model.reset();
    reference.reset();
    for (let pos = 0; pos + 1 < sequence.length; pos++) {
      const logits = model.forward(sequence[pos], pos);
      const referenceLogits = reference.forward(sequence[pos], pos);
      if (pos < scoreFrom) continue;
      const target = sequence[pos + 1];
      const logZ = logSumExp(logits);
      const referenceLogZ = logSumExp(referenceLogits);
      const modelLoss = logZ - logits[target];
      const referenceLoss = referenceLogZ - referenceLogits[target];
      nll.add(modelLoss);
      referenceNll += referenceLoss;
      nllExcess.add(modelLoss - referenceLoss);
      kld.add(klDivergence(referenceLogits, referenceLogZ, logits, logZ));
      if (argmax(logits) === argmax(referenceLogits)) agreed++;
    }
  }
  const tokens = nll.count;
  if (tokens === 0) throw new QansError("INVALID_ARGUMENT", "no position was scored: the sequences are too short");
  const perplexity = Math.exp(nll.mean());
  const referencePerplexity = Math.exp(referenceNll / tokens);
  const top1Agreement = agreed / tokens;
  return {
    perplexity,
    referencePerplexity,
    meanKld: kld.mean(),
    top1Agreement,
    tokens,
    standardErrors: {
      perplexity: perplexity * nll.standardError(),
      perplexityRatio: (perplexity / referencePerplexity) * nllExcess.standardError(),
      meanKld: kld.standardError(),
      top1Agreement: tokens > 1 ? Math.sqrt((top1Agreement * (1 - top1Agreement)) / (tokens - 1)) : 0,
    },
  };
}

/** A running mean and the standard error of that mean, from sums in double precision. */
class MeanAccumulator {
  count = 0;
  private sum = 0;
  private sumOfSquares = 0;

  add(x: number): void {
    this.count++;
    this.sum += x;
    this.sumOfSquares += x * x;
  }

  mean(): number {
    return this.sum / this.count;
  }

  standardError(): number {
    if (this.count < 2) return 0;
    const mean = this.mean();
    const variance = Math.max(0, this.sumOfSquares / this.count - mean * mean);
    return Math.sqrt(variance / (this.count - 1));
  }
}

/**
 * A tokenized text cut into windows of `length` tokens as llama.cpp's perplexity tool cuts it: the
 * text's tokens (BOS first) in consecutive chunks, each chunk's first token replaced by BOS; the
 * tokens after the last whole chunk are left out. Score them from `length / 2` on.
 */
export function textWindows(tokens: readonly number[], length: number, bos: number): number[][] {
  if (!Number.isSafeInteger(length) || length < 2) throw new QansError("INVALID_ARGUMENT", `a window has at least 2 tokens, asked for ${length}`);
  const count = Math.floor(tokens.length / length);
  if (count === 0) throw new QansError("INVALID_ARGUMENT", `the text has ${tokens.length} tokens, fewer than one window of ${length}; use a shorter window`);
  return Array.from({ length: count }, (_, i) => {
    const window = tokens.slice(i * length, (i + 1) * length);
    window[0] = bos;
    return window;
  });
}

function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}

/** KL(p || q) = sum of p_i (log p_i - log q_i), from logits and their log-normalisers. */
function klDivergence(pLogits: Float32Array, pLogZ: number, qLogits: Float32Array, qLogZ: number): number {
  let sum = 0;
  for (let i = 0; i < pLogits.length; i++) {
    const logP = pLogits[i] - pLogZ;
    sum += Math.exp(logP) * (logP - (qLogits[i] - qLogZ));
  }
  return sum;
}
