/**
 * How long the properties in fuzz/ run: `QANS_FUZZ_RUNS` cases per property (default 200, a few
 * seconds in all, as part of the test suite) and, when `QANS_FUZZ_SEED` is set, fast-check's seed, so
 * that a campaign can be split into runs with different seeds and repeated exactly.
 * `npm run fuzz -- --runs N --seed S` (fuzz/run.ts) sets both.
 */

function integerFromEnvironment(name: string, min: number): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer of at least ${min}, got ${JSON.stringify(text)}`);
  return value;
}

export const FUZZ_RUNS = integerFromEnvironment("QANS_FUZZ_RUNS", 1) ?? 200;

const seed = integerFromEnvironment("QANS_FUZZ_SEED", -(2 ** 31));

/** fast-check parameters for every property. */
export const fuzzOptions: { numRuns: number; seed?: number } = seed === undefined ? { numRuns: FUZZ_RUNS } : { numRuns: FUZZ_RUNS, seed };
