/**
 * Runs the fast-check properties in fuzz/ with vitest:
 *
 *   npm run fuzz -- [--runs N] [--seed S] [vitest arguments, e.g. a file filter such as fuzz/reader]
 *
 * `--runs` and `--seed` set QANS_FUZZ_RUNS and QANS_FUZZ_SEED (fuzz/options.ts), which also work on
 * their own. Test timeouts are off, since a long campaign runs one property for hours. Exits with
 * vitest's status.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const USAGE = "usage: npm run fuzz -- [--runs N] [--seed S] [vitest arguments]";

function parse(argv: string[]): { env: Record<string, string>; rest: string[] } {
  const env: Record<string, string> = {};
  const rest: string[] = [];
  const options: Record<string, { variable: string; min: number }> = {
    "--runs": { variable: "QANS_FUZZ_RUNS", min: 1 },
    "--seed": { variable: "QANS_FUZZ_SEED", min: -(2 ** 31) },
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split("=", 2) as [string, string | undefined];
    const option = options[flag];
    if (!option) {
      rest.push(argv[i]);
      continue;
    }
    const text = inline ?? argv[++i];
    const value = Number(text);
    if (text === undefined || !Number.isSafeInteger(value) || value < option.min) {
      console.error(`${flag} needs an integer of at least ${option.min}, got ${JSON.stringify(text)}\n${USAGE}`);
      process.exit(2);
    }
    env[option.variable] = String(value);
  }
  return { env, rest };
}

const { env, rest } = parse(process.argv.slice(2));
const filters = rest.filter((arg) => !arg.startsWith("-"));
const require = createRequire(import.meta.url);
const vitest = join(dirname(require.resolve("vitest/package.json")), "vitest.mjs");
const result = spawnSync(process.execPath, [vitest, "run", ...(filters.length === 0 ? ["fuzz"] : []), "--testTimeout=0", ...rest], {
  stdio: "inherit",
  env: { ...process.env, ...env },
});
process.exit(result.status ?? 1);
