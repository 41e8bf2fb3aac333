import type { QuantSetting } from "./setting.js";

/** The reserved metadata key of spec §6.1 and §17.7 under which the chosen settings are recorded. */
export const QUANTIZATION_METADATA_KEY = "qans.quantization";

/** One tensor's entry in the record, with the spec's member names. */
export interface TensorQuantizationEntry {
  bits: number;
  group_size: number;
  /** Exponent of the per-input-channel scale; null when the tensor has none. */
  alpha: number | null;
  /** Fraction of each row pruned before quantisation. */
  prune: number;
  /** "nearest" or "compensated" (spec §17.5); absent means "nearest". */
  rounding?: string;
}

/** The record's JSON object (spec §17.7). */
export interface QuantizationRecord {
  tensors: Record<string, TensorQuantizationEntry>;
  /** How calibration was done, when it was: informative. */
  calibration?: Record<string, string | number>;
  /** What the settings were chosen to meet: informative. */
  target?: Record<string, string | number>;
}

export function tensorEntry(setting: QuantSetting): TensorQuantizationEntry {
  return { bits: setting.bits, group_size: setting.groupSize, alpha: setting.alpha, prune: setting.prune, rounding: setting.rounding ?? "nearest" };
}

/** The metadata value: the record as JSON text, since metadata values are strings (spec §6). */
export function encodeQuantizationRecord(record: QuantizationRecord): string {
  return JSON.stringify(record);
}

function isEntry(value: unknown): value is TensorQuantizationEntry {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Record<string, unknown>;
  const number = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  return (
    number(entry.bits) && number(entry.group_size) && (entry.alpha === null || number(entry.alpha)) && number(entry.prune) && (entry.rounding === undefined || typeof entry.rounding === "string")
  );
}

/**
 * The settings recorded in a file's metadata, by tensor name, or an empty map when there is no
 * record. The record is informative (spec §17.7): a reader never needs it to decode, so one that
 * is not valid JSON, or entries of the wrong shape, are skipped rather than reported.
 */
export function readQuantizationRecord(metadata: Readonly<Record<string, string>> | undefined): Map<string, TensorQuantizationEntry> {
  const out = new Map<string, TensorQuantizationEntry>();
  const text = metadata?.[QUANTIZATION_METADATA_KEY];
  if (typeof text !== "string") return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return out;
  }
  const tensors = (parsed as { tensors?: unknown } | null)?.tensors;
  if (typeof tensors !== "object" || tensors === null) return out;
  for (const [name, entry] of Object.entries(tensors)) if (isEntry(entry)) out.set(name, entry);
  return out;
}
