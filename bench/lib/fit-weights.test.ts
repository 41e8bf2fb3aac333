import { beforeAll, describe, expect, it } from "vitest";
import { layerNames } from "../../sdk/infer/architecture.js";
import { importLlama2c } from "../../sdk/import/llama2c.js";
import { toFloat32 } from "../../sdk/tensor/convert.js";
import type { ImportedModel } from "../../sdk/tensor/tensor.js";
import { STORIES_PATH } from "../../sdk/testing/fixtures.js";
import { fitWeightParams, matrixStatistics, measureWeightStatistics, type WeightStatistics } from "./fit-weights.js";
import { DEFAULT_WEIGHTS, MATRIX_ROLES, mixtureQuantiles, NORM_ROLES, planModel, type LlamaShape, type MatrixParams, type MatrixRole, type NormParams, type NormRole, type WeightParams } from "./llama-shape.js";
import { llamaArchitecture, llamaTensorData } from "./llama-model.js";

/** Exact moments of a quantile table's distribution: each interval's values are uniform on the segment between its ends. */
function tableMoments(table: Float64Array): { variance: number; kurtosis: number } {
  const segment = (a: number, b: number, m: number) => (b === a ? a ** m : (b ** (m + 1) - a ** (m + 1)) / ((m + 1) * (b - a)));
  let m2 = 0;
  let m4 = 0;
  for (let i = 0; i + 1 < table.length; i++) {
    m2 += segment(table[i], table[i + 1], 2);
    m4 += segment(table[i], table[i + 1], 4);
  }
  m2 /= table.length - 1;
  m4 /= table.length - 1;
  return { variance: m2, kurtosis: m4 / (m2 * m2) };
}

describe("mixtureQuantiles", () => {
  it("reproduces the mixture's kurtosis 3(1 − p) + 6p at unit variance", () => {
    // Cutting the tails at the table's ends (probability 2^-17 each) loses at most 1.5% of the
    // fourth moment (the Laplace tail beyond 7.8σ) and 0.15% of the variance.
    for (const p of [0, 0.25, 0.5, 0.75, 1]) {
      const { variance, kurtosis } = tableMoments(mixtureQuantiles(p));
      expect(variance, `p ${p}`).toBeGreaterThan(0.9985);
      expect(variance, `p ${p}`).toBeLessThanOrEqual(1);
      expect(kurtosis / (3 * (1 - p) + 6 * p), `p ${p}`).toBeGreaterThan(0.985);
      expect(kurtosis / (3 * (1 - p) + 6 * p), `p ${p}`).toBeLessThanOrEqual(1);
    }
  });

  it("is the Laplace quantile function at p = 1 and increasing for every p", () => {
    const table = mixtureQuantiles(1);
    const n = table.length;
    for (const k of [0, 1, 100, 20000, n >> 1, n - 2]) {
      const q = (k + 0.5) / n;
      const laplace = q < 0.5 ? Math.log(2 * q) / Math.SQRT2 : -Math.log(2 * (1 - q)) / Math.SQRT2;
      expect(table[k]).toBeCloseTo(laplace, 9);
    }
    for (const p of [0.3, 1]) {
      const t = mixtureQuantiles(p);
      expect(t.every((v, i) => i === 0 || v > t[i - 1])).toBe(true);
    }
    expect(() => mixtureQuantiles(1.5)).toThrow(/not in \[0, 1\]/);
  });
});

const SHAPE: LlamaShape = { dim: 256, hidden: 512, heads: 4, vocab: 1000, layers: 2 };

const KNOWN: Record<MatrixRole, MatrixParams> = {
  embedding: { stdTimesSqrtFanIn: 2.5, channelSigma: 0.4, laplaceShare: 0 },
  q: { stdTimesSqrtFanIn: 1.9, channelSigma: 0.2, laplaceShare: 0.9 },
  k: { stdTimesSqrtFanIn: 1.8, channelSigma: 0.25, laplaceShare: 0.6 },
  v: { stdTimesSqrtFanIn: 0.4, channelSigma: 0.4, laplaceShare: 0 },
  o: { stdTimesSqrtFanIn: 0.5, channelSigma: 0.2, laplaceShare: 0.3 },
  gate: { stdTimesSqrtFanIn: 1.0, channelSigma: 0.05, laplaceShare: 0.4 },
  up: { stdTimesSqrtFanIn: 0.9, channelSigma: 0.1, laplaceShare: 0 },
  down: { stdTimesSqrtFanIn: 1.6, channelSigma: 0.15, laplaceShare: 0.2 },
  classifier: { stdTimesSqrtFanIn: 1.2, channelSigma: 0.3, laplaceShare: 0.5 },
};
const KNOWN_NORMS: Record<NormRole, NormParams> = { attention: { logMean: 0.15, sigma: 0.25 }, ffn: { logMean: -0.5, sigma: 0.12 }, final: { logMean: 0.55, sigma: 0.3 } };

function generated(params: WeightParams): ImportedModel {
  return { metadata: {}, architecture: llamaArchitecture(SHAPE), tensors: [...llamaTensorData(planModel(SHAPE, params))] };
}

describe("fitWeightParams on the generator's own output", () => {
  const known: WeightParams = { ...DEFAULT_WEIGHTS, outlierChannels: 0, matrices: KNOWN, norms: KNOWN_NORMS };
  let fitted: WeightParams;
  beforeAll(() => {
    fitted = fitWeightParams(generated(known));
  });

  it("recovers every kind's std × sqrt(fan-in), channel σ and kurtosis", () => {
    for (const role of MATRIX_ROLES) {
      const want = KNOWN[role];
      const got = fitted.matrices![role]!;
      // Tolerances are 3 standard errors of the worst kind, σ 0.4 over 256 columns: 256 log-normal
      // column scales make a matrix's mean square vary by sqrt(e^(4σ²) − 1)/16 = 5.9%, its std by 3%.
      expect(Math.abs(got.stdTimesSqrtFanIn / want.stdTimesSqrtFanIn - 1), role).toBeLessThan(0.09);
      // σ of 256 column scales, estimated: standard error σ/sqrt(2·cols) = 0.018.
      expect(Math.abs(got.channelSigma - want.channelSigma), role).toBeLessThan(0.055);
      // The kurtosis 3 + 3p of ≥ 2^16 values per tensor, heavy-tailed: within 0.35 (p within about 0.12).
      expect(Math.abs(3 * got.laplaceShare - 3 * want.laplaceShare), role).toBeLessThan(0.35);
    }
    expect(fitted.outlierChannels).toBe(0);
  });

  it("recovers every norm kind's median and σ", () => {
    for (const role of NORM_ROLES) {
      // 256 weights per vector: standard errors σ/16 ≤ 0.019 for the log mean, σ/23 for σ.
      expect(Math.abs(fitted.norms![role]!.logMean - KNOWN_NORMS[role].logMean), role).toBeLessThan(0.06);
      expect(Math.abs(fitted.norms![role]!.sigma - KNOWN_NORMS[role].sigma), role).toBeLessThan(0.04);
    }
  });

  it("counts outlier channels and their factors, and leaves them out of the std", () => {
    const quiet = Object.fromEntries(MATRIX_ROLES.map((role) => [role, { ...KNOWN[role], channelSigma: Math.min(KNOWN[role].channelSigma, 0.2) }]));
    const withOutliers = fitWeightParams(generated({ ...known, matrices: quiet, outlierChannels: 4, outlierMin: 10, outlierMax: 50 }));
    expect(withOutliers.outlierChannels).toBe(4);
    // A factor in [10, 50] times its column's own log-normal scale (σ ≤ 0.2, so within e^±0.8).
    expect(withOutliers.outlierMin).toBeGreaterThan(10 * Math.exp(-0.8));
    expect(withOutliers.outlierMax).toBeLessThan(50 * Math.exp(0.8));
    for (const role of MATRIX_ROLES) expect(Math.abs(withOutliers.matrices![role]!.stdTimesSqrtFanIn / KNOWN[role].stdTimesSqrtFanIn - 1), role).toBeLessThan(0.09);
  });
});

describe("fitWeightParams on stories260K", () => {
  let model: ImportedModel;
  let statistics: WeightStatistics;
  beforeAll(async () => {
    model = await importLlama2c(STORIES_PATH);
    statistics = measureWeightStatistics(model, STORIES_PATH);
  });
  const layer0 = (role: keyof ReturnType<typeof layerNames>) => {
    const tensor = model.tensors.find((t) => t.name === layerNames(0)[role])!;
    return matrixStatistics(tensor.name, { shape: tensor.shape, data: toFloat32(tensor.dtype, tensor.data) });
  };

  it("measures layer 0 as it was measured by hand: std × sqrt(fan-in), σ of log column RMS, kurtosis", () => {
    const embedding = model.tensors.find((t) => t.name === "model.embed_tokens.weight")!;
    const byHand: [string, ReturnType<typeof matrixStatistics>, number, number, number][] = [
      ["embedding", matrixStatistics(embedding.name, { shape: embedding.shape, data: toFloat32("F32", embedding.data) }), 2.46, 0.39, 3.0],
      ["q", layer0("q"), 1.89, 0.22, 6.3],
      ["k", layer0("k"), 1.81, 0.23, 5.1],
      ["v", layer0("v"), 0.37, 0.44, 3.0],
      ["o", layer0("o"), 0.49, 0.21, 3.9],
      ["gate", layer0("gate"), 1.02, 0.06, 4.1],
      ["down", layer0("down"), 1.63, 0.15, 3.6],
      ["up", layer0("up"), 0.93, 0.06, 3.0],
    ];
    for (const [role, s, c, sigma, kurtosis] of byHand) {
      expect(Math.abs(s.stdTimesSqrtFanIn - c), role).toBeLessThan(0.01);
      expect(Math.abs(s.logRmsSigma - sigma), role).toBeLessThan(0.01);
      expect(Math.abs(s.columnKurtosis - kurtosis), role).toBeLessThan(0.15);
    }
  });

  it("finds no outlier channels in any matrix, so the fit has none", () => {
    for (const [role, s] of Object.entries(statistics.matrices)) {
      expect(s.outlierColumns, role).toBe(0);
      expect(s.maxRmsOverMedian, role).toBeLessThanOrEqual(3);
    }
    expect(fitWeightParams(model).outlierChannels).toBe(0);
  });

  it("gives q a heavier tail than v, and the tied classifier the embedding's parameters", () => {
    const fitted = fitWeightParams(model);
    expect(statistics.matrices.q!.columnKurtosis).toBeGreaterThan(statistics.matrices.v!.columnKurtosis + 1);
    expect(fitted.matrices!.q!.laplaceShare).toBeGreaterThan(fitted.matrices!.v!.laplaceShare + 0.5);
    expect(statistics.tiedClassifier).toBe(true);
    expect(fitted.matrices!.classifier).toEqual(fitted.matrices!.embedding);
  });

  it("removes the sampling noise of a column RMS from the channel σ", () => {
    const fitted = fitWeightParams(model);
    // The embedding is near-Gaussian over 512 rows: its noise is 1/(2·rows) in variance.
    const embedding = statistics.matrices.embedding!;
    expect(fitted.matrices!.embedding!.channelSigma).toBeCloseTo(Math.sqrt(embedding.logRmsSigma ** 2 - 1 / (2 * embedding.rows)), 2);
    for (const role of MATRIX_ROLES.filter((r) => r !== "classifier")) {
      expect(fitted.matrices![role]!.channelSigma, role).toBeLessThan(statistics.matrices[role]!.logRmsSigma);
    }
    // gate's and up's column RMS spread over 172 rows (0.055, 0.059) is about the noise alone, 1/sqrt(344) = 0.054.
    expect(fitted.matrices!.gate!.channelSigma).toBeLessThan(0.03);
    expect(fitted.matrices!.up!.channelSigma).toBeLessThan(0.03);
  });

  it("fits RMSNorm weights with geometric means 0.57 to 1.74 and σ of log 0.12 to 0.32", () => {
    const fitted = fitWeightParams(model);
    for (const role of NORM_ROLES) {
      const { logMean, sigma } = fitted.norms![role]!;
      expect(Math.exp(logMean), role).toBeGreaterThanOrEqual(0.57);
      expect(Math.exp(logMean), role).toBeLessThanOrEqual(1.745);
      expect(sigma, role).toBeGreaterThanOrEqual(0.12);
      expect(sigma, role).toBeLessThanOrEqual(0.32);
    }
    // The final norm is one vector: its geometric mean is the one measured by hand.
    expect(Math.exp(fitted.norms!.final!.logMean)).toBeCloseTo(1.74, 2);
  });

  it("refuses a model without a Llama architecture record", () => {
    expect(() => measureWeightStatistics({ metadata: {}, tensors: model.tensors }, "bare")).toThrow(/bare/);
  });
});
