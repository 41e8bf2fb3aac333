import { QansError } from "../errors.js";
import { findTokenizerBeside, loadTokenizer, TOKENIZER_FILE_NAMES } from "../infer/tokenizer-file.js";
import { readSmallFile } from "../io/source.js";
import { decodeUtf8Strict } from "../json/strict-json.js";
import type { ImportedModel } from "../tensor/tensor.js";
import { applyPlan, type PlannedModel } from "./apply.js";
import { calibrateModel, type CalibrationSource } from "./calibrate.js";
import { planQuantization, type QuantTarget } from "./plan.js";

/** The `qans pack` flags of compression-aware quantisation, as parsed. */
export interface QuantizationFlags {
  /** `--calib samples:N` or `--calib FILE`. */
  calib?: { samples: number } | { textFile: string };
  prune?: number;
  target?: QuantTarget;
  seed: number;
}

/** Sequences sampled when a KL-divergence target needs calibration and `--calib` was not given. */
export const DEFAULT_CALIBRATION_SAMPLES = 8;
/** Calibration text files are read whole. */
const MAX_CALIBRATION_TEXT_BYTES = 64 * 1024 * 1024;

function invalid(message: string): never {
  throw new QansError("INVALID_ARGUMENT", message);
}

function parseNumber(text: string, flag: string, check: (x: number) => boolean, range: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || !check(value)) invalid(`${flag} must be ${range}, got "${text}"`);
  return value;
}

/**
 * `--target-size`: bits per weight of the quantised tensors when it ends in "bpw" ("5bpw",
 * "4.5bpw"), otherwise the whole file's size in bytes as `parseByteSize` reads it.
 */
export function parseTargetSize(text: string, parseBytes: (text: string) => number): QuantTarget {
  const bpw = /^\s*([0-9.]+)\s*bpw\s*$/i.exec(text);
  if (bpw) return { bitsPerWeight: parseNumber(bpw[1], "--target-size", (x) => x > 0 && x <= 64, "a positive number of bits per weight") };
  return { bytes: parseBytes(text) };
}

/** The flags given, or null when none of them was: packing then goes on as before. */
export function parseQuantizationFlags(
  values: { calib?: string; prune?: string; "target-size"?: string; "max-kld"?: string; seed?: string },
  parseBytes: (text: string) => number,
): QuantizationFlags | null {
  const { calib, prune, seed } = values;
  if (calib === undefined && prune === undefined && values["target-size"] === undefined && values["max-kld"] === undefined) {
    if (seed !== undefined) invalid("--seed seeds calibration; give it with --calib, --target-size or --max-kld");
    return null;
  }
  if (values["target-size"] !== undefined && values["max-kld"] !== undefined) invalid("give --target-size or --max-kld, not both");
  const flags: QuantizationFlags = { seed: seed === undefined ? 0 : parseNumber(seed, "--seed", (x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff, "an integer from 0 to 4294967295") };
  if (calib !== undefined) {
    const samples = /^samples:(.*)$/.exec(calib);
    flags.calib = samples
      ? { samples: parseNumber(samples[1], "--calib samples:N", (x) => Number.isInteger(x) && x >= 1 && x <= 65536, "an integer from 1 to 65536") }
      : { textFile: calib };
  }
  if (prune !== undefined) flags.prune = parseNumber(prune, "--prune", (x) => x >= 0 && x < 1, "a fraction from 0 to below 1");
  if (values["target-size"] !== undefined) flags.target = parseTargetSize(values["target-size"], parseBytes);
  if (values["max-kld"] !== undefined) {
    flags.target = { maxKld: parseNumber(values["max-kld"], "--max-kld", (x) => x > 0, "a positive number (nats)") };
    flags.calib ??= { samples: DEFAULT_CALIBRATION_SAMPLES };
  }
  return flags;
}

async function calibrationSource(flags: QuantizationFlags, modelPath: string): Promise<CalibrationSource | undefined> {
  const calib = flags.calib;
  if (calib === undefined) return undefined;
  if ("samples" in calib) return { samples: calib.samples, seed: flags.seed };
  const tokenizerPath = await findTokenizerBeside(modelPath);
  if (tokenizerPath === undefined) invalid(`--calib ${calib.textFile}: a text needs the model's tokenizer, and there is none beside ${modelPath} (looked for ${TOKENIZER_FILE_NAMES.join(", ")})`);
  const text = decodeUtf8Strict(await readSmallFile(calib.textFile, MAX_CALIBRATION_TEXT_BYTES, "calibration text"), calib.textFile, "BAD_INPUT");
  return { text, tokenizer: await loadTokenizer(tokenizerPath) };
}

/**
 * Plans the quantisation the flags ask for and applies it: calibrates when asked, then either
 * searches the settings to meet the target or keeps `bits` and `groupSize` (the pack mode) and
 * searches each tensor's scale. Returns the model to pack and the encodings to pack it with.
 */
export async function planFromFlags(
  model: ImportedModel,
  modelPath: string,
  flags: QuantizationFlags,
  fixed: { bits: number | null; groupSize: number; log2Block?: number },
  onProgress?: (message: string) => void,
): Promise<PlannedModel> {
  if (flags.target === undefined && fixed.bits === null) invalid("--calib and --prune quantise at the bit width of an int mode: add --mode int<b>, or give --target-size or --max-kld");
  const source = await calibrationSource(flags, modelPath);
  if (source) onProgress?.(`calibrating on ${"samples" in source ? `${source.samples} sampled sequences` : "the text"}`);
  const calibration = source ? calibrateModel(model, source, { seed: flags.seed }) : undefined;
  const plan = await planQuantization(model, {
    bits: fixed.bits ?? undefined,
    groupSize: fixed.groupSize,
    prune: flags.prune,
    target: flags.target,
    calibration,
    log2Block: fixed.log2Block,
    onProgress,
  });
  return applyPlan(model, plan);
}
