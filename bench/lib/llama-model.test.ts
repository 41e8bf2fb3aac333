import { describe, expect, it } from "vitest";
import { matrixSpecs, normNames, parseLlamaArchitecture } from "../../sdk/infer/architecture.js";
import { DEFAULT_WEIGHTS, MATRIX_ROLES, NORM_ROLES, TensorValues, planModel, type WeightParams } from "./llama-shape.js";
import { describeWeights, huggingFaceName, llamaArchitecture, llamaTensorData, shortNumber } from "./llama-model.js";

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

  it("names every per-kind parameter in its description, and the outlier channels or their absence", () => {
    const params: WeightParams = {
      ...DEFAULT_WEIGHTS,
      outlierChannels: 0,
      matrices: Object.fromEntries(MATRIX_ROLES.map((role, i) => [role, { stdTimesSqrtFanIn: 1.11 + i, channelSigma: 0.0123 * (i + 1), laplaceShare: 0.05 * i }])),
      norms: Object.fromEntries(NORM_ROLES.map((role, i) => [role, { logMean: -0.271 + i, sigma: 0.131 + i / 10 }])),
    };
    const text = describeWeights(params, SHAPE);
    for (const role of MATRIX_ROLES) {
      const m = params.matrices![role]!;
      expect(text).toContain(`${role} c ${shortNumber(m.stdTimesSqrtFanIn)} σ ${shortNumber(m.channelSigma)} p ${shortNumber(m.laplaceShare)}`);
    }
    for (const role of NORM_ROLES) expect(text).toContain(`${role} μ ${shortNumber(params.norms![role]!.logMean)} σ ${shortNumber(params.norms![role]!.sigma)}`);
    expect(text).toContain("no outlier channels");
    expect(describeWeights({ ...params, outlierChannels: 4, outlierMin: 10, outlierMax: 50 }, SHAPE)).toContain("4 outlier channels per matrix × U(10, 50)");
    expect(shortNumber(0.123456)).toBe("0.123");
  });
});
