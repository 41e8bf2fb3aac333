/**
 * Fits the generator's weight parameters (llama-shape.ts `WeightParams`) to a real Llama model, per
 * kind of tensor, averaged over layers: each matrix kind's std × sqrt(fan-in), the spread of its
 * column (input channel) scales, its tail shape and its outlier columns; each norm kind's log-normal
 * median and σ.
 *
 * A small model's statistics are noisy in a way a large one's are not: a column's RMS over 32 or 64
 * rows varies by itself, and the kurtosis of values divided by their own column's RMS is biased low
 * at so few rows. Both are corrected against a column of the fitted tail shape simulated at the same
 * row count, so that the parameters describe the population and carry to a wider model.
 */
import { classifierName, EMBEDDING_NAME, FINAL_NORM_NAME, layerNames, parseLlamaArchitecture } from "../../sdk/infer/architecture.js";
import { QansError } from "../../sdk/errors.js";
import { toFloat32 } from "../../sdk/tensor/convert.js";
import type { ImportedModel } from "../../sdk/tensor/tensor.js";
import { Random } from "../../sdk/testing/random.js";
import { DEFAULT_WEIGHTS, type MatrixParams, type MatrixRole, type NormParams, type NormRole, type WeightParams } from "./llama-shape.js";

/** A column whose RMS is more than this many times the median column RMS is an outlier channel. */
export const OUTLIER_RATIO = 3;

/** One matrix kind's measurements, averaged over the layers (tensors) of that kind. */
export interface MatrixStatistics {
  tensors: number;
  rows: number;
  cols: number;
  /** Standard deviation of the values outside outlier columns, times sqrt(cols). */
  stdTimesSqrtFanIn: number;
  /** σ of log column RMS as measured, outlier columns left out: channel spread plus sampling noise. */
  logRmsSigma: number;
  /** Kurtosis of values divided by their own column's RMS, as measured at `rows` rows. */
  columnKurtosis: number;
  /** Outlier columns per tensor (column RMS > OUTLIER_RATIO × median). */
  outlierColumns: number;
  /** Largest column RMS over the median column RMS, over every tensor of the kind. */
  maxRmsOverMedian: number;
  /** The column RMS over the median of every outlier column found. */
  outlierRatios: number[];
}

/** One norm kind's measurements, averaged over its tensors. */
export interface NormStatistics {
  tensors: number;
  logMean: number;
  logSigma: number;
}

export interface WeightStatistics {
  matrices: Partial<Record<MatrixRole, MatrixStatistics>>;
  norms: Record<NormRole, NormStatistics>;
  tiedClassifier: boolean;
}

/** Measures every matrix and norm of a Llama model (Hugging Face names), per kind. */
export function measureWeightStatistics(model: ImportedModel, where = "model"): WeightStatistics {
  const config = parseLlamaArchitecture(model.architecture, where);
  const tensors = new Map(model.tensors.map((t) => [t.name, t]));
  const values = (name: string) => {
    const tensor = tensors.get(name);
    if (!tensor) throw new QansError("NOT_FOUND", `${where}: tensor ${name} is missing`);
    return { shape: tensor.shape, data: toFloat32(tensor.dtype, tensor.data) };
  };
  const matrixNames: Partial<Record<MatrixRole, string[]>> = { embedding: [EMBEDDING_NAME], q: [], k: [], v: [], o: [], gate: [], up: [], down: [] };
  const normNames: Record<NormRole, string[]> = { attention: [], ffn: [], final: [FINAL_NORM_NAME] };
  for (let layer = 0; layer < config.n_layers; layer++) {
    const names = layerNames(layer);
    for (const role of ["q", "k", "v", "o", "gate", "up", "down"] as const) matrixNames[role]!.push(names[role]);
    normNames.attention.push(names.inputNorm);
    normNames.ffn.push(names.postAttentionNorm);
  }
  if (!config.tie_embeddings) matrixNames.classifier = [classifierName(config)];

  const matrices: Partial<Record<MatrixRole, MatrixStatistics>> = {};
  for (const [role, names] of Object.entries(matrixNames) as [MatrixRole, string[]][]) {
    matrices[role] = averageMatrices(names.map((name) => matrixStatistics(name, values(name), where)));
  }
  const norms = {} as Record<NormRole, NormStatistics>;
  for (const role of Object.keys(normNames) as NormRole[]) {
    const each = normNames[role].map((name) => normStatistics(name, values(name).data, where));
    norms[role] = { tensors: each.length, logMean: mean(each.map((s) => s.logMean)), logSigma: mean(each.map((s) => s.logSigma)) };
  }
  return { matrices, norms, tiedClassifier: Boolean(config.tie_embeddings) };
}

/**
 * The generator's parameters fitted to `model`: per-kind matrices and norms, the classifier taking
 * the embedding's when the model ties them, and as many outlier channels as the model has per
 * matrix (rounded), with their range of factors. `seed` and the unused global fields come from `base`.
 */
export function fitWeightParams(model: ImportedModel, base: WeightParams = DEFAULT_WEIGHTS, where = "model"): WeightParams {
  return paramsFromStatistics(measureWeightStatistics(model, where), base);
}

/** fitWeightParams from measurements already taken. */
export function paramsFromStatistics(statistics: WeightStatistics, base: WeightParams = DEFAULT_WEIGHTS): WeightParams {
  const matrices: Partial<Record<MatrixRole, MatrixParams>> = {};
  for (const [role, s] of Object.entries(statistics.matrices) as [MatrixRole, MatrixStatistics][]) matrices[role] = fitMatrix(s);
  if (statistics.tiedClassifier) matrices.classifier = matrices.embedding;
  const norms = {} as Record<NormRole, NormParams>;
  for (const role of Object.keys(statistics.norms) as NormRole[]) norms[role] = { logMean: statistics.norms[role].logMean, sigma: statistics.norms[role].logSigma };
  const all = Object.values(statistics.matrices);
  const outlierChannels = Math.round(mean(all.map((s) => s.outlierColumns)));
  const ratios = all.flatMap((s) => s.outlierRatios);
  return {
    ...base,
    outlierChannels,
    outlierMin: outlierChannels > 0 ? Math.min(...ratios) : 1,
    outlierMax: outlierChannels > 0 ? Math.max(...ratios) : 1,
    matrices,
    norms,
  };
}

/** A kind's generator parameters from its measurements, corrected for its row count. */
export function fitMatrix(s: MatrixStatistics): MatrixParams {
  const column = new NullColumns(s.rows);
  const laplaceShare = column.laplaceShareFor(s.columnKurtosis);
  const noise = column.logRmsVariance(laplaceShare);
  return {
    stdTimesSqrtFanIn: s.stdTimesSqrtFanIn,
    channelSigma: Math.sqrt(Math.max(0, s.logRmsSigma * s.logRmsSigma - noise)),
    laplaceShare,
  };
}

/** The statistics of one [rows, cols] matrix; columns are input channels. */
export function matrixStatistics(name: string, tensor: { shape: number[]; data: Float32Array }, where = "model"): MatrixStatistics {
  if (tensor.shape.length !== 2) throw new QansError("BAD_SHAPE", `${where}: tensor ${name} has shape [${tensor.shape.join(", ")}], not a matrix`);
  const [rows, cols] = tensor.shape;
  const { data } = tensor;
  const squares = new Float64Array(cols);
  const fourths = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const x2 = data[i * cols + j] * data[i * cols + j];
      squares[j] += x2;
      fourths[j] += x2 * x2;
    }
  }
  const rms = Array.from(squares, (s) => Math.sqrt(s / rows));
  const median = [...rms].sort((a, b) => a - b)[cols >> 1];
  if (!(median > 0)) throw new QansError("BAD_INPUT", `${where}: tensor ${name} has a median column RMS of ${median}`);
  const ordinary: number[] = [];
  const outlierRatios: number[] = [];
  for (let j = 0; j < cols; j++) (rms[j] > OUTLIER_RATIO * median ? outlierRatios : ordinary).push(j);
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < rows; i++) {
    for (const j of ordinary) {
      sum += data[i * cols + j];
      sumSquares += data[i * cols + j] * data[i * cols + j];
    }
  }
  const count = rows * ordinary.length;
  const std = Math.sqrt(Math.max(0, sumSquares / count - (sum / count) ** 2));
  // Each column's values over its own RMS: their pooled mean square is 1, their mean fourth power the kurtosis.
  let kurtosis = 0;
  for (let j = 0; j < cols; j++) if (squares[j] > 0) kurtosis += (rows * fourths[j]) / (squares[j] * squares[j]);
  return {
    tensors: 1,
    rows,
    cols,
    stdTimesSqrtFanIn: std * Math.sqrt(cols),
    logRmsSigma: standardDeviation(ordinary.map((j) => Math.log(rms[j]))),
    columnKurtosis: kurtosis / cols,
    outlierColumns: outlierRatios.length,
    maxRmsOverMedian: Math.max(...rms) / median,
    outlierRatios: outlierRatios.map((j) => rms[j] / median),
  };
}

/** One line of what was measured per kind, and what it was corrected to. */
export function describeStatistics(statistics: WeightStatistics, params: WeightParams): string {
  const kinds = (Object.entries(statistics.matrices) as [MatrixRole, MatrixStatistics][]).map(([role, s]) => {
    const fitted = params.matrices?.[role];
    const corrected = fitted ? ` (corrected ${fitted.channelSigma.toFixed(3)})` : "";
    const tail = fitted ? ` → Laplace share ${fitted.laplaceShare.toFixed(2)}${fitted.laplaceShare === 1 ? " (capped: heavier than Laplace)" : ""}` : "";
    return `${role} [${s.rows}x${s.cols}]×${s.tensors}: std×√fan-in ${s.stdTimesSqrtFanIn.toFixed(2)}, σ log column RMS ${s.logRmsSigma.toFixed(3)}${corrected}, kurtosis at ${s.rows} rows ${s.columnKurtosis.toFixed(2)}${tail}, outlier columns ${s.outlierColumns}, max/median column RMS ${s.maxRmsOverMedian.toFixed(2)}`;
  });
  const norms = (Object.entries(statistics.norms) as [NormRole, NormStatistics][]).map(
    ([role, s]) => `${role} norm ×${s.tensors}: geometric mean ${Math.exp(s.logMean).toFixed(2)}, σ of log ${s.logSigma.toFixed(3)}`,
  );
  return `${kinds.join("; ")}; ${norms.join("; ")}${statistics.tiedClassifier ? "; classifier tied to the embedding" : ""}`;
}

function averageMatrices(each: MatrixStatistics[]): MatrixStatistics {
  const first = each[0];
  return {
    tensors: each.length,
    rows: first.rows,
    cols: first.cols,
    stdTimesSqrtFanIn: mean(each.map((s) => s.stdTimesSqrtFanIn)),
    // Variances average; σ do not.
    logRmsSigma: Math.sqrt(mean(each.map((s) => s.logRmsSigma * s.logRmsSigma))),
    columnKurtosis: mean(each.map((s) => s.columnKurtosis)),
    outlierColumns: mean(each.map((s) => s.outlierColumns)),
    maxRmsOverMedian: Math.max(...each.map((s) => s.maxRmsOverMedian)),
    outlierRatios: each.flatMap((s) => s.outlierRatios),
  };
}

function normStatistics(name: string, data: Float32Array, where: string): NormStatistics {
  const nonPositive = data.findIndex((v) => !(v > 0));
  if (nonPositive >= 0) throw new QansError("BAD_INPUT", `${where}: norm ${name} has weight ${data[nonPositive]} at ${nonPositive}; a log-normal fit needs positive weights`);
  const logs = Array.from(data, Math.log);
  return { tensors: 1, logMean: mean(logs), logSigma: standardDeviation(logs) };
}

/** Values simulated per candidate tail: enough that the simulated kurtosis varies by about 0.01. */
const SIMULATED_VALUES = 1 << 18;

/**
 * Columns of `rows` values with no scale spread at all, drawn from the Gaussian/Laplace mixture:
 * what a kind's statistics would be from sampling alone. The same draws serve every Laplace share
 * (a value is Laplace when its uniform draw is below the share), so that the simulated statistics
 * move smoothly with the share and a bisection over it converges.
 */
class NullColumns {
  private readonly gaussian: Float64Array;
  private readonly laplace: Float64Array;
  private readonly pick: Float64Array;
  private readonly columns: number;

  constructor(private readonly rows: number) {
    this.columns = Math.max(64, Math.ceil(SIMULATED_VALUES / rows));
    const count = this.columns * rows;
    const random = new Random(0x5eed);
    this.gaussian = new Float64Array(count);
    this.laplace = new Float64Array(count);
    this.pick = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      this.gaussian[i] = random.gaussian();
      this.laplace[i] = random.laplacian(Math.SQRT1_2);
      this.pick[i] = random.next();
    }
  }

  /** The Laplace share whose columns measure `kurtosis` as matrixStatistics does, clamped to [0, 1]. */
  laplaceShareFor(kurtosis: number): number {
    if (this.statistics(0).kurtosis >= kurtosis) return 0;
    if (this.statistics(1).kurtosis <= kurtosis) return 1;
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 20; i++) {
      const mid = 0.5 * (lo + hi);
      if (this.statistics(mid).kurtosis < kurtosis) lo = mid;
      else hi = mid;
    }
    return 0.5 * (lo + hi);
  }

  /** Variance of log column RMS from sampling alone, for columns of this tail. */
  logRmsVariance(laplaceShare: number): number {
    return this.statistics(laplaceShare).logRmsVariance;
  }

  private statistics(laplaceShare: number): { kurtosis: number; logRmsVariance: number } {
    const { rows, columns } = this;
    let kurtosis = 0;
    const logRms = new Float64Array(columns);
    for (let c = 0; c < columns; c++) {
      let squares = 0;
      let fourths = 0;
      for (let i = c * rows; i < (c + 1) * rows; i++) {
        const x = this.pick[i] < laplaceShare ? this.laplace[i] : this.gaussian[i];
        squares += x * x;
        fourths += x * x * x * x;
      }
      kurtosis += (rows * fourths) / (squares * squares);
      logRms[c] = 0.5 * Math.log(squares / rows);
    }
    const sigma = standardDeviation(logRms);
    return { kurtosis: kurtosis / columns, logRmsVariance: sigma * sigma };
  }
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

function standardDeviation(values: ArrayLike<number>): number {
  const m = mean(values);
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += (values[i] - m) ** 2;
  return Math.sqrt(sum / values.length);
}
