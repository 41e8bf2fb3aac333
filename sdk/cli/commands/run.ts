import { QansError } from "../../errors.js";
import { generateTokens } from "../../infer/generate.js";
import { LlamaModel } from "../../infer/llama.js";
import { loadPlannedModel } from "../../infer/planned-model.js";
import { Sampler } from "../../infer/sampler.js";
import { TokenTextStream } from "../../infer/tokenizer.js";
import { openModel } from "../../model-set.js";
import { parseCommand, parseInteger } from "../args.js";
import { checkTokenizerFits, parseMemoryBudget, parseNumber, resolveTokenizer } from "../infer-args.js";
import { formatBytes } from "../output.js";

const USAGE =
  "qans run <model.qans|url> [--prompt TEXT] [-n N] [--temperature T] [--top-p P] [--seed S] [--tokenizer FILE] [--memory-budget BYTES|PCT]";

const DEFAULT_NEW_TOKENS = 256;

/**
 * Generates text from a prompt, writing it to stdout as each token is produced (the prompt first,
 * as llama2.c's run prints it), then on stderr the speed and the bytes of weights held in memory.
 */
export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      prompt: { type: "string", default: "" },
      n: { type: "string", short: "n" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      seed: { type: "string" },
      tokenizer: { type: "string" },
      "memory-budget": { type: "string" },
    },
    1,
    USAGE,
  );
  const location = positionals[0];
  const maxNewTokens = parseInteger(values.n, "-n", 0, 2 ** 31) ?? DEFAULT_NEW_TOKENS;
  const temperature = parseNumber(values.temperature, "--temperature", 0, 100) ?? 1;
  const topP = parseNumber(values["top-p"], "--top-p", 0, 1) ?? 1;
  if (topP === 0) throw new QansError("INVALID_ARGUMENT", `--top-p must be above 0, got "${values["top-p"]}"`);
  const seed = parseInteger(values.seed, "--seed", 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const budget = parseMemoryBudget(values["memory-budget"]);
  const tokenizer = (await resolveTokenizer(values.tokenizer, location, USAGE, true))!;

  if (tokenizer.bos === undefined) throw new QansError("INVALID_ARGUMENT", "the tokenizer has no BOS token to start the text with");
  const prompt = tokenizer.encode(values.prompt);
  const reader = await openModel(location);
  let model: LlamaModel;
  try {
    if (budget) {
      // A budget below every matrix compressed is refused before any weight is decoded; the plan
      // (holders, predicted speed, resident bytes) goes to stderr.
      const workload = { prefillTokens: prompt.length, generatedTokens: Math.max(0, maxNewTokens - 1) };
      model = (await loadPlannedModel(reader, { budget, workload, name: location, log: (line) => process.stderr.write(`${line}\n`) })).model;
    } else {
      model = await LlamaModel.load(reader, { name: location });
    }
  } finally {
    await reader.close();
  }
  checkTokenizerFits(tokenizer, model.config.vocab_size);
  const sampler = new Sampler(model.config.vocab_size, { temperature, topP, seed });
  const text = new TokenTextStream(tokenizer);
  text.push(prompt[0]);
  let promptSeconds = 0;
  let generated = 0;
  // The time from asking for a sampled token to having it: the forward pass and sampling, without
  // writing the text, which on a small model takes longer than the model and which the planner's
  // prediction does not count.
  let modelSeconds = 0;
  const started = performance.now();
  let asked = started;
  for (const { token, sampled } of generateTokens(model, { prompt, maxNewTokens, sampler, stopTokens: tokenizer.stopTokens, batchPrefill: true })) {
    const now = performance.now();
    if (sampled) {
      generated++;
      modelSeconds += (now - asked) / 1000;
    } else {
      promptSeconds = (now - started) / 1000;
    }
    await writeOut(text.push(token));
    asked = performance.now();
  }
  const seconds = (performance.now() - started) / 1000;
  await writeOut(`${text.end()}\n`);
  const generationSeconds = seconds - promptSeconds;
  const rate = (s: number) => (s > 0 ? (generated / s).toFixed(1) : "n/a");
  const resident = model.residentWeightBytes;
  process.stderr.write(
    `prompt: ${prompt.length} tokens in ${promptSeconds.toFixed(3)} s; generated: ${generated} tokens in ${generationSeconds.toFixed(3)} s, ${rate(generationSeconds)} tokens/s ` +
      `(the model ${modelSeconds.toFixed(3)} s, ${rate(modelSeconds)} tokens/s; the rest writing the text); resident weights: ${resident} bytes (${formatBytes(resident)})\n`,
  );
  return 0;
}

/** Writes to stdout and waits, so text appears token by token even where pipes are asynchronous. */
function writeOut(text: string): Promise<void> {
  if (text === "") return Promise.resolve();
  return new Promise((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
}
