import { QansError } from "../errors.js";
import { matrixSpecs, parseLlamaArchitecture, type LlamaArchitecture } from "../infer/architecture.js";
import { EVAL_SEED_BASE, sampleSequences, textWindows } from "../infer/eval.js";
import { LlamaModel } from "../infer/llama.js";
import type { Tokenizer } from "../infer/tokenizer.js";
import type { ImportedModel } from "../tensor/tensor.js";
import { defaultSampleRows, LinearInputCollector, type LinearInputCollectorOptions, type LinearInputStatistics } from "./linear-inputs.js";
import { modelWeights } from "./model-weights.js";

/**
 * Calibration sequence i of seed S is sampled with seed CALIBRATION_SEED_BASE + S · 65536 + i.
 * Every such seed is at least 2,000,000, above the default evaluation set's seeds
 * (EVAL_SEED_BASE = 1,000,000 onwards, fewer than a million of them), so a model is never
 * evaluated on the text it was calibrated on.
 */
export const CALIBRATION_SEED_BASE = 2 * EVAL_SEED_BASE;
export const MAX_CALIBRATION_SEQUENCES = 65536;

/** Calibration sequences are sampled at the model's own temperature, so they follow its distribution. */
export const CALIBRATION_TEMPERATURE = 1;
/** Tokens per calibration sequence (BOS included), or the model's context if shorter. */
export const DEFAULT_CALIBRATION_LENGTH = 256;

export function calibrationSeeds(seed: number, count: number): number[] {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new QansError("INVALID_ARGUMENT", `a calibration seed is an integer from 0 to 2^32 − 1, got ${seed}`);
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_CALIBRATION_SEQUENCES) {
    throw new QansError("INVALID_ARGUMENT", `calibration takes 1 to ${MAX_CALIBRATION_SEQUENCES} sequences, asked for ${count}`);
  }
  return Array.from({ length: count }, (_, i) => CALIBRATION_SEED_BASE + seed * MAX_CALIBRATION_SEQUENCES + i);
}

/** `count` sequences sampled from the reference model with the calibration seeds of `seed`. */
export function sampleCalibrationSequences(reference: LlamaModel, count: number, seed: number, length = DEFAULT_CALIBRATION_LENGTH): number[][] {
  return sampleSequences(reference, {
    seeds: calibrationSeeds(seed, count),
    length: Math.min(length, reference.config.max_seq_len),
    temperature: CALIBRATION_TEMPERATURE,
  });
}

/** A calibration text cut into windows of the model's context (or `length` tokens) after tokenizing. */
export function textCalibrationSequences(text: string, tokenizer: Tokenizer, contextLength: number, length = DEFAULT_CALIBRATION_LENGTH): number[][] {
  if (tokenizer.bos === undefined) throw new QansError("INVALID_ARGUMENT", "the tokenizer has no BOS token to start calibration windows with");
  return textWindows(tokenizer.encode(text), Math.min(length, contextLength), tokenizer.bos);
}

/**
 * Runs a model over the calibration sequences, every position of each, and returns the statistics
 * of every linear layer's inputs (spec §17): max |x_j|, mean |x_j| and a sample of input vectors.
 */
export function collectLinearInputs(
  architecture: LlamaArchitecture,
  weights: (name: string) => Float32Array,
  sequences: readonly (readonly number[])[],
  options: LinearInputCollectorOptions = {},
): Map<string, LinearInputStatistics> {
  if (sequences.length === 0) throw new QansError("INVALID_ARGUMENT", "calibration needs at least one sequence");
  const sampleRows = options.sampleRows ?? defaultSampleRows(matrixSpecs(architecture).map((spec) => spec.cols));
  const collector = new LinearInputCollector({ ...options, sampleRows });
  const model = LlamaModel.fromWeights(architecture, weights, { onLinearInput: collector.hook });
  for (const sequence of sequences) {
    model.reset();
    for (let pos = 0; pos < sequence.length; pos++) model.forward(sequence[pos], pos);
  }
  return collector.statistics();
}

/** Where calibration sequences come from: sampled from the model, or a text. */
export type CalibrationSource =
  | { samples: number; seed?: number; length?: number }
  | { text: string; tokenizer: Tokenizer; length?: number };

/** Calibration sequences and what the model's linear layers saw on them. */
export interface CalibrationData {
  architecture: LlamaArchitecture;
  sequences: number[][];
  statistics: Map<string, LinearInputStatistics>;
  /** How the sequences were made, for the file's quantisation record (spec §17.7). */
  description: Record<string, string | number>;
}

/**
 * Calibrates a Llama model held in memory (spec §17.2): makes the calibration sequences (sampled
 * with the calibration seeds, or cut from a text) and runs the model over them, collecting the
 * statistics of every linear layer's inputs. A model without a llama architecture record cannot be
 * run, which is INVALID_ARGUMENT.
 */
export function calibrateModel(model: ImportedModel, source: CalibrationSource, options: LinearInputCollectorOptions = {}): CalibrationData {
  const architecture = parseLlamaArchitecture(model.architecture, "the model to calibrate");
  const weights = modelWeights(model);
  const tokens = (sequences: number[][]) => sequences.reduce((sum, s) => sum + s.length, 0);
  let sequences: number[][];
  let description: Record<string, string | number>;
  if ("samples" in source) {
    const seed = source.seed ?? 0;
    const reference = LlamaModel.fromWeights(architecture, weights.get);
    sequences = sampleCalibrationSequences(reference, source.samples, seed, source.length);
    description = { source: "samples", sequences: sequences.length, tokens: tokens(sequences), seed, temperature: CALIBRATION_TEMPERATURE };
  } else {
    sequences = textCalibrationSequences(source.text, source.tokenizer, architecture.max_seq_len, source.length);
    description = { source: "text", sequences: sequences.length, tokens: tokens(sequences) };
  }
  const statistics = collectLinearInputs(architecture, weights.get, sequences, options);
  return { architecture, sequences, statistics, description };
}
