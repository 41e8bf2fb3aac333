import { parseArgs, type ParseArgsConfig } from "node:util";
import { QansError } from "../errors.js";

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with usage errors that the CLI reports with exit code 2. */
export function parseCommand<T extends Options>(
  argv: string[],
  options: T,
  positionals: number,
  usage: string,
): { values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>>["values"]; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\nusage: ${usage}`);
  }
  if (parsed.positionals.length !== positionals) throw new UsageError(`expected ${positionals} argument(s)\nusage: ${usage}`);
  return parsed;
}

export function parseInteger(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new QansError("INVALID_ARGUMENT", `${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return number;
}

const SIZE_UNITS: Record<string, number> = { "": 1, B: 1, K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30 };

/**
 * A size in bytes: a whole number, optionally followed by a unit: K, M or G (or KB, MB, GB) for
 * powers of 1000, KiB, MiB or GiB for powers of 1024. "500MB" is 500000000 bytes.
 */
export function parseByteSize(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const match = /^([0-9]+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[match[2].toUpperCase()] : undefined;
  const bytes = match && unit !== undefined ? Number(match[1]) * unit : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new QansError("INVALID_ARGUMENT", `${name} must be a positive whole number of bytes, optionally with K, M, G (powers of 1000) or KiB, MiB, GiB, got "${value}"`);
  }
  return bytes;
}
