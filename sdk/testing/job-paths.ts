/**
 * Thresholds (for JOB_THRESHOLDS in sdk/codec/kernels.ts) that put every tensor on one path:
 * block by block on this thread, one native job run synchronously, or one run on the pool. Tests
 * set each in turn to check that all paths give the same bytes.
 */
export const JOB_PATHS = {
  "block by block": { job: Infinity, async: Infinity },
  "synchronous job": { job: 0, async: Infinity },
  "asynchronous job": { job: 0, async: 0 },
} as const;

export type JobPath = keyof typeof JOB_PATHS;

export const JOB_PATH_NAMES = Object.keys(JOB_PATHS) as JobPath[];
