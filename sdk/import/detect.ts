import { stat } from "node:fs/promises";
import { join } from "node:path";
import { asQansError, QansError } from "../errors.js";
import type { ImportedModel } from "../tensor/tensor.js";
import { importLlama2c } from "./llama2c.js";
import { importSafetensors, importSafetensorsIndex } from "./safetensors.js";
import { importTfjs } from "./tfjs.js";

const INDEX_FILE = "model.safetensors.index.json";
const SINGLE_FILE = "model.safetensors";

async function kind(path: string): Promise<"file" | "directory" | "missing" | "other"> {
  try {
    const stats = await stat(path);
    return stats.isFile() ? "file" : stats.isDirectory() ? "directory" : "other";
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return "missing";
    throw asQansError(error, `cannot inspect ${path}`);
  }
}

/**
 * Imports a model, choosing the format from the path: a folder (holding model.safetensors.index.json
 * or model.safetensors) or `*.index.json` for sharded safetensors, `*.safetensors`, a TF.js
 * `*.json` with a weightsManifest, or a llama2.c `*.bin` checkpoint.
 */
export async function importModel(path: string): Promise<ImportedModel> {
  const found = await kind(path);
  if (found === "missing") throw new QansError("IO_ERROR", `${path} does not exist`);
  if (found === "directory") {
    if ((await kind(join(path, INDEX_FILE))) === "file") return importSafetensorsIndex(join(path, INDEX_FILE));
    if ((await kind(join(path, SINGLE_FILE))) === "file") return importSafetensors(join(path, SINGLE_FILE));
    throw new QansError("BAD_INPUT", `${path}: folder holds neither ${INDEX_FILE} nor ${SINGLE_FILE}`);
  }
  const lower = path.toLowerCase();
  if (found === "file") {
    if (lower.endsWith(".index.json")) return importSafetensorsIndex(path);
    if (lower.endsWith(".safetensors")) return importSafetensors(path);
    // importTfjs rejects a .json without weightsManifest as BAD_INPUT naming the path.
    if (lower.endsWith(".json")) return importTfjs(path);
    if (lower.endsWith(".bin")) return importLlama2c(path);
  }
  throw new QansError("BAD_INPUT", `${path}: not a recognised model (expected a folder, .safetensors, .index.json, TF.js .json or llama2.c .bin)`);
}
