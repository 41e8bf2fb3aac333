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
