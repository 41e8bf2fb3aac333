import { importModel } from "../import/detect.js";
import { isUrl } from "../io/open-source.js";
import { openModel } from "../model-set.js";
import { toFloat32 } from "../tensor/convert.js";
import type { TensorData } from "../tensor/tensor.js";
import { checkWeightShapes, parseLlamaArchitecture, type LlamaArchitecture } from "./architecture.js";
import type { Workload } from "./holder-costs.js";
import { LlamaModel, type LlamaLoadOptions } from "./llama.js";
import type { MemoryBudget } from "./memory-budget.js";
import { loadPlannedModel } from "./planned-model.js";

export interface ModelFileOptions extends LlamaLoadOptions {
  /**
   * The architecture to assume for a file that carries none (a safetensors file): for a reference,
   * the architecture of the model it is compared with.
   */
  fallbackArchitecture?: LlamaArchitecture;
  /**
   * For a QANS file or set: hold the matrices as the planner chooses within this budget for this
   * workload (planned-model.ts) rather than all decoded to F32. Ignored for other files, whose
   * weights have no compressed form.
   */
  memoryBudget?: { budget: MemoryBudget; workload: Workload; log?: (line: string) => void };
}

/**
 * Loads a Llama model from a QANS file or set (a path ending in .qans, or a URL), or from any file
 * `importModel` reads: a llama2.c checkpoint, safetensors (a file, an index or a folder).
 */
export async function loadLlamaModel(location: string, options: ModelFileOptions = {}): Promise<LlamaModel> {
  if (isUrl(location) || location.toLowerCase().endsWith(".qans")) {
    const reader = await openModel(location);
    try {
      if (options.memoryBudget) return (await loadPlannedModel(reader, { name: location, ...options.memoryBudget })).model;
      return await LlamaModel.load(reader, { name: location, ...options });
    } finally {
      await reader.close();
    }
  }
  const imported = await importModel(location);
  const architecture = parseLlamaArchitecture(imported.architecture ?? options.fallbackArchitecture, location);
  const byName = new Map<string, TensorData>(imported.tensors.map((tensor) => [tensor.name, tensor]));
  checkWeightShapes(architecture, (name) => byName.get(name)?.shape, location);
  return LlamaModel.fromWeights(
    architecture,
    (name) => {
      const tensor = byName.get(name)!;
      return toFloat32(tensor.dtype, tensor.data);
    },
    options,
  );
}
