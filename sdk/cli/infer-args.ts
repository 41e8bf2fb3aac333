import { QansError } from "../errors.js";
import { isUrl } from "../io/open-source.js";
import type { MemoryBudget } from "../infer/memory-budget.js";
import type { Tokenizer } from "../infer/tokenizer.js";
import { TOKENIZER_FILE_NAMES, findTokenizerBeside, loadTokenizer } from "../infer/tokenizer-file.js";
import { UsageError, parseByteSize } from "./args.js";

// Options shared by `qans run` and `qans eval`.

/** A decimal number from `min` to `max`; undefined when the flag is absent. */
export function parseNumber(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const number = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(number) || number < min || number > max) {
    throw new QansError("INVALID_ARGUMENT", `${name} must be a number from ${min} to ${max}, got "${value}"`);
  }
  return number;
}

/** `--memory-budget`: bytes (with K, M, G, KiB, MiB, GiB) or a percentage such as "80%". */
export function parseMemoryBudget(value: string | undefined): MemoryBudget | undefined {
  if (value === undefined) return undefined;
  const percent = /^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$/.exec(value);
  if (percent) {
    const share = Number(percent[1]);
    if (!(share > 0)) throw new QansError("INVALID_ARGUMENT", `--memory-budget must be a positive percentage, got "${value}"`);
    return { percent: share };
  }
  return { bytes: parseByteSize(value, "--memory-budget")! };
}

/**
 * The tokenizer named by --tokenizer, or else the first of tok512.bin, tokenizer.bin and
 * tokenizer.json beside the model file; when there is none and `required`, a usage error naming
 * the flag.
 */
export async function resolveTokenizer(flag: string | undefined, modelLocation: string, usage: string, required: boolean): Promise<Tokenizer | undefined> {
  const path = flag ?? (isUrl(modelLocation) ? undefined : await findTokenizerBeside(modelLocation));
  if (path !== undefined) return loadTokenizer(path);
  if (!required) return undefined;
  throw new UsageError(`no tokenizer: pass --tokenizer FILE, or put one of ${TOKENIZER_FILE_NAMES.join(", ")} beside the model\nusage: ${usage}`);
}

/** A tokenizer whose ids go past the model's vocabulary cannot drive it (INVALID_ARGUMENT). */
export function checkTokenizerFits(tokenizer: Tokenizer, vocabSize: number): void {
  if (tokenizer.vocabSize > vocabSize) {
    throw new QansError("INVALID_ARGUMENT", `the tokenizer has ${tokenizer.vocabSize} tokens, more than the model's vocabulary of ${vocabSize}`);
  }
}
