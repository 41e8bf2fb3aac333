import { QansError } from "../errors.js";
import { EMBEDDING_NAME } from "../infer/architecture.js";
import { packModel } from "../pack.js";
import { BitAllocation } from "../quant/allocate.js";
import { DEFAULT_GRID, evaluateCandidates, type Candidate, type SearchGrid, type TensorCandidates } from "../quant/candidates.js";
import { isQuantizable, type QuantSetting } from "../quant/setting.js";
import type { ImportedModel, TensorData } from "../tensor/tensor.js";
import { applyPlan, type QuantizationPlan } from "./apply.js";
import type { CalibrationData } from "./calibrate.js";
import type { LinearInputStatistics } from "./linear-inputs.js";
import { QuantizedModelEvaluator } from "./model-eval.js";
import { modelWeights } from "./model-weights.js";
import { probeSensitivities } from "./sensitivity.js";

/** What bit allocation aims for. */
export type QuantTarget =
  /** The whole file at most this many bytes. */
  | { bytes: number }
  /** The quantised tensors' stored bytes (frames, padding, index entries) at most this many bits per weight. */
  | { bitsPerWeight: number }
  /** The model's mean KL divergence from the unquantised model, on the calibration sequences, at most this (nats). */
  | { maxKld: number };

export interface PlanOptions {
  /** Without a target: the bit width of every quantised tensor (default 8). */
  bits?: number;
  /** Without a target: the group size (default 0, one scale per row). */
  groupSize?: number;
  /** The prune fraction; with a target, the only one searched. Default: 0 without a target, the grid's with one. */
  prune?: number;
  target?: QuantTarget;
  /** Calibration of a Llama model: enables the per-input-channel scale, activation-aware pruning and sensitivity probes. */
  calibration?: CalibrationData;
  /** Overrides the settings searched (default DEFAULT_GRID). */
  grid?: Partial<SearchGrid>;
  log2Block?: number;
  /** Progress, one line per stage, for a command line. */
  onProgress?: (message: string) => void;
}

/**
 * Chooses every quantised tensor's setting (spec §17.6) and returns the plan to apply with
 * `applyPlan`. The quantised tensors are the float matrices; the others stay lossless.
 *
 * - With a target: each tensor is measured under every setting of the grid (exact stored size,
 *   layer output error), the errors are weighted by each tensor's measured sensitivity (with
 *   calibration) or normalised by the layer's output energy (without), and the greedy
 *   allocation's longest plan within the target is taken. A size target is checked by packing
 *   the model; a KL target by running it on the calibration sequences, bisecting over the
 *   allocation's plans.
 * - Without a target, with calibration: every tensor keeps `bits` and `groupSize`; its scale
 *   exponent a (and prune fraction and rounding, when the grid has several) minimise
 *   bytes + λ · error, where λ is the tensor's own exchange rate between bytes and error from
 *   `bits` to its neighbour width.
 * - Without either: `bits`, `groupSize` and `prune` as given, with |W| as the pruning score.
 */
export async function planQuantization(model: ImportedModel, options: PlanOptions = {}): Promise<QuantizationPlan> {
  const { calibration, target } = options;
  if (target !== undefined) return QuantizationSearch.create(model, options).plan(target);
  const tensors = quantizableTensors(model);
  const statistics = calibration ? layerStatistics(calibration) : undefined;
  return { statistics, calibration: calibration?.description, settings: fixedSettings(tensors, statistics, options, options.onProgress ?? (() => {})) };
}

function quantizableTensors(model: ImportedModel): TensorData[] {
  const tensors = model.tensors.filter(isQuantizable);
  if (tensors.length === 0) throw new QansError("INVALID_ARGUMENT", "the model has no float matrix to quantise");
  return tensors;
}

/**
 * The measured search of one model, made once and then asked for plans for any number of
 * targets: every tensor measured under every setting of the grid, the sensitivities probed, and
 * the allocation over them.
 */
export class QuantizationSearch {
  private constructor(
    private readonly model: ImportedModel,
    private readonly options: PlanOptions,
    private readonly base: Pick<QuantizationPlan, "statistics" | "calibration">,
    readonly allocation: BitAllocation,
    /** Elements of the quantised tensors. */
    readonly elements: number,
    private readonly evaluator: QuantizedModelEvaluator | undefined,
  ) {}

  static create(model: ImportedModel, options: Omit<PlanOptions, "target" | "bits" | "groupSize"> = {}): QuantizationSearch {
    const { calibration, log2Block } = options;
    const progress = options.onProgress ?? (() => {});
    const tensors = quantizableTensors(model);
    const statistics = calibration ? layerStatistics(calibration) : undefined;
    const grid = searchGrid(options);
    progress(`measuring ${tensors.length} tensors under up to ${gridSize(grid, calibration !== undefined)} settings each`);
    const measured = tensors.map((tensor) => evaluateCandidates(tensor, gridFor(tensor, grid), statistics?.get(tensor.name), log2Block));
    const evaluator = calibration ? new QuantizedModelEvaluator(calibration.architecture, modelWeights(model), tensors, statistics) : undefined;
    let weights: number[];
    if (evaluator && calibration) {
      progress(`probing the sensitivity of ${tensors.length} tensors`);
      weights = probeSensitivities(evaluator, tensors, statistics, calibration.sequences);
    } else {
      weights = measured.map((m) => (m.energy > 0 ? 1 / m.energy : 0));
    }
    const allocation = new BitAllocation(measured.map((m, t) => ({ ...m, weight: weights[t] })));
    const elements = measured.reduce((sum, m) => sum + m.elements, 0);
    return new QuantizationSearch(model, options, { statistics, calibration: calibration?.description }, allocation, elements, evaluator);
  }

  /** Plan k of the allocation. */
  planAt(k: number): QuantizationPlan {
    return { ...this.base, settings: settingsOf(this.allocation.planAt(k)) };
  }

  /** The plan that meets `target` (see planQuantization). */
  async plan(target: QuantTarget): Promise<QuantizationPlan> {
    const { allocation, elements } = this;
    if ("bitsPerWeight" in target) {
      const k = allocation.largestWithin((target.bitsPerWeight * elements) / 8);
      if (k === null) throw unreachable(`${target.bitsPerWeight} bits per weight`, `${((allocation.bytesAt(0) * 8) / elements).toFixed(3)} bits per weight`);
      return { ...this.planAt(k), target: { bits_per_weight: target.bitsPerWeight } };
    }
    if ("bytes" in target) {
      const k = await largestPlanWithinFile(this.model, allocation, (step) => this.planAt(step), target.bytes, this.options);
      return { ...this.planAt(k), target: { bytes: target.bytes } };
    }
    const { evaluator } = this;
    const calibration = this.options.calibration;
    if (evaluator === undefined || calibration === undefined) {
      throw new QansError("INVALID_ARGUMENT", "a KL-divergence target needs calibration: the model must be run to measure it");
    }
    const found = smallestPlanWithinKld(allocation, evaluator, calibration.sequences, target.maxKld, this.options.onProgress ?? (() => {}));
    return { ...this.planAt(found.step), target: { max_kld: target.maxKld, calibration_kld: found.kld } };
  }
}

/**
 * The calibration statistics the search uses: every linear layer's inputs, the tied classifier's
 * under the token embedding's name. The embedding is also read row by row as a lookup table, where
 * a per-input-channel scale or an activation-weighted pruning score would trade columns against
 * each other in a way its classifier inputs do not measure: its channel maxima are replaced by
 * ones, so that pruning scores it by |W| as without calibration, and `gridFor` searches no scale
 * for it. Its sample stays, for the classifier's output error and compensated rounding.
 */
function layerStatistics(calibration: CalibrationData): Map<string, LinearInputStatistics> {
  const statistics = new Map(calibration.statistics);
  const embedding = statistics.get(EMBEDDING_NAME);
  if (embedding !== undefined) statistics.set(EMBEDDING_NAME, { ...embedding, absMax: new Float32Array(embedding.cols).fill(1) });
  return statistics;
}

/** The grid searched for a tensor: the token embedding's without a per-input-channel scale (see layerStatistics). */
function gridFor(tensor: TensorData, grid: SearchGrid): SearchGrid {
  return tensor.name === EMBEDDING_NAME ? { ...grid, alphas: [null] } : grid;
}

function settingsOf(candidates: Map<string, Candidate>): Map<string, QuantSetting> {
  return new Map([...candidates].map(([name, candidate]) => [name, settingOf(candidate)]));
}

/** The setting of a measured candidate, without its measurements. */
function settingOf({ bits, groupSize, alpha, prune, rounding }: Candidate): QuantSetting {
  return rounding === "compensated" ? { bits, groupSize, alpha, prune, rounding } : { bits, groupSize, alpha, prune };
}

function unreachable(target: string, least: string): QansError {
  return new QansError("INVALID_ARGUMENT", `the target of ${target} cannot be met: the smallest settings searched take ${least}`);
}

function searchGrid(options: PlanOptions): SearchGrid {
  const grid = { ...DEFAULT_GRID, ...options.grid };
  if (options.prune === undefined) return grid;
  // Compensated rounding is searched without pruning: with a prune fraction asked for, it is out.
  return { ...grid, prunes: [options.prune], roundings: options.prune > 0 ? ["nearest"] : grid.roundings };
}

/** Settings per tensor, at most (group sizes not below a row are skipped): scales and compensated rounding only count with calibration. */
function gridSize(grid: SearchGrid, calibrated: boolean): number {
  const alphas = calibrated ? grid.alphas.length : grid.alphas.filter((a) => a === null).length;
  const nearest = grid.roundings.includes("nearest") ? alphas * grid.prunes.length : 0;
  const compensated = calibrated && grid.roundings.includes("compensated") ? 1 : 0;
  return grid.bits.length * grid.groupSizes.length * (nearest + compensated);
}

/** Settings at a fixed bit width: a (and p) chosen per tensor with calibration, as given without. */
function fixedSettings(
  tensors: readonly TensorData[],
  statistics: ReadonlyMap<string, LinearInputStatistics> | undefined,
  options: PlanOptions,
  progress: (message: string) => void,
): Map<string, QuantSetting> {
  const bits = options.bits ?? 8;
  const groupSize = options.groupSize ?? 0;
  const fixed: QuantSetting = { bits, groupSize, alpha: null, prune: options.prune ?? 0 };
  if (statistics === undefined) return new Map(tensors.map((tensor) => [tensor.name, fixed]));
  const grid = { ...searchGrid(options), bits: [bits], groupSizes: [groupSize] };
  if (options.grid?.prunes === undefined) grid.prunes = [fixed.prune];
  progress(`searching the scale${grid.prunes.length > 1 ? " and pruning" : ""} of ${tensors.length} tensors at int${bits}`);
  const neighbour = bits === 8 ? 7 : bits + 1;
  const settings = new Map<string, QuantSetting>();
  for (const tensor of tensors) {
    const stats = statistics.get(tensor.name);
    const measured = evaluateCandidates(tensor, gridFor(tensor, grid), stats, options.log2Block);
    const rates = evaluateCandidates(tensor, { bits: [bits, neighbour], groupSizes: [groupSize], alphas: [null], prunes: [0], roundings: ["nearest"] }, stats, options.log2Block);
    // A grid of compensated rounding only has nothing to offer a tensor without a calibration sample.
    settings.set(tensor.name, measured.candidates.length === 0 ? fixed : settingOf(cheapestAt(measured, exchangeRate(rates))));
  }
  return settings;
}

/**
 * λ for a tensor at a fixed width: bytes per unit of error that the step to the neighbouring width
 * trades, |Δbytes / Δerror|. A setting that beats bytes + λ · error of plain round-to-nearest buys
 * accuracy cheaper (or size dearer) than changing the width would. 0 when the step changes no error.
 */
function exchangeRate(rates: TensorCandidates): number {
  const [a, b] = rates.candidates;
  const error = Math.abs(a.error - b.error);
  return error > 0 ? Math.abs(b.bytes - a.bytes) / error : 0;
}

function cheapestAt(measured: TensorCandidates, lambda: number): Candidate {
  let best = measured.candidates[0];
  const cost = (c: Candidate) => c.bytes + lambda * c.error;
  for (const candidate of measured.candidates) if (cost(candidate) < cost(best)) best = candidate;
  return best;
}

/** The longest allocation plan whose packed file is at most `bytes`, checked by packing. */
async function largestPlanWithinFile(
  model: ImportedModel,
  allocation: BitAllocation,
  plan: (k: number) => QuantizationPlan,
  bytes: number,
  options: PlanOptions,
): Promise<number> {
  const fileBytes = async (k: number) => {
    const planned = applyPlan(model, { ...plan(k), target: { bytes } });
    const packed = await packModel(planned.model, { write: async () => {} }, { log2Block: options.log2Block, encodingsFor: planned.encodingsFor });
    return packed.bytes;
  };
  // Everything but the planned tensors (header, metadata, lossless tensors, index, trailer), measured once.
  const fixed = (await fileBytes(0)) - allocation.bytesAt(0);
  let k = allocation.largestWithin(bytes - fixed);
  if (k === null) throw unreachable(`${bytes} bytes`, `${allocation.bytesAt(0) + fixed} bytes`);
  // The record in the metadata differs a little from plan to plan; step back until the file fits.
  while (k > 0 && (await fileBytes(k)) > bytes) k--;
  if (k === 0 && (await fileBytes(0)) > bytes) throw unreachable(`${bytes} bytes`, `${await fileBytes(0)} bytes`);
  return k;
}

/**
 * The smallest allocation plan whose model stays within `maxKld` of the unquantised model on the
 * calibration sequences. Each plan is the Lagrangian optimum for the λ of its last step, so this
 * adjusts λ by measurement: the plan the prediction (Σ sensitivity · error) puts at the target is
 * run first, then plans whose prediction is 2, 4, ... times larger (or smaller) until the measured
 * divergence crosses the target, then bisection between the two.
 */
function smallestPlanWithinKld(
  allocation: BitAllocation,
  evaluator: QuantizedModelEvaluator,
  sequences: readonly (readonly number[])[],
  maxKld: number,
  progress: (message: string) => void,
): { step: number; kld: number } {
  if (!(maxKld > 0) || !Number.isFinite(maxKld)) throw new QansError("INVALID_ARGUMENT", `the KL-divergence target must be a positive number, got ${maxKld}`);
  const last = allocation.stepCount;
  const measured = new Map<number, number>();
  const kldAt = (k: number) => {
    let kld = measured.get(k);
    if (kld === undefined) {
      kld = evaluator.evaluate(settingsOf(allocation.planAt(k)), sequences).meanKld;
      measured.set(k, kld);
      progress(`plan ${k} of ${last}: ${allocation.bytesAt(k)} bytes of quantised tensors, KL divergence ${kld.toPrecision(4)}`);
    }
    return kld;
  };
  const within = (k: number) => kldAt(k) <= maxKld;
  // The predicted divergence falls with k, so the first plan predicted within x is found by bisection.
  const firstPredictedWithin = (x: number) => {
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (allocation.weightedErrorAt(mid) <= x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  // Bracket: plan `lo` misses the target (or is -1, below plan 0) and plan `hi` meets it.
  let lo: number;
  let hi: number;
  const start = firstPredictedWithin(maxKld);
  if (within(start)) {
    hi = start;
    lo = -1;
    for (let factor = 2; hi > 0; factor *= 2) {
      const k = Math.min(hi - 1, firstPredictedWithin(factor * maxKld));
      if (!within(k)) {
        lo = k;
        break;
      }
      hi = k;
    }
    if (lo === -1) return { step: hi, kld: kldAt(hi) };
  } else {
    lo = start;
    hi = -1;
    for (let factor = 0.5; lo < last; factor /= 2) {
      const k = Math.max(lo + 1, firstPredictedWithin(factor * maxKld));
      if (within(k)) {
        hi = k;
        break;
      }
      lo = k;
    }
    if (hi === -1) {
      throw new QansError("INVALID_ARGUMENT", `the KL-divergence target ${maxKld} cannot be met: the most accurate settings searched give ${kldAt(last).toPrecision(4)} on the calibration sequences`);
    }
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (within(mid)) hi = mid;
    else lo = mid;
  }
  return { step: hi, kld: kldAt(hi) };
}
