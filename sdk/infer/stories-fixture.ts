import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { importLlama2c } from "../import/llama2c.js";
import { MemorySource } from "../io/source.js";
import { MemorySink } from "../io/sink.js";
import { packModel, type PackMode } from "../pack.js";
import { QansReader } from "../reader.js";
import { STORIES_PATH } from "../testing/fixtures.js";
import { LlamaModel } from "./llama.js";

/** Test fixtures built from stories260K (../shared/models): packed files, the tokenizer, the README's check. */

export const STORIES_TOKENIZER_PATH = join(dirname(STORIES_PATH), "tok512.bin");
const MODELS_README = join(dirname(STORIES_PATH), "..", "README.md");

/** stories260K packed in `mode` in memory, as file bytes. */
export async function packStories(mode: PackMode): Promise<Uint8Array> {
  const sink = new MemorySink();
  await packModel(await importLlama2c(STORIES_PATH), sink, { mode });
  return sink.bytes();
}

/** A model loaded from stories260K packed in `mode`. */
export async function loadPackedStories(mode: PackMode): Promise<LlamaModel> {
  const reader = await QansReader.open(new MemorySource(await packStories(mode), `stories260K ${mode}`));
  try {
    return await LlamaModel.load(reader);
  } finally {
    await reader.close();
  }
}

/** The greedy text the models README gives for the prompt "Zoo", read from the README itself. */
export function readmeGreedyText(): { prompt: string; steps: number; text: string } {
  const readme = readFileSync(MODELS_README, "utf8");
  const match = /greedy decoding \(temperature 0\) for (\d+) steps from the prompt "([^"]+)" gives\s+"([^"]+)"/.exec(readme);
  if (!match) throw new Error(`${MODELS_README} no longer states the greedy reference text`);
  return { steps: Number(match[1]), prompt: match[2], text: match[3] };
}
