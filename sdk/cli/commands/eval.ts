import { readSmallFile } from "../../io/source.js";
import { decodeUtf8Strict } from "../../json/strict-json.js";
import { DEFAULT_BOS, DEFAULT_EVAL_SET, EVAL_SEED_BASE, evalSeeds, evaluateAgainst, sampleSequences, textWindows } from "../../infer/eval.js";
import { loadLlamaModel } from "../../infer/model-file.js";
import { UsageError, parseCommand, parseInteger } from "../args.js";
import { checkTokenizerFits, resolveTokenizer } from "../infer-args.js";
import { print, printJson } from "../output.js";

const USAGE =
  "qans eval <model.qans|url> --reference <model.qans|.bin|.safetensors> [--text FILE | --samples N] [--length L] [--seed S] [--tokenizer FILE] [--json]";

/** Evaluation texts are read whole. */
const MAX_TEXT_BYTES = 256 * 1024 * 1024;

/**
 * Compares a model with a reference, as llama.cpp's perplexity tool does with --kl-divergence:
 * perplexity, its change against the reference's on the same tokens, mean KL divergence of the
 * next-token distributions and top-1 agreement. The default evaluation set is --samples sequences
 * of --length tokens sampled from the reference at temperature 1, sequence i with seed S + i
 * (S = --seed, by default EVAL_SEED_BASE); --text scores a text in windows of --length tokens (by
 * default the model's context), each window's second half, as llama.cpp does.
 */
export async function evalCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      reference: { type: "string" },
      text: { type: "string" },
      samples: { type: "string" },
      length: { type: "string" },
      seed: { type: "string" },
      tokenizer: { type: "string" },
      json: { type: "boolean", default: false },
    },
    1,
    USAGE,
  );
  const location = positionals[0];
  if (values.reference === undefined) throw new UsageError(`--reference <file> is required\nusage: ${USAGE}`);
  if (values.text !== undefined && values.samples !== undefined) throw new UsageError(`--text and --samples are alternatives; pass one\nusage: ${USAGE}`);
  if (values.text !== undefined && values.seed !== undefined) throw new UsageError(`--seed chooses the sampled sequences, which --text replaces\nusage: ${USAGE}`);
  const samples = parseInteger(values.samples, "--samples", 1, 1 << 20) ?? DEFAULT_EVAL_SET.sequences;
  const firstSeed = parseInteger(values.seed, "--seed", 0, Number.MAX_SAFE_INTEGER - samples) ?? EVAL_SEED_BASE;
  const lengthFlag = parseInteger(values.length, "--length", 2, 1 << 24);
  const tokenizer = await resolveTokenizer(values.tokenizer, location, USAGE, values.text !== undefined);

  const model = await loadLlamaModel(location);
  const reference = await loadLlamaModel(values.reference, { fallbackArchitecture: model.config });
  if (tokenizer) checkTokenizerFits(tokenizer, model.config.vocab_size);
  const bos = tokenizer?.bos ?? DEFAULT_BOS;

  let result;
  let evaluation;
  if (values.text !== undefined) {
    const length = lengthFlag ?? Math.min(model.config.max_seq_len, reference.config.max_seq_len);
    const text = decodeUtf8Strict(await readSmallFile(values.text, MAX_TEXT_BYTES, "evaluation text"), values.text);
    const windows = textWindows(tokenizer!.encode(text, { bos: tokenizer!.bos !== undefined }), length, bos);
    result = evaluateAgainst(model, reference, windows, { scoreFrom: Math.floor(length / 2) });
    evaluation = { source: "text", file: values.text, windows: windows.length, length };
  } else {
    const length = lengthFlag ?? Math.min(DEFAULT_EVAL_SET.length, model.config.max_seq_len);
    const seeds = evalSeeds(samples, firstSeed);
    const sequences = sampleSequences(reference, { seeds, length, temperature: DEFAULT_EVAL_SET.temperature, bos });
    result = evaluateAgainst(model, reference, sequences);
    evaluation = { source: "samples", sequences: samples, length, firstSeed, lastSeed: seeds[seeds.length - 1], temperature: DEFAULT_EVAL_SET.temperature, bos };
  }
  const perplexityChange = result.perplexity / result.referencePerplexity - 1;
  const report = { model: location, reference: values.reference, evaluation, ...result, perplexityChange };
  if (values.json) {
    await printJson(report);
    return 0;
  }
  const over =
    evaluation.source === "text"
      ? `${evaluation.windows} windows of ${evaluation.length} tokens of ${evaluation.file}, second halves scored`
      : `${evaluation.sequences} sequences of ${evaluation.length} tokens sampled from the reference (seeds ${evaluation.firstSeed} to ${evaluation.lastSeed}, temperature ${DEFAULT_EVAL_SET.temperature})`;
  const errors = result.standardErrors;
  await print(
    [
      `evaluated ${result.tokens} tokens: ${over}`,
      `perplexity          ${result.perplexity.toFixed(4)} ± ${errors.perplexity.toFixed(4)} (reference ${result.referencePerplexity.toFixed(4)}, ${signedPercent(perplexityChange)} ± ${(errors.perplexityRatio * 100).toFixed(3)}%)`,
      `mean KL divergence  ${result.meanKld.toExponential(4)} ± ${errors.meanKld.toExponential(2)}`,
      `top-1 agreement     ${(result.top1Agreement * 100).toFixed(2)}% ± ${(errors.top1Agreement * 100).toFixed(2)}%`,
      "(± one standard error over the scored positions)",
    ].join("\n"),
  );
  return 0;
}

function signedPercent(fraction: number): string {
  const percent = fraction * 100;
  return `${percent >= 0 ? "+" : ""}${percent.toFixed(3)}%`;
}
