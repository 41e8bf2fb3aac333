import { QansError } from "../errors.js";
import type { ModelReader, TensorFrameBytes } from "../reader.js";
import { EMBEDDING_NAME, classifierName, decodedWeightBytes, matrixSpecs, normNames, parseLlamaArchitecture, type LlamaArchitecture } from "./architecture.js";
import { calibrateHolders, holderSeconds, type Calibration, type CalibrationOptions, type MatrixUse, type Workload } from "./holder-costs.js";
import { buildHolder, holderBytes, holderKinds, HOLDER_KINDS, type HolderKind } from "./holders.js";
import type { LinearWeight } from "./linear.js";
import { LlamaModel, type LlamaModelOptions } from "./llama.js";
import { budgetBytes, type MemoryBudget } from "./memory-budget.js";
import { planHolders, type HolderPlan, type PlanTensor } from "./planner.js";

export interface PlannedLoadOptions extends LlamaModelOptions {
  budget: MemoryBudget;
  /** The work the plan is made for (its predicted time is what the plan minimises). */
  workload: Workload;
  /** Names the model in messages, e.g. its path. */
  name?: string;
  calibration?: CalibrationOptions;
  /** Costs measured beforehand by `measureModelCosts` for this model and workload; measured here when absent. */
  costs?: ModelCosts;
  /** Receives the plan's summary, a line at a time (e.g. for stderr). */
  log?: (line: string) => void;
}

/** The plan's prediction for its workload. */
export interface Prediction {
  /** Seconds of the prefill and of the generation: the chosen holders' products and the rest of the forward passes. */
  prefillSeconds: number;
  generationSeconds: number;
  /** Tokens per second of each phase; undefined for a phase with no tokens. */
  prefillTokensPerSecond?: number;
  generationTokensPerSecond?: number;
  /** Seconds of each phase spent outside the matrix products (norms, attention, activations), measured. */
  restPrefillSeconds: number;
  restGenerationSeconds: number;
}

export interface PlannedLlama {
  model: LlamaModel;
  plan: HolderPlan;
  prediction: Prediction;
  calibration: Calibration;
  budgetBytes: number;
}

/**
 * Loads a Llama model from a QANS file or set with each matrix in the holder a memory budget
 * allows: it reads the int-quant frames, times every holder on this machine (a short calibration,
 * holder-costs.ts), predicts the workload's time for each tensor in each holder, lets the planner
 * (planner.ts) choose the holders that fit the budget at the least predicted time, and builds them.
 * `budget` is in bytes or in percent of the weights fully decoded to F32 (memory-budget.ts); norm
 * vectors always stay decoded and count against it. A budget below every matrix in its smallest
 * holder is INVALID_ARGUMENT, found before anything is timed. Memory while loading: the int-quant
 * frames, read once and each dropped as its holder is built, on top of the holders.
 */
export async function loadPlannedModel(reader: ModelReader, options: PlannedLoadOptions): Promise<PlannedLlama> {
  const where = options.name ?? "model";
  const log = options.log ?? (() => undefined);
  const { config, uses, frames } = await readMatrixUses(reader, where);
  const budget = budgetBytes(options.budget, decodedWeightBytes(config));
  const budgetLabel = "percent" in options.budget ? `${options.budget.percent}% (${budget} bytes)` : `${budget} bytes`;
  const fixedBytes = normNames(config).length * config.dim * 4;
  const optionsOf = (use: MatrixUse, seconds: (kind: HolderKind) => number): PlanTensor => {
    const bytes = holderBytes(use.entry, use.frame?.frame);
    return { name: use.name, options: holderKinds(use.entry).map((kind) => ({ kind, bytes: bytes[kind]!, seconds: seconds(kind) })) };
  };
  // Refuses a budget no plan meets before spending time on calibration.
  planHolders(
    uses.map((use) => optionsOf(use, () => 0)),
    budget,
    fixedBytes,
    budgetLabel,
  );

  const costs = options.costs ?? (await measureCosts(reader, uses, config, options.workload, where, options.calibration));
  if (!sameWorkload(costs.workload, options.workload)) {
    throw new QansError("INVALID_ARGUMENT", `${where}: the costs given were measured for another workload`);
  }
  const { calibration, rest } = costs;
  const plan = planHolders(
    uses.map((use) => optionsOf(use, (kind) => holderSeconds(calibration, use, kind, options.workload))),
    budget,
    fixedBytes,
    budgetLabel,
  );
  const prediction = predict(uses, plan, calibration, options.workload, rest);
  logPlan(log, plan, prediction, calibration, options.workload);

  const model = await LlamaModel.load(reader, {
    name: where,
    onLinearInput: options.onLinearInput,
    loadLinear: async (source, spec) => {
      const frame = frames.get(spec.name) ?? (await source.readFrame(spec.name));
      frames.delete(spec.name);
      return buildHolder(plan.choices.get(spec.name)!, frame);
    },
  });
  return { model, plan, prediction, calibration, budgetBytes: budget };
}

/**
 * What the planner's predictions rest on for one model and workload on this machine: the holders'
 * timings and the forward passes' time outside the products. `loadPlannedModel` measures them; a
 * caller that plans the same model for several budgets can measure them once and pass them.
 */
export interface ModelCosts {
  workload: Workload;
  calibration: Calibration;
  /** Seconds of the workload's prefill and generation outside the matrix products. */
  rest: { prefill: number; generation: number };
}

/** Measures the costs `loadPlannedModel` plans with (a calibration and the rest of the forward passes). */
export async function measureModelCosts(reader: ModelReader, workload: Workload, options: { name?: string; calibration?: CalibrationOptions } = {}): Promise<ModelCosts> {
  const where = options.name ?? "model";
  const { config, uses } = await readMatrixUses(reader, where);
  return measureCosts(reader, uses, config, workload, where, options.calibration);
}

async function measureCosts(
  reader: ModelReader,
  uses: readonly MatrixUse[],
  config: LlamaArchitecture,
  workload: Workload,
  where: string,
  options: CalibrationOptions | undefined,
): Promise<ModelCosts> {
  const calibration = await calibrateHolders(uses, workload, options);
  return { workload: { ...workload }, calibration, rest: await measureRest(reader, config, workload, where) };
}

function sameWorkload(a: Workload, b: Workload): boolean {
  return a.prefillTokens === b.prefillTokens && a.generatedTokens === b.generatedTokens;
}

/** Every matrix of the model with how a forward pass uses it, and the frames of the int-quant ones. */
async function readMatrixUses(reader: ModelReader, where: string): Promise<{ config: LlamaArchitecture; uses: MatrixUse[]; frames: Map<string, TensorFrameBytes> }> {
  const config = parseLlamaArchitecture((await reader.metadata()).architecture, where);
  const frames = new Map<string, TensorFrameBytes>();
  const uses: MatrixUse[] = [];
  for (const spec of matrixSpecs(config)) {
    const entry = await reader.tensorEntry(spec.name);
    if (entry.encoding === "int-quant") frames.set(spec.name, await reader.readFrame(spec.name));
    const lookup = spec.name === EMBEDDING_NAME;
    const classifier = spec.name === classifierName(config);
    uses.push({ name: spec.name, rows: spec.rows, cols: spec.cols, lookup, product: !lookup || classifier, classifier, entry, frame: frames.get(spec.name) });
  }
  return { config, uses, frames };
}

/** A holder that does nothing: the model around it still runs everything but the matrix products. */
class NoProductWeight implements LinearWeight {
  readonly residentBytes = 0;
  constructor(
    readonly rows: number,
    readonly cols: number,
  ) {}
  matvec(): void {}
  matmul(): void {}
  row(): void {}
}

/**
 * Seconds of the workload's forward passes outside the matrix products, measured by running them
 * on the model's own norms with holders that do nothing: prefill (one batch) and generation.
 */
async function measureRest(reader: ModelReader, config: LlamaArchitecture, workload: Workload, where: string): Promise<{ prefill: number; generation: number }> {
  const skeleton = await LlamaModel.load(reader, { name: where, loadLinear: async (_, spec) => new NoProductWeight(spec.rows, spec.cols) });
  const { prefillTokens, generatedTokens } = workload;
  const positions = Math.min(config.max_seq_len, prefillTokens + generatedTokens);
  const run = () => {
    skeleton.reset();
    const start = performance.now();
    if (prefillTokens > 0) skeleton.forwardBatch(new Array<number>(Math.min(prefillTokens, positions)).fill(1), 0);
    const middle = performance.now();
    for (let pos = prefillTokens; pos < positions; pos++) skeleton.forward(1, pos);
    return { prefill: (middle - start) / 1000, generation: (performance.now() - middle) / 1000 };
  };
  run();
  const best = { prefill: Infinity, generation: Infinity };
  for (let i = 0; i < REST_RUNS; i++) {
    const { prefill, generation } = run();
    best.prefill = Math.min(best.prefill, prefill);
    best.generation = Math.min(best.generation, generation);
  }
  return best;
}

/** Timed runs of the forward passes without products (best kept), after one untimed. */
const REST_RUNS = 4;

function predict(uses: readonly MatrixUse[], plan: HolderPlan, calibration: Calibration, workload: Workload, rest: { prefill: number; generation: number }): Prediction {
  const phase = (phaseWorkload: Workload) => uses.reduce((sum, use) => sum + holderSeconds(calibration, use, plan.choices.get(use.name)!, phaseWorkload), 0);
  const prefillSeconds = phase({ prefillTokens: workload.prefillTokens, generatedTokens: 0 }) + rest.prefill;
  const generationSeconds = phase({ prefillTokens: 0, generatedTokens: workload.generatedTokens }) + rest.generation;
  return {
    prefillSeconds,
    generationSeconds,
    prefillTokensPerSecond: workload.prefillTokens > 0 ? workload.prefillTokens / prefillSeconds : undefined,
    generationTokensPerSecond: workload.generatedTokens > 0 ? workload.generatedTokens / generationSeconds : undefined,
    restPrefillSeconds: rest.prefill,
    restGenerationSeconds: rest.generation,
  };
}

function logPlan(log: (line: string) => void, plan: HolderPlan, prediction: Prediction, calibration: Calibration, workload: Workload): void {
  const counts = HOLDER_KINDS.map((kind) => `${[...plan.choices.values()].filter((k) => k === kind).length} ${kind}`).join(", ");
  log(`plan: ${counts}; resident weights ${plan.bytes} bytes of a budget of ${plan.budgetBytes} (smallest possible ${plan.minimumBytes})`);
  const rates: string[] = [];
  if (prediction.prefillTokensPerSecond !== undefined) rates.push(`prefill ${workload.prefillTokens} tokens at ${prediction.prefillTokensPerSecond.toFixed(1)} tokens/s`);
  if (prediction.generationTokensPerSecond !== undefined) rates.push(`generation at ${prediction.generationTokensPerSecond.toFixed(1)} tokens/s`);
  const conditions = [`${calibration.threads} thread${calibration.threads === 1 ? "" : "s"}`, ...(calibration.cold ? ["caches cold"] : []), `sustained x${calibration.sustained.one.toFixed(2)}${calibration.batchInputs > 0 ? `, batches x${calibration.sustained.batch.toFixed(2)}` : ""}`];
  log(`predicted: ${rates.join(", ") || "no tokens"} (calibrated in ${(calibration.seconds * 1000).toFixed(0)} ms: ${conditions.join(", ")})`);
}
