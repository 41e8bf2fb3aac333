import { stat } from "node:fs/promises";
import { join } from "node:path";
import { asQansError, QansError } from "../errors.js";
import type { ImportedModel, ModelMetadata, TensorInput } from "../tensor/tensor.js";
import { hfArchitectureBeside, type HfConfigOptions } from "./hf-config.js";
import { importLlama2c } from "./llama2c.js";
import { openSafetensorsFile, openSafetensorsIndex, readWholeModel } from "./safetensors.js";
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
 * `*.json` with a weightsManifest, or a llama2.c `*.bin` checkpoint. Safetensors weights with a
 * Hugging Face Llama config.json beside them get its architecture record (`hfArchitectureBeside`).
 */
export async function importModel(path: string, options: HfConfigOptions = {}): Promise<ImportedModel> {
  const found = await kind(path);
  if (found === "missing") throw new QansError("IO_ERROR", `${path} does not exist`);
  const safetensors = await safetensorsPathOf(path);
  if (safetensors) {
    const file = await openSafetensors(safetensors, options);
    const model = await readWholeModel(file);
    return file.architecture ? { ...model, architecture: file.architecture } : model;
  }
  if (found === "directory") throw new QansError("BAD_INPUT", `${path}: folder holds neither ${INDEX_FILE} nor ${SINGLE_FILE}`);
  const lower = path.toLowerCase();
  if (found === "file") {
    // importTfjs rejects a .json without weightsManifest as BAD_INPUT naming the path.
    if (lower.endsWith(".json")) return importTfjs(path);
    if (lower.endsWith(".bin")) return importLlama2c(path);
  }
  throw new QansError("BAD_INPUT", `${path}: not a recognised model (expected a folder, .safetensors, .index.json, TF.js .json or llama2.c .bin)`);
}

/** A model's tensors as a stream, for packing: `openModelTensors`. */
export interface ModelTensors extends ModelMetadata {
  count: number;
  tensors(): AsyncIterable<TensorInput>;
  close(): Promise<void>;
}

/**
 * The model at `path` (as `importModel` finds it) with its tensors read as they are asked for:
 * safetensors files and sharded safetensors one tensor at a time, tensors of more than `wholeBytes`
 * as readers over the file (see `openSafetensorsFile`); the other formats, which are small, whole.
 */
export async function openModelTensors(path: string, options: { wholeBytes?: number } & HfConfigOptions = {}): Promise<ModelTensors> {
  const safetensors = await safetensorsPathOf(path);
  if (safetensors) return openSafetensors(safetensors, options);
  const model = await importModel(path);
  return { ...model, count: model.tensors.length, tensors: async function* () { yield* model.tensors; }, close: async () => undefined };
}

/** A safetensors file or index, opened, with the architecture record of the config.json beside it if that is a Llama one. */
async function openSafetensors(path: string, options: { wholeBytes?: number } & HfConfigOptions): Promise<ModelTensors> {
  const file = isIndexPath(path) ? await openSafetensorsIndex(path, options) : await openSafetensorsFile(path, options);
  try {
    const architecture = await hfArchitectureBeside(path, (name) => file.shapes.get(name), options);
    return architecture ? { ...file, architecture: { ...architecture } } : file;
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** The safetensors file or index that `importModel` would read for `path`, if it reads one. */
async function safetensorsPathOf(path: string): Promise<string | undefined> {
  const found = await kind(path);
  if (found === "directory") {
    if ((await kind(join(path, INDEX_FILE))) === "file") return join(path, INDEX_FILE);
    if ((await kind(join(path, SINGLE_FILE))) === "file") return join(path, SINGLE_FILE);
    return undefined;
  }
  return found === "file" && (isIndexPath(path) || path.toLowerCase().endsWith(".safetensors")) ? path : undefined;
}

function isIndexPath(path: string): boolean {
  return path.toLowerCase().endsWith(".index.json");
}
