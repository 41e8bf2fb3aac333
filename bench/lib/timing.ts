/**
 * Best wall time of `run`, in seconds, after one untimed warm-up. Best-of rather than mean because
 * the noise on a shared machine only ever adds time. Small inputs are repeated until `minSeconds`
 * of timing has accumulated so the figure is not a single timer tick.
 */
export function bestTime(run: () => void, options: { runs?: number; minSeconds?: number; maxRuns?: number } = {}): number {
  const runs = options.runs ?? 3;
  const minSeconds = options.minSeconds ?? 0.5;
  const maxRuns = options.maxRuns ?? 200;
  run();
  let best = Infinity;
  let spent = 0;
  for (let i = 0; i < maxRuns && (i < runs || spent < minSeconds); i++) {
    const start = performance.now();
    run();
    const seconds = (performance.now() - start) / 1000;
    spent += seconds;
    if (seconds < best) best = seconds;
  }
  return best;
}

/** As {@link bestTime}, for work that completes asynchronously: exactly `runs` timed runs. */
export async function bestTimeAsync(run: () => Promise<unknown>, runs: number): Promise<number> {
  await run();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await run();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}
