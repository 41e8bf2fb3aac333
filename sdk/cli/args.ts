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
