import { QansError } from "../errors.js";
import { toFloat32 } from "../tensor/convert.js";
import { isFloatPlaneDType } from "../tensor/dtype.js";
import type { ImportedModel } from "../tensor/tensor.js";

/** A model's float tensors as binary32, converted once and looked up by name, as LlamaModel.fromWeights wants them. */
export interface ModelWeights {
  readonly get: (name: string) => Float32Array;
  /** The weights with some tensors replaced: a candidate quantisation of the model. */
  with(replacements: ReadonlyMap<string, Float32Array>): (name: string) => Float32Array;
}

export function modelWeights(model: ImportedModel): ModelWeights {
  const values = new Map<string, Float32Array>();
  for (const tensor of model.tensors) if (isFloatPlaneDType(tensor.dtype)) values.set(tensor.name, toFloat32(tensor.dtype, tensor.data));
  const get = (name: string): Float32Array => {
    const found = values.get(name);
    if (found === undefined) throw new QansError("NOT_FOUND", `the model has no float tensor "${name}"`);
    return found;
  };
  return { get, with: (replacements) => (name) => replacements.get(name) ?? get(name) };
}
