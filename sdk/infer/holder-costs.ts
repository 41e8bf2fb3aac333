import { kernels } from "../codec/kernels.js";
import { BLOCK_MODES } from "../format/constants.js";
import type { IndexEntry } from "../format/index-frame.js";
import { placeBlocks } from "../format/layout.js";
import { nativeAddon } from "../native/addon.js";
import type { TensorFrameBytes } from "../reader.js";
import { buildHolder, HOLDER_KINDS, type HolderKind } from "./holders.js";
import type { LinearWeight } from "./linear.js";

/**
 * What the planner predicts: a prompt of `prefillTokens` run as one batch (`forwardBatch`, when
 * more than one), then `generatedTokens` forward passes of one token each.
 */
export interface Workload {
  prefillTokens: number;
  generatedTokens: number;
}

/** A matrix of the model and how a forward pass uses it. */
export interface MatrixUse {
  name: string;
  rows: number;
  cols: number;
  /** Its rows are looked up, one per token (the token embedding). */
  lookup: boolean;
  /** It multiplies activations (every matrix but an untied embedding). */
  product: boolean;
  /** The classifier: a batched prefill multiplies only the last token by it. */
  classifier: boolean;
  entry: IndexEntry;
  /** The frame, for int-quant tensors (the only ones with holders other than F32). */
  frame?: TensorFrameBytes;
}

/** Measured seconds of one holder kind on one calibration matrix. */
export interface KindTiming {
  /** One product with one input (generation), caches cold when the calibration is. */
  one: number;
  /**
   * One product with the calibration's batch of inputs (prefill); 0 when there is no prefill, and
   * for compressed holders, whose batches are predicted as int8's plus their decoding.
   */
  batch: number;
}

/** A calibration shape: the model's first tensors of that shape, timed in every holder. */
export interface CalibratedShape {
  /** The first of them. */
  name: string;
  /** How many (at most SEQUENCE_TENSORS): one-input products are timed as a run over all of them, and `codedSymbols` and `balance` are their means. */
  tensors: number;
  rows: number;
  cols: number;
  timings: Record<HolderKind, KindTiming>;
  /** Symbols in its RANS and RAW blocks: what a compressed product decodes (CONST blocks cost nothing). */
  codedSymbols: number;
  /** Its blocks' load balance over the threads: the slowest thread's share over an even share (≥ 1). */
  balance: number;
}

export interface Calibration {
  threads: number;
  /** Whether products were timed with caches emptied first, as a model larger than the caches runs. */
  cold: boolean;
  /** Inputs of the batch timings (the workload's prefill, at most MAX_BATCH_INPUTS). */
  batchInputs: number;
  shapes: CalibratedShape[];
  /** Seconds of one row lookup per kind (an embedding row: copied, dequantised, or decoded). */
  lookup: Record<HolderKind, number>;
  /**
   * How much slower products run sustained, one after another for tens of milliseconds as in a
   * forward pass, than the best of short single runs (the median over the calibration's rounds,
   * at least 1): what a busy machine takes from a run of products, as a helper thread preempted
   * in the middle of its share holds up the product, and clock changes under sustained load.
   * Product predictions are multiplied by it, measured for one input and for the batch (1 when
   * nothing was timed).
   */
  sustained: KindTiming;
  /** Wall time the calibration took. */
  seconds: number;
}

export interface CalibrationOptions {
  /** Time products with caches emptied first (default: when the model's int8 weights exceed 32 MiB). */
  cold?: boolean;
  /** Rounds of timed one-input products (best kept), at least; more while a round still improves a best time, up to 4 times as many. Default 5. */
  runs?: number;
}

/** Matrices up to this many weights are timed themselves; larger ones are scaled from one of the same width. */
const MAX_CALIBRATED_ELEMENTS = 1 << 22;
/** Batch timings use at most this many inputs; longer prompts scale linearly from it. */
export const MAX_BATCH_INPUTS = 64;
/** Bytes written between timed runs to push the weights out of the caches: twice a 32 MiB L3. */
const EVICTION_BYTES = 64 << 20;
/** Rounds that time batches (each batch takes milliseconds). */
const BATCH_ROUNDS = 3;
/** Distinct tensors of a shape whose products are timed one after the other, as a forward pass runs them. */
const SEQUENCE_TENSORS = 4;
/** A round that improves no one-input best by more than this ends the calibration (after `runs` rounds). */
const SETTLED_IMPROVEMENT = 0.05;
/** The calibration takes at most this many times `runs` rounds. */
const MAX_ROUNDS_FACTOR = 4;
/** Length of each back-to-back run that measures `Calibration.sustained` (one per calibration round). */
const SUSTAINED_SECONDS = 0.02;
/** Models whose int8 weights are larger than this are calibrated cold. */
const COLD_MODEL_BYTES = 32 << 20;

/** The threads a product uses: the native pool's, or one for the TypeScript kernels. */
export function productThreads(): number {
  return kernels().name === "native" ? (nativeAddon()?.threadCount() ?? 1) : 1;
}

/**
 * Times every holder kind on this machine: for each distinct matrix shape of up to 2^22 weights,
 * the model's first int-quant tensors of that shape (up to four) are built as F32, int8 and
 * compressed holders and their products with one input timed one after the other, as a forward
 * pass runs them (caches emptied first when `cold`), and, when the workload has a prefill, the
 * first one's F32 and int8 products with its batch; row lookups are timed on one of them. Each
 * timing is the best of at least `runs`, taken in rounds that go over every holder once (more rounds
 * while the best times still improve), so that a burst of
 * other work on the machine falls on all holders alike rather than on the one being timed then;
 * each round also measures `sustained`.
 */
export async function calibrateHolders(matrices: readonly MatrixUse[], workload: Workload, options: CalibrationOptions = {}): Promise<Calibration> {
  const started = performance.now();
  const quantised = matrices.filter((m) => m.frame && m.product);
  const int8Bytes = matrices.reduce((sum, m) => sum + m.rows * m.cols, 0);
  const cold = options.cold ?? int8Bytes > COLD_MODEL_BYTES;
  const runs = options.runs ?? 5;
  const batchInputs = workload.prefillTokens > 1 ? Math.min(workload.prefillTokens, MAX_BATCH_INPUTS) : 0;
  const threads = productThreads();
  const eviction = cold ? new Uint8Array(EVICTION_BYTES) : undefined;
  let evictions = 0;
  const evict = () => eviction?.fill(++evictions & 0xff);

  // Each calibrated shape's first tensors, up to SEQUENCE_TENSORS: a forward pass runs products of
  // different matrices one after the other, so the timed unit is such a run over distinct tensors.
  const byShape = new Map<string, MatrixUse[]>();
  for (const m of quantised) {
    const list = byShape.get(shapeKey(m)) ?? [];
    if (list.length < SEQUENCE_TENSORS) list.push(m);
    byShape.set(shapeKey(m), list);
  }
  let chosen = [...byShape.values()].filter((list) => list[0].rows * list[0].cols <= MAX_CALIBRATED_ELEMENTS);
  if (chosen.length === 0 && byShape.size > 0) chosen = [[...byShape.values()].reduce((a, b) => (a[0].rows * a[0].cols <= b[0].rows * b[0].cols ? a : b)).slice(0, 1)];
  const lookupCols = matrices.find((m) => m.lookup)?.cols;
  const lookupShape = chosen.find((list) => list[0].cols === lookupCols) ?? chosen[0];

  interface Timed {
    sequence: MatrixUse[];
    kind: HolderKind;
    holders: LinearWeight[];
    one: number;
    batch: number;
  }
  const timed: Timed[] = [];
  for (const sequence of chosen) {
    for (const kind of HOLDER_KINDS) {
      const batch = batchInputs > 0 && kind !== "compressed" ? Infinity : 0;
      const holders: LinearWeight[] = [];
      for (const m of sequence) holders.push(await buildHolder(kind, m.frame!));
      timed.push({ sequence, kind, holders, one: Infinity, batch });
    }
  }
  const inputs = new Map(chosen.map((sequence) => [sequence, probeInputs(sequence[0].cols, Math.max(1, batchInputs))]));
  const outputs = new Map(chosen.map((sequence) => [sequence, new Float32Array(sequence[0].rows * Math.max(1, batchInputs))]));
  // Seconds per product of one run over the sequence, caches emptied first when `cold`.
  const sequenceSeconds = ({ sequence, holders }: Timed): number => {
    const x = inputs.get(sequence)!.subarray(0, sequence[0].cols);
    const y = outputs.get(sequence)!.subarray(0, sequence[0].rows);
    evict();
    const start = performance.now();
    for (const holder of holders) holder.matvec(x, y);
    return (performance.now() - start) / 1000 / holders.length;
  };
  for (const entry of timed) sequenceSeconds(entry);
  const int8Probe = timed.find((e) => e.sequence === lookupShape && e.kind === "int8");
  const product = ({ sequence, holders }: Timed) => () => holders[0].matvec(inputs.get(sequence)!.subarray(0, sequence[0].cols), outputs.get(sequence)!.subarray(0, sequence[0].rows));
  const batchProduct = ({ sequence, holders }: Timed) => () => holders[0].matmul!(inputs.get(sequence)!, batchInputs, outputs.get(sequence)!);
  const ratios: Record<keyof KindTiming, number[]> = { one: [], batch: [] };
  // At least `runs` rounds, and more while a round still improves some best time: a machine that is
  // busy or warming up when the calibration starts would otherwise leave every best too slow.
  for (let round = 0, improved = true; round < runs || (improved && round < runs * MAX_ROUNDS_FACTOR); round++) {
    improved = false;
    for (const entry of timed) {
      const seconds = sequenceSeconds(entry);
      if (seconds < entry.one * (1 - SETTLED_IMPROVEMENT)) improved = true;
      entry.one = Math.min(entry.one, seconds);
    }
    if (int8Probe) ratios.one.push(sustainedRatio(product(int8Probe)));
    // A batch reads its weights once for many inputs: cold or warm caches make little difference.
    if (batchInputs > 0 && round < BATCH_ROUNDS) {
      for (const entry of timed.filter((e) => e.kind !== "compressed")) entry.batch = Math.min(entry.batch, bestSeconds(1, batchProduct(entry)));
      if (int8Probe) ratios.batch.push(sustainedRatio(batchProduct(int8Probe)));
    }
  }
  const lookup = { f32: 0, int8: 0, compressed: 0 } as Record<HolderKind, number>;
  for (const entry of timed.filter((e) => e.sequence === lookupShape)) lookup[entry.kind] = lookupSeconds(entry.holders[0], runs);
  const factor = (list: number[]) => (list.length > 0 ? Math.max(1, median(list)) : 1);
  const sustained = { one: factor(ratios.one), batch: factor(ratios.batch) };

  const shapes = chosen.map((sequence): CalibratedShape => {
    const timings = {} as Record<HolderKind, KindTiming>;
    for (const entry of timed.filter((e) => e.sequence === sequence)) timings[entry.kind] = { one: entry.one, batch: entry.batch };
    // The one-input timings are means over the sequence, and so are these.
    const blocks = sequence.map((m) => frameBlocks(m.frame!));
    const mean = (f: (b: { mode: number; count: number }[]) => number) => blocks.reduce((sum, b) => sum + f(b), 0) / blocks.length;
    const { name, rows, cols } = sequence[0];
    return { name, rows, cols, tensors: sequence.length, timings, codedSymbols: mean(codedSymbols), balance: mean((b) => blockBalance(b, threads)) };
  });
  return { threads, cold, batchInputs, shapes, lookup, sustained, seconds: (performance.now() - started) / 1000 };
}

/**
 * Predicted seconds that holding `m` as `kind` adds to the workload. Its product times come from
 * the calibration matrix of its shape, or are scaled by weight count from the largest calibrated
 * one of its width (else the largest of all); a compressed holder's product is the int8 product
 * plus decoding, scaled by the symbols its RANS and RAW blocks hold and by how evenly its blocks
 * spread over the threads. Each phase's products are multiplied by `sustained`.
 */
export function holderSeconds(calibration: Calibration, m: MatrixUse, kind: HolderKind, workload: Workload): number {
  let seconds = m.lookup ? (workload.prefillTokens + workload.generatedTokens) * calibration.lookup[kind] : 0;
  if (!m.product) return seconds;
  const one = productSeconds(calibration, m, kind, "one");
  seconds += workload.generatedTokens * one;
  if (workload.prefillTokens === 1 || (workload.prefillTokens > 1 && m.classifier)) seconds += one;
  else if (workload.prefillTokens > 1) seconds += (productSeconds(calibration, m, kind, "batch") * workload.prefillTokens) / calibration.batchInputs;
  return seconds;
}

function productSeconds(calibration: Calibration, m: MatrixUse, kind: HolderKind, mode: keyof KindTiming): number {
  const ref = referenceShape(calibration, m);
  if (!ref) return 0;
  const scale = (m.rows * m.cols) / (ref.rows * ref.cols);
  const int8 = ref.timings.int8[mode] * scale;
  const sustained = calibration.sustained[mode];
  if (kind !== "compressed") return ref.timings[kind][mode] * scale * sustained;
  // The compressed product is the int8 product plus decoding, both spread over threads by block.
  // Decoding is the same work whatever the number of inputs, so it is taken from the one-input
  // timings (many short runs) for batches too.
  const decode = Math.max(0, ref.timings.compressed.one / ref.balance - ref.timings.int8.one);
  const blocks = m.frame ? frameBlocks(m.frame) : [];
  const coded = ref.codedSymbols > 0 ? codedSymbols(blocks) / ref.codedSymbols : scale;
  return (int8 + decode * coded) * blockBalance(blocks, calibration.threads) * sustained;
}

function referenceShape(calibration: Calibration, m: MatrixUse): CalibratedShape | undefined {
  const { shapes } = calibration;
  const same = shapes.find((s) => s.rows === m.rows && s.cols === m.cols);
  if (same) return same;
  const largest = (list: CalibratedShape[]) => list.reduce<CalibratedShape | undefined>((a, b) => (!a || b.rows * b.cols > a.rows * a.cols ? b : a), undefined);
  return largest(shapes.filter((s) => s.cols === m.cols)) ?? largest(shapes);
}

function shapeKey(m: { rows: number; cols: number }): string {
  return `${m.rows}x${m.cols}`;
}

/** Deterministic inputs of binary32 values of a trained model's activations' order of magnitude. */
function probeInputs(cols: number, n: number): Float32Array {
  const x = new Float32Array(cols * n);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7311) * 1.5;
  return x;
}

/** The best of `runs` timed runs, in seconds, after one untimed run. */
function bestSeconds(runs: number, run: () => void): number {
  run();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    run();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

/**
 * A product run back to back for about SUSTAINED_SECONDS, per product, over its best of three
 * single runs just before (warm, as the back-to-back runs are).
 */
function sustainedRatio(product: () => void): number {
  const single = bestSeconds(3, product);
  const count = Math.max(2, Math.ceil(SUSTAINED_SECONDS / single));
  const start = performance.now();
  for (let i = 0; i < count; i++) product();
  return (performance.now() - start) / 1000 / count / single;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Seconds per row lookup: rows spread over the matrix, so a compressed holder decodes a block each time. */
function lookupSeconds(holder: LinearWeight, runs: number): number {
  const row = new Float32Array(holder.cols);
  const count = Math.min(holder.rows, 16);
  const lookups = () => {
    for (let i = 0; i < count; i++) holder.row(Math.floor(((i + 0.5) * holder.rows) / count), row);
  };
  return bestSeconds(runs, lookups) / count;
}

/** The mode and symbol count of each block of an int-quant frame, read from the block headers. */
export function frameBlocks({ entry, frame }: TensorFrameBytes): { mode: number; count: number }[] {
  const { headerOffsets } = placeBlocks(entry.frameOffset, entry.headerLength, entry.payloadLengths);
  return headerOffsets.map((at) => {
    const header = new DataView(frame.buffer, frame.byteOffset + at - entry.frameOffset, 8);
    return { mode: header.getUint8(0), count: header.getUint32(4, true) };
  });
}

function codedSymbols(blocks: readonly { mode: number; count: number }[]): number {
  return blocks.reduce((sum, block) => sum + (block.mode === BLOCK_MODES.CONST ? 0 : block.count), 0);
}

/**
 * How much longer than an even share the busiest of `threads` threads works when each takes the
 * next block as it becomes free (the thread pool's order), a block's work taken as its symbols.
 */
export function blockBalance(blocks: readonly { count: number }[], threads: number): number {
  const total = blocks.reduce((sum, block) => sum + block.count, 0);
  if (total === 0 || threads <= 1) return 1;
  const busy = new Array<number>(threads).fill(0);
  for (const block of blocks) {
    let soonest = 0;
    for (let t = 1; t < threads; t++) if (busy[t] < busy[soonest]) soonest = t;
    busy[soonest] += block.count;
  }
  return Math.max(...busy) / (total / threads);
}
