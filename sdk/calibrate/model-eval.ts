import type { LlamaArchitecture } from "../infer/architecture.js";
import { evaluateAgainst, type Agreement } from "../infer/eval.js";
import { LlamaModel } from "../infer/llama.js";
import { prepareTensor, reconstructPrepared, type ChannelStatistics, type QuantSetting } from "../quant/setting.js";
import type { TensorData } from "../tensor/tensor.js";
import type { ModelWeights } from "./model-weights.js";

/** Every field of a setting that changes the reconstruction. */
function settingKey(setting: QuantSetting): string {
  return `${setting.bits}/${setting.groupSize}/${setting.alpha}/${setting.prune}/${setting.rounding ?? "nearest"}`;
}

/**
 * Runs candidate quantisations of a Llama model against the model itself: each tensor's
 * reconstruction under a setting is computed once and kept, so that a search that revisits
 * settings (bisection over plans) pays for each only once.
 */
export class QuantizedModelEvaluator {
  private readonly reconstructions = new Map<string, Float32Array>();
  private readonly reference: LlamaModel;
  private readonly tensors: Map<string, TensorData>;

  constructor(
    private readonly architecture: LlamaArchitecture,
    private readonly weights: ModelWeights,
    tensors: readonly TensorData[],
    private readonly statistics: ReadonlyMap<string, ChannelStatistics> | undefined,
  ) {
    this.reference = LlamaModel.fromWeights(architecture, weights.get);
    this.tensors = new Map(tensors.map((tensor) => [tensor.name, tensor]));
  }

  /** The unquantised weights of `name`. */
  original(name: string): Float32Array {
    return this.weights.get(name);
  }

  /** The weights a reader reconstructs for `name` under `setting`. */
  reconstruct(name: string, setting: QuantSetting): Float32Array {
    const key = `${name}\u0000${settingKey(setting)}`;
    let values = this.reconstructions.get(key);
    if (values === undefined) {
      const tensor = this.tensors.get(name)!;
      values = reconstructPrepared(prepareTensor(tensor, setting, this.statistics?.get(name), this.weights.get(name)));
      this.reconstructions.set(key, values);
    }
    return values;
  }

  /** The model with the tensors of `settings` quantised, scored against the unquantised model on `sequences`. */
  evaluate(settings: ReadonlyMap<string, QuantSetting>, sequences: readonly (readonly number[])[]): Agreement {
    const replaced = new Map<string, Float32Array>();
    for (const [name, setting] of settings) replaced.set(name, this.reconstruct(name, setting));
    const model = LlamaModel.fromWeights(this.architecture, this.weights.with(replaced));
    return evaluateAgainst(model, this.reference, sequences);
  }
}
