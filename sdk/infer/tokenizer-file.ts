import { stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { readSmallFile } from "../io/source.js";
import { decodeUtf8Strict } from "../json/strict-json.js";
import type { Tokenizer } from "./tokenizer.js";
import { HfBpeTokenizer } from "./tokenizer-hf.js";
import { Llama2cTokenizer } from "./tokenizer-llama2c.js";

/** Tokenizer files are read whole; a Llama 3 tokenizer.json is about 9 MB. */
const MAX_TOKENIZER_BYTES = 256 * 1024 * 1024;

/** The names looked for beside a model, in this order. */
export const TOKENIZER_FILE_NAMES = ["tok512.bin", "tokenizer.bin", "tokenizer.json"] as const;

/**
 * Loads a tokenizer, choosing its kind from the file: a `.json` file is Hugging Face's
 * tokenizer.json, anything else llama2.c's tokenizer.bin format.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const bytes = await readSmallFile(path, MAX_TOKENIZER_BYTES, "tokenizer");
  if (path.toLowerCase().endsWith(".json")) return HfBpeTokenizer.parse(decodeUtf8Strict(bytes, path), path);
  return Llama2cTokenizer.parse(bytes, path);
}

/** The first of TOKENIZER_FILE_NAMES in the folder of a model file, if there is one. */
export async function findTokenizerBeside(modelPath: string): Promise<string | undefined> {
  for (const name of TOKENIZER_FILE_NAMES) {
    const candidate = join(dirname(modelPath), name);
    const found = await stat(candidate).then(
      (stats) => stats.isFile(),
      () => false,
    );
    if (found) return candidate;
  }
  return undefined;
}
