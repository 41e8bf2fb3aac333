import { QansError } from "../errors.js";
import type { HolderKind } from "./holders.js";

/** One way to hold one tensor: the bytes it keeps resident and the seconds it adds to the workload. */
export interface HolderOption {
  kind: HolderKind;
  bytes: number;
  seconds: number;
}

/** A tensor to place, with every holder it allows. */
export interface PlanTensor {
  name: string;
  options: HolderOption[];
}

/** One change of holder the planner made, in order. */
export interface PlanStep {
  name: string;
  from: HolderKind;
  to: HolderKind;
  /** Bytes freed (negative when a promotion spends them). */
  bytesSaved: number;
  /** Seconds added (negative when a promotion saves them). */
  secondsAdded: number;
}

export interface HolderPlan {
  /** The holder of each tensor. */
  choices: Map<string, HolderKind>;
  /** Resident bytes: the chosen holders' and the fixed bytes. */
  bytes: number;
  /** Predicted seconds of the chosen holders over the workload. */
  seconds: number;
  budgetBytes: number;
  /** Bytes the plan cannot avoid: every tensor in its smallest holder, and the fixed bytes. */
  minimumBytes: number;
  steps: PlanStep[];
}

/**
 * Chooses a holder per tensor so that resident bytes (the holders' and `fixedBytes`, e.g. norm
 * vectors) stay within `budgetBytes` at the least predicted seconds. Greedy: every tensor starts in
 * its fastest holder; while over the budget, the change that frees the most bytes per second it
 * adds is made (a change that adds no time first); then, while the budget allows, the change to a
 * faster holder that saves the most seconds per byte it adds, since the last demotion may have freed
 * more than was needed. A budget below every tensor in its smallest holder is INVALID_ARGUMENT,
 * naming the budget as `budgetLabel` says it (e.g. "60% (1234 bytes)").
 */
export function planHolders(tensors: readonly PlanTensor[], budgetBytes: number, fixedBytes = 0, budgetLabel = `${budgetBytes} bytes`): HolderPlan {
  if (!(budgetBytes >= 0)) throw new QansError("INVALID_ARGUMENT", `a memory budget of ${budgetBytes} bytes is not a byte count`);
  for (const tensor of tensors) {
    if (tensor.options.length === 0) throw new QansError("INVALID_ARGUMENT", `tensor "${tensor.name}" has no holder to choose from`);
  }
  const current = tensors.map((tensor) => fastest(tensor.options));
  const minimumBytes = fixedBytes + tensors.reduce((sum, tensor) => sum + Math.min(...tensor.options.map((o) => o.bytes)), 0);
  if (budgetBytes < minimumBytes) {
    throw new QansError(
      "INVALID_ARGUMENT",
      `a memory budget of ${budgetLabel} is less than the ${minimumBytes} bytes the weights take with every matrix in its smallest holder (compressed where the file allows it)`,
    );
  }
  let bytes = fixedBytes + current.reduce((sum, option) => sum + option.bytes, 0);
  const steps: PlanStep[] = [];
  const move = (t: number, to: HolderOption) => {
    const from = current[t];
    steps.push({ name: tensors[t].name, from: from.kind, to: to.kind, bytesSaved: from.bytes - to.bytes, secondsAdded: to.seconds - from.seconds });
    bytes += to.bytes - from.bytes;
    current[t] = to;
  };

  while (bytes > budgetBytes) {
    // Most bytes freed per second added; no added time ranks first, then the larger saving.
    const best = bestChange(tensors, current, (from, to) => (to.bytes < from.bytes ? { gain: from.bytes - to.bytes, cost: to.seconds - from.seconds } : undefined));
    move(best!.tensor, best!.option);
  }
  for (;;) {
    const room = budgetBytes - bytes;
    const best = bestChange(tensors, current, (from, to) =>
      to.seconds < from.seconds && to.bytes - from.bytes <= room ? { gain: from.seconds - to.seconds, cost: to.bytes - from.bytes } : undefined,
    );
    if (!best) break;
    move(best.tensor, best.option);
  }
  const choices = new Map(tensors.map((tensor, t) => [tensor.name, current[t].kind]));
  const seconds = current.reduce((sum, option) => sum + option.seconds, 0);
  return { choices, bytes, seconds, budgetBytes, minimumBytes, steps };
}

function fastest(options: readonly HolderOption[]): HolderOption {
  return options.reduce((best, option) => (option.seconds < best.seconds || (option.seconds === best.seconds && option.bytes < best.bytes) ? option : best));
}

/**
 * The change with the highest gain per cost among those `score` allows (a cost of zero or less
 * ranks above any positive one, the larger gain first); ties go to the larger gain, then the
 * earlier tensor.
 */
function bestChange(
  tensors: readonly PlanTensor[],
  current: readonly HolderOption[],
  score: (from: HolderOption, to: HolderOption) => { gain: number; cost: number } | undefined,
): { tensor: number; option: HolderOption } | undefined {
  let best: { tensor: number; option: HolderOption; gain: number; cost: number } | undefined;
  for (let t = 0; t < tensors.length; t++) {
    for (const option of tensors[t].options) {
      if (option === current[t]) continue;
      const scored = score(current[t], option);
      if (!scored) continue;
      if (!best || better(scored, best)) best = { tensor: t, option, ...scored };
    }
  }
  return best;
}

/** a ranks above b: by gain per cost (free changes first), then by gain. */
function better(a: { gain: number; cost: number }, b: { gain: number; cost: number }): boolean {
  const freeA = a.cost <= 0;
  const freeB = b.cost <= 0;
  if (freeA !== freeB) return freeA;
  if (!freeA) {
    // Cross-multiplied: a.gain / a.cost against b.gain / b.cost, both costs positive.
    const left = a.gain * b.cost;
    const right = b.gain * a.cost;
    if (left !== right) return left > right;
  }
  return a.gain > b.gain;
}
