import { describe, expect, it } from "vitest";
import { encodeSafetensorsHeader } from "../../sdk/export/safetensors.js";
import { readSafetensorsStream } from "../../sdk/import/safetensors-stream.js";
import {
  dataBytes,
  DEFAULT_WEIGHTS,
  inverseNormal,
  layersForBytes,
  llamaTensors,
  modelMetadata,
  planModel,
  rowsPerChunk,
  safetensorsChunks,
  safetensorsHeader,
  STORIES110M,
  TensorValues,
  type LlamaShape,
} from "./llama-shape.js";

const TINY: LlamaShape = { dim: 64, hidden: 160, heads: 4, vocab: 300, layers: 2 };

function concat(chunks: Iterable<Uint8Array>): Uint8Array {
  return new Uint8Array(Buffer.concat([...chunks]));
}

function std(values: ArrayLike<number>): number {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    squares += values[i] * values[i];
  }
  const mean = sum / values.length;
  return Math.sqrt(squares / values.length - mean * mean);
}

describe("llamaTensors", () => {
  it("lists stories110M's tensors with their shapes, in file order", () => {
    const tensors = llamaTensors(STORIES110M);
    expect(tensors).toHaveLength(2 + 9 * 12 + 1);
    expect(tensors[0]).toMatchObject({ name: "tok_embeddings.weight", shape: [32000, 768] });
    expect(tensors.slice(1, 10).map((t) => [t.name, t.shape])).toEqual([
      ["layers.0.attention_norm.weight", [768]],
      ["layers.0.attention.wq.weight", [768, 768]],
      ["layers.0.attention.wk.weight", [768, 768]],
      ["layers.0.attention.wv.weight", [768, 768]],
      ["layers.0.attention.wo.weight", [768, 768]],
      ["layers.0.ffn_norm.weight", [768]],
      ["layers.0.feed_forward.w1.weight", [2048, 768]],
      ["layers.0.feed_forward.w2.weight", [768, 2048]],
      ["layers.0.feed_forward.w3.weight", [2048, 768]],
    ]);
    expect(tensors.at(-2)).toMatchObject({ name: "norm.weight", shape: [768] });
    expect(tensors.at(-1)).toMatchObject({ name: "output.weight", shape: [32000, 768] });
    // 12 layers of 7,079,424 weights, two 32000 × 768 matrices and the final norm.
    expect(dataBytes(tensors)).toBe(4 * (12 * 7_079_424 + 2 * 32000 * 768 + 768));
  });

  it("repeats layers to the fewest that reach a size", () => {
    for (const target of [1, 0.5e9, 2e9, 4e9]) {
      const layers = layersForBytes(STORIES110M, target);
      expect(dataBytes(llamaTensors({ ...STORIES110M, layers }))).toBeGreaterThanOrEqual(target);
      if (layers > 1) expect(dataBytes(llamaTensors({ ...STORIES110M, layers: layers - 1 }))).toBeLessThan(target);
    }
    expect(layersForBytes(STORIES110M, 2e9)).toBe(64);
    expect(layersForBytes(STORIES110M, 4e9)).toBe(135);
  });
});

describe("safetensorsHeader", () => {
  it("is the header the SDK writes for the same tensors, so that a round trip can be bit-exact", () => {
    const plan = planModel(TINY);
    const metadata = modelMetadata(plan);
    const ours = safetensorsHeader(plan.tensors, metadata);
    const sdk = encodeSafetensorsHeader(
      plan.tensors.map((t) => ({ name: t.name, dtype: "F32", shape: t.shape, byteLength: t.byteLength })),
      metadata,
    );
    expect(Buffer.from(ours).equals(Buffer.from(sdk))).toBe(true);
    expect(ours.length % 8).toBe(0);
  });
});

describe("safetensorsChunks", () => {
  it("is a safetensors stream the SDK reads, header first, then each tensor in offset order", async () => {
    const plan = planModel(TINY);
    const stream = await readSafetensorsStream(safetensorsChunks(plan, 4096));
    expect(stream.header.metadata).toEqual(modelMetadata(plan));
    expect(stream.header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(plan.tensors.map((t) => [t.name, "F32", t.shape]));
    let i = 0;
    for await (const tensor of stream.tensors) {
      const spec = plan.tensors[i++];
      const values = new TensorValues(spec, plan);
      const expected = values.next(values.rows);
      expect(Buffer.from(tensor.data).equals(Buffer.from(expected.buffer))).toBe(true);
    }
    expect(i).toBe(plan.tensors.length);
  });

  it("gives the same bytes for a seed whatever the chunk size, and other bytes for another seed", () => {
    const plan = planModel(TINY);
    const a = concat(safetensorsChunks(plan, 4096));
    const b = concat(safetensorsChunks(plan, 1000));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(a.length).toBe(safetensorsHeader(plan.tensors, modelMetadata(plan)).length + dataBytes(plan.tensors));
    const other = concat(safetensorsChunks(planModel(TINY, { ...DEFAULT_WEIGHTS, seed: 2 }), 4096));
    expect(Buffer.from(a).equals(Buffer.from(other))).toBe(false);
  });

  it("yields chunks of whole rows, about the size asked", () => {
    expect(rowsPerChunk(768, 1 << 20)).toBe(341);
    expect(rowsPerChunk(2048, 1000)).toBe(1);
    const chunks = [...safetensorsChunks(planModel(TINY), 4096)].slice(1);
    expect(chunks.every((chunk) => chunk.length <= 4096 && chunk.length % 4 === 0)).toBe(true);
  });
});

describe("TensorValues", () => {
  const plan = planModel({ ...STORIES110M, layers: 2 });
  const tensor = (name: string) => plan.tensors.find((t) => t.name === name)!;

  it("gives matrices per-input-channel scales with a few outlier channels 10 to 50 times larger", () => {
    const values = new TensorValues(tensor("layers.0.feed_forward.w1.weight"), plan);
    const w = values.next(values.rows);
    expect(w.every(Number.isFinite)).toBe(true);
    const column = (j: number) => Float64Array.from({ length: values.rows }, (_, i) => w[i * values.cols + j]);
    const stds = Array.from({ length: values.cols }, (_, j) => std(column(j)));
    const median = [...stds].sort((x, y) => x - y)[values.cols >> 1];
    expect(median).toBeGreaterThan(0.015);
    expect(median).toBeLessThan(0.025);
    const outliers = values.outliers.map((o) => o.channel);
    expect(outliers).toHaveLength(DEFAULT_WEIGHTS.outlierChannels);
    for (const { channel, factor } of values.outliers) {
      expect(factor).toBeGreaterThanOrEqual(10);
      expect(factor).toBeLessThanOrEqual(50);
      expect(stds[channel] / median).toBeGreaterThan(5);
    }
    // Outside the outliers, columns spread log-normally (σ 0.3): none reaches 5 times the median.
    const ordinary = stds.filter((_, j) => !outliers.includes(j));
    expect(Math.max(...ordinary) / median).toBeLessThan(5);
    expect(std(ordinary.map(Math.log))).toBeGreaterThan(0.2);
    expect(std(ordinary.map(Math.log))).toBeLessThan(0.4);
    // Each column is Gaussian around zero: about 68% of its values within one of its σ.
    const c = column(outliers[0]);
    const within = c.filter((v) => Math.abs(v) <= stds[outliers[0]]).length / c.length;
    expect(within).toBeGreaterThan(0.64);
    expect(within).toBeLessThan(0.72);
  });

  it("shares the residual stream's outlier channels between matrices that read it", () => {
    const wq = new TensorValues(tensor("layers.0.attention.wq.weight"), plan);
    const w1 = new TensorValues(tensor("layers.1.feed_forward.w1.weight"), plan);
    const w2 = new TensorValues(tensor("layers.1.feed_forward.w2.weight"), plan);
    expect(wq.outliers.map((o) => o.channel)).toEqual(plan.residualOutliers);
    expect(w1.outliers.map((o) => o.channel)).toEqual(plan.residualOutliers);
    expect(w2.outliers.every((o) => o.channel < STORIES110M.hidden)).toBe(true);
  });

  it("makes RMSNorm weights positive, around 1", () => {
    const values = new TensorValues(tensor("layers.0.ffn_norm.weight"), plan);
    const norm = values.next(1);
    expect(norm.length).toBe(768);
    expect(norm.every((v) => v > 0)).toBe(true);
    const logs = Array.from(norm, Math.log);
    expect(Math.abs(logs.reduce((a, b) => a + b, 0) / logs.length)).toBeLessThan(0.05);
    expect(std(logs)).toBeGreaterThan(0.25);
    expect(std(logs)).toBeLessThan(0.35);
  });

  it("gives the same rows however they are asked for", () => {
    const whole = new TensorValues(tensor("layers.1.attention.wo.weight"), plan).next(768);
    const split = new TensorValues(tensor("layers.1.attention.wo.weight"), plan);
    const parts = [split.next(5), split.next(300), split.next(1000)];
    expect(split.rowsLeft).toBe(0);
    expect(parts[2].length).toBe(463 * 768);
    expect(Buffer.from(concat(parts.map((p) => new Uint8Array(p.buffer)))).equals(Buffer.from(whole.buffer))).toBe(true);
  });
});

describe("TensorValues with per-kind parameters", () => {
  const shape = { ...STORIES110M, layers: 1, vocab: 1000 };
  const perKind = planModel(shape, {
    ...DEFAULT_WEIGHTS,
    matrices: { q: { stdTimesSqrtFanIn: 1.8, channelSigma: 0.2, laplaceShare: 1 } },
    norms: { ffn: { logMean: -0.5, sigma: 0.15 } },
  });
  const global = planModel(shape, DEFAULT_WEIGHTS);
  const values = (plan: typeof global, name: string) => {
    const v = new TensorValues(plan.tensors.find((t) => t.name === name)!, plan);
    return v.next(v.rows);
  };

  it("generates the kinds it does not name exactly as the global parameters do", () => {
    for (const name of ["tok_embeddings.weight", "layers.0.attention.wk.weight", "layers.0.attention_norm.weight", "output.weight"]) {
      expect(Buffer.from(values(perKind, name).buffer).equals(Buffer.from(values(global, name).buffer)), name).toBe(true);
    }
  });

  it("gives a named matrix kind std c / sqrt(fan-in), outliers aside, and its tail", () => {
    const tensor = perKind.tensors.find((t) => t.name === "layers.0.attention.wq.weight")!;
    const generator = new TensorValues(tensor, perKind);
    const w = generator.next(generator.rows);
    const outliers = new Set(generator.outliers.map((o) => o.channel));
    const ordinary = w.filter((_, i) => !outliers.has(i % generator.cols));
    // 768 column scales of σ 0.2: the matrix's std is within about 1.5% of c / sqrt(768).
    expect(std(ordinary) / (1.8 / Math.sqrt(768))).toBeGreaterThan(0.96);
    expect(std(ordinary) / (1.8 / Math.sqrt(768))).toBeLessThan(1.04);
    // Laplace values (p = 1) over their column's scale: kurtosis near 6, where a Gaussian's is 3.
    let m2 = 0;
    let m4 = 0;
    for (let i = 0; i < w.length; i++) {
      const j = i % generator.cols;
      if (outliers.has(j)) continue;
      const z = w[i] / generator.columnScale[j];
      m2 += z * z;
      m4 += z ** 4;
    }
    const kurtosis = (m4 / ordinary.length) / (m2 / ordinary.length) ** 2;
    expect(kurtosis).toBeGreaterThan(5.6);
    expect(kurtosis).toBeLessThan(6.2);
  });

  it("gives a named norm kind its median and σ", () => {
    const logs = Array.from(values(perKind, "layers.0.ffn_norm.weight"), Math.log);
    expect(Math.abs(logs.reduce((a, b) => a + b, 0) / logs.length + 0.5)).toBeLessThan(0.02);
    expect(std(logs)).toBeGreaterThan(0.13);
    expect(std(logs)).toBeLessThan(0.17);
  });
});

describe("inverseNormal", () => {
  it("matches known quantiles", () => {
    expect(inverseNormal(0.5)).toBeCloseTo(0, 12);
    expect(inverseNormal(0.975)).toBeCloseTo(1.959963985, 7);
    expect(inverseNormal(0.001)).toBeCloseTo(-3.090232306, 7);
    expect(() => inverseNormal(1)).toThrow();
  });
});
