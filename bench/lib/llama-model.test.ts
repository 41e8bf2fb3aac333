import { describe, expect, it } from "vitest";
import { matrixSpecs, normNames, parseLlamaArchitecture } from "../../sdk/infer/architecture.js";
import { DEFAULT_WEIGHTS, TensorValues, planModel } from "./llama-shape.js";
import { describeWeights, huggingFaceName, llamaArchitecture, llamaTensorData } from "./llama-model.js";

const SHAPE = { dim: 32, hidden: 48, heads: 4, vocab: 64, layers: 2 };

describe("the generated Llama model as a runnable model", () => {
  it("names every tensor as LlamaModel loads it, with the shape its architecture record implies", () => {
    const plan = planModel(SHAPE, DEFAULT_WEIGHTS);
    const config = parseLlamaArchitecture(llamaArchitecture(SHAPE), "generated");
    const expected = new Map<string, number[]>([...matrixSpecs(config).map((s): [string, number[]] => [s.name, [s.rows, s.cols]]), ...normNames(config).map((n): [string, number[]] => [n, [SHAPE.dim]])]);
    const tensors = [...llamaTensorData(plan)];
    expect(new Map(tensors.map((t) => [t.name, t.shape]))).toEqual(expected);
    for (const t of tensors) expect(t.data.byteLength, t.name).toBe(t.shape.reduce((a, b) => a * b, 4));
  });

  it("gives the generator's own values, in order", () => {
    const plan = planModel(SHAPE, DEFAULT_WEIGHTS);
    const first = llamaTensorData(plan).next().value!;
    const direct = new TensorValues(plan.tensors[0], plan).next(SHAPE.vocab);
    expect(Buffer.from(first.data).equals(Buffer.from(direct.buffer))).toBe(true);
    expect(first.name).toBe("model.embed_tokens.weight");
  });

  it("maps llama2.c names one to one and refuses an unknown one", () => {
    expect(huggingFaceName("layers.11.feed_forward.w2.weight")).toBe("model.layers.11.mlp.down_proj.weight");
    expect(huggingFaceName("layers.0.attention.wk.weight")).toBe("model.layers.0.self_attn.k_proj.weight");
    expect(() => huggingFaceName("layers.0.attention.wz.weight")).toThrow(/no Hugging Face name/);
  });

  it("names every synthetic parameter in its description", () => {
    const text = describeWeights(DEFAULT_WEIGHTS, SHAPE);
    for (const value of Object.values(DEFAULT_WEIGHTS)) expect(text).toContain(String(value));
  });
});
