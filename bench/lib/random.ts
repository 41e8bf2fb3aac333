/** mulberry32: a tiny seeded generator, so that a printed seed reproduces a run's choices. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The value of `--seed N` or `--seed=N` among the arguments, or null when absent. Throws for a
 * value that is not an integer from 0 to 2^32 − 1, rather than silently picking another seed.
 */
export function parseSeedArg(args: readonly string[]): number | null {
  for (let i = 0; i < args.length; i++) {
    let text: string | undefined;
    if (args[i] === "--seed") text = args[i + 1];
    else if (args[i].startsWith("--seed=")) text = args[i].slice("--seed=".length);
    else continue;
    if (text === undefined || !/^\d+$/.test(text) || Number(text) > 0xffffffff) {
      throw new Error(`--seed needs an integer from 0 to 4294967295, got ${text ?? "nothing"}`);
    }
    return Number(text);
  }
  return null;
}
