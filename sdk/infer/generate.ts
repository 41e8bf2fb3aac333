import { QansError } from "../errors.js";
import type { LlamaModel } from "./llama.js";
import type { Sampler } from "./sampler.js";

export interface GenerateOptions {
  /** The prompt's tokens, BOS first. */
  prompt: readonly number[];
  /** Tokens to sample after the prompt, at most; the model's context may end the text sooner. */
  maxNewTokens: number;
  sampler: Sampler;
  /** Sampling one of these ends the text; it is not yielded. */
  stopTokens?: ReadonlySet<number>;
  /** Runs the prompt through `forwardBatch` at once rather than token by token; the logits are the same. */
  batchPrefill?: boolean;
}

/** A token of the text: one of the prompt's (after its first) or a sampled one. */
export interface GeneratedToken {
  token: number;
  sampled: boolean;
}

/**
 * Runs the model over the prompt and then samples, yielding every token after the prompt's first
 * as soon as it is known, as llama2.c's `run` prints them. Position p runs the token at p and picks
 * the token at p + 1, so a prompt of P tokens (BOS included) followed by N sampled tokens takes
 * P - 1 + N positions. The model's cache is reset first.
 */
export function* generateTokens(model: LlamaModel, options: GenerateOptions): Generator<GeneratedToken> {
  const { prompt, maxNewTokens, sampler, stopTokens } = options;
  const context = model.config.max_seq_len;
  if (prompt.length === 0) throw new QansError("INVALID_ARGUMENT", "the prompt needs at least one token (BOS)");
  if (prompt.length > context) throw new QansError("INVALID_ARGUMENT", `the prompt has ${prompt.length} tokens, more than the model's context of ${context}`);
  if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 0) throw new QansError("INVALID_ARGUMENT", `maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  model.reset();
  let token = prompt[0];
  let sampledCount = 0;
  let first = 0;
  let prefilled: Float32Array | undefined;
  if (options.batchPrefill && prompt.length > 1) {
    prefilled = model.forwardBatch(prompt, 0);
    for (let i = 1; i < prompt.length; i++) yield { token: prompt[i], sampled: false };
    first = prompt.length - 1;
    token = prompt[first];
  }
  for (let pos = first; pos < context; pos++) {
    const fromPrompt = pos + 1 < prompt.length;
    if (!fromPrompt && sampledCount === maxNewTokens) return;
    const logits = prefilled ?? model.forward(token, pos);
    prefilled = undefined;
    const next = fromPrompt ? prompt[pos + 1] : sampler.sample(logits);
    if (!fromPrompt) {
      sampledCount++;
      if (stopTokens?.has(next)) return;
    }
    yield { token: next, sampled: !fromPrompt };
    token = next;
  }
}
