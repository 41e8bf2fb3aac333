/**
 * `npm run bench:stream`: a Llama-shaped model of several GB streamed through the CLI in both
 * directions, with nothing of the model on disk from the bench and nothing of it held in memory:
 *
 *   generator (this process) → qans pack - -o - --mode M → qans unpack - -o - → checker (this process)
 *
 * The two qans children run under one bash pipeline, so they are joined by an OS pipe; the bench
 * writes the generated safetensors stream into the pipeline's standard input and reads the unpacked
 * safetensors from its standard output. Each child runs under GNU time (`/usr/bin/time -v`), which
 * gives its peak RSS, wall time and CPU time.
 *
 *   npm run bench:stream [-- --gb 2,4 --modes lossless,int8 --seed N --memlog --keep-logs]
 *
 * Without --gb and --modes it runs the default plan (see DEFAULT_PLAN); with either, every size
 * with every mode. The checker hashes the unpacked stream (SHA-256) and, for lossless, compares it
 * with the hash of the generated stream: a bit-exact round trip. For int modes it checks that the
 * header lists the same tensors, shapes and offsets, that vectors come back bit-exact, and that each
 * element of a matrix is within half a quantisation step of the original (the step is derived from
 * the original row's largest magnitude, the per-row symmetric scale, allowing for its rounding up
 * to F16). Exits non-zero when a peak RSS is over 256 MB + the largest tensor, or a check fails.
 *
 * --memlog (or QANS_BENCH_MEMLOG=<ms>) makes each child log process.memoryUsage() every 20 ms
 * (or <ms>) through a preloaded module, with its garbage collections, and prints where the memory was
 * at each child's peak. --keep-logs keeps the GNU time reports, the children's messages and the
 * memory logs (one JSON object a line) in a folder under the temporary directory.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  dataBytes,
  DEFAULT_WEIGHTS,
  layersForBytes,
  modelMetadata,
  planModel,
  rowsPerChunk,
  safetensorsChunks,
  safetensorsHeader,
  STORIES110M,
  TensorValues,
  type ModelPlan,
} from "./lib/llama-shape.js";
import { formatBytes, formatTable } from "./lib/table.js";

const MB = 1e6;
const GB = 1e9;
const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const GNU_TIME = "/usr/bin/time";
const MODES = ["lossless", "int8", "int4"] as const;
type Mode = (typeof MODES)[number];
/** The bound on each child's peak RSS is this plus the largest tensor. */
const BOUND_BASE = 256 * MB;
/** Bytes of rows the generator and the checker handle at a time. */
const CHUNK_BYTES = 1 << 20;

/**
 * The default plan: lossless and int8 at 2 GB, then both again at 4 GB to show that memory stays
 * flat when the model doubles. About 3 to 4 minutes on the machine in bench/README.md.
 */
const DEFAULT_PLAN: { gb: number; mode: Mode }[] = [
  { gb: 2, mode: "lossless" },
  { gb: 2, mode: "int8" },
  { gb: 4, mode: "lossless" },
  { gb: 4, mode: "int8" },
];

interface TimeReport {
  peakRssBytes: number;
  wallSeconds: number;
  cpuSeconds: number;
  exitStatus: number | null;
}

interface MemorySample {
  t: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

interface CheckResult {
  ok: boolean;
  messages: string[];
  unpackedSha256: string;
  unpackedBytes: number;
  /** int modes: the largest |restored − original| as a fraction of the row's step. */
  worstStepFraction?: number;
}

interface RunResult {
  gb: number;
  mode: Mode;
  layers: number;
  tensors: number;
  modelBytes: number;
  largestTensorBytes: number;
  qansBytes: number | null;
  generatedSha256: string;
  pack: TimeReport;
  unpack: TimeReport;
  /** From the start of the pipeline to the last byte the checker read. */
  totalSeconds: number;
  check: CheckResult;
  failures: string[];
  memory?: { pack: MemoryLog; unpack: MemoryLog; progress: { t: number; bytes: number; tensor: string }[] };
}

// ---------------------------------------------------------------------------------------------
// GNU time

function gnuTimePresent(): boolean {
  const probe = spawnSync(GNU_TIME, ["--version"], { stdio: "ignore" });
  return !probe.error && probe.status === 0;
}

/**
 * Makes sure GNU time is at /usr/bin/time, installing Debian's `time` package when it is not, as
 * bench/lib/zstd.ts does for zstd: apt-get install, and apt-get update then install again if the
 * first attempt fails. Returns null when it is usable, otherwise why not.
 */
function ensureGnuTime(log: (message: string) => void): string | null {
  if (gnuTimePresent()) return null;
  log(`${GNU_TIME} is missing; installing it with apt-get install -y time ...`);
  const apt = (args: string[]) => {
    const run = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    return !run.error && run.status === 0;
  };
  if (!apt(["install", "-y", "time"]) && apt(["update"])) apt(["install", "-y", "time"]);
  if (gnuTimePresent()) return null;
  return `could not install GNU time (apt-get install -y time failed; it needs root and Debian's package lists). Install it so that ${GNU_TIME} -v works, and rerun.`;
}

/** The fields this bench needs from a `time -v -o file` report. */
function parseTimeReport(text: string): TimeReport {
  const field = (label: string): string | undefined => {
    for (const line of text.split("\n")) {
      const at = line.indexOf(`${label}:`);
      if (at >= 0 && line.slice(0, at).trim() === "") return line.slice(at + label.length + 1).trim();
    }
    return undefined;
  };
  const number = (label: string) => Number(field(label) ?? NaN);
  const wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)") ?? "";
  const wallSeconds = wall.split(":").reduce((sum, part) => sum * 60 + Number(part), 0);
  const exit = field("Exit status");
  return {
    peakRssBytes: number("Maximum resident set size (kbytes)") * 1024,
    wallSeconds: wall ? wallSeconds : NaN,
    cpuSeconds: number("User time (seconds)") + number("System time (seconds)"),
    exitStatus: exit === undefined ? null : Number(exit),
  };
}

// ---------------------------------------------------------------------------------------------
// Memory logging in the children (bench only: a module preloaded with --import)

/** The module each child preloads with --memlog: one JSON line of process.memoryUsage() per interval. */
function memoryLogger(intervalMs: number): string {
  const code = `
import { appendFileSync } from "node:fs";
const file = process.env.QANS_BENCH_MEMLOG_FILE;
if (file) {
  const sample = () => {
    const m = process.memoryUsage();
    appendFileSync(file, JSON.stringify({ t: Date.now(), rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }) + "\\n");
  };
  setInterval(sample, ${intervalMs}).unref();
  process.on("exit", sample);
  // Garbage collections too, to tell memory in use from garbage not yet collected.
  const { PerformanceObserver, constants } = await import("node:perf_hooks");
  const kinds = { [constants.NODE_PERFORMANCE_GC_MAJOR]: "major", [constants.NODE_PERFORMANCE_GC_MINOR]: "minor", [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental", [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb" };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      appendFileSync(file, JSON.stringify({ gc: kinds[entry.detail?.kind] ?? String(entry.detail?.kind), t: Math.round(performance.timeOrigin + entry.startTime), ms: entry.duration }) + "\\n");
    }
  }).observe({ entryTypes: ["gc"] });
}`;
  return `--import=data:text/javascript,${encodeURIComponent(code)}`;
}

interface GcEvent {
  t: number;
  gc: string;
  ms: number;
}

interface MemoryLog {
  samples: MemorySample[];
  gcs: GcEvent[];
}

function readMemoryLog(file: string, origin: number): MemoryLog {
  const log: MemoryLog = { samples: [], gcs: [] };
  if (!existsSync(file)) return log;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const entry = JSON.parse(line) as MemorySample | GcEvent;
    entry.t -= origin;
    if ("gc" in entry) log.gcs.push(entry);
    else log.samples.push(entry);
  }
  return log;
}

// ---------------------------------------------------------------------------------------------
// Reading the unpacked stream

/** Pulls exact byte counts from an async stream of chunks. */
class ByteReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  private done = false;
  bytes = 0;

  constructor(
    private readonly iterator: AsyncIterator<Uint8Array>,
    private readonly onChunk: (chunk: Uint8Array) => void,
  ) {}

  /** Fills `out`; returns how many bytes it got, fewer only at the end of the stream. */
  async fill(out: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < out.length) {
      if (this.at === this.chunk.length) {
        if (this.done) break;
        const next = await this.iterator.next();
        if (next.done) {
          this.done = true;
          break;
        }
        this.chunk = next.value;
        this.at = 0;
        this.onChunk(this.chunk);
        this.bytes += this.chunk.length;
        continue;
      }
      const n = Math.min(out.length - filled, this.chunk.length - this.at);
      out.set(this.chunk.subarray(this.at, this.at + n), filled);
      this.at += n;
      filled += n;
    }
    return filled;
  }

  /** Reads (and hashes) whatever is left; returns how many bytes that was. */
  async drain(): Promise<number> {
    let rest = this.chunk.length - this.at;
    this.at = this.chunk.length;
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) break;
      this.onChunk(next.value);
      this.bytes += next.value.length;
      rest += next.value.length;
    }
    this.done = true;
    return rest;
  }
}

/** Relative rounding of a step to F16 (rounded up: at most one unit in the 11-bit significand). */
const F16_ROUNDING = 2 ** -10;

/**
 * Reads the unpacked safetensors stream: hashes all of it; checks that its header is the
 * generated one byte for byte (same tensors, dtypes, shapes, offsets and metadata), and for int
 * modes compares every value with the regenerated original.
 */
async function checkUnpacked(stream: Readable, plan: ModelPlan, mode: Mode): Promise<CheckResult> {
  const hash = createHash("sha256");
  const reader = new ByteReader(stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>, (chunk) => hash.update(chunk));
  const messages: string[] = [];
  const expectedHeader = safetensorsHeader(plan.tensors, modelMetadata(plan));
  const lengthBytes = new Uint8Array(8);
  let ok = true;
  let worst = 0;
  if ((await reader.fill(lengthBytes)) === 8) {
    const headerLength = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    const header = new Uint8Array(8 + Math.min(headerLength, 100 << 20));
    header.set(lengthBytes);
    const got = await reader.fill(header.subarray(8));
    if (got < header.length - 8 || !Buffer.from(header).equals(Buffer.from(expectedHeader))) {
      ok = false;
      messages.push(describeHeaderDifference(header.subarray(0, 8 + got), plan));
    } else if (mode !== "lossless") {
      const result = await compareValues(reader, plan, bitsOf(mode));
      worst = result.worst;
      if (result.problem) {
        ok = false;
        messages.push(result.problem);
      }
    }
  } else {
    ok = false;
    messages.push("the unpacked stream ended before the 8-byte header length");
  }
  await reader.drain();
  return { ok, messages, unpackedSha256: hash.digest("hex"), unpackedBytes: reader.bytes, worstStepFraction: mode === "lossless" ? undefined : worst };
}

function bitsOf(mode: Mode): number {
  return Number(/^int(\d)$/.exec(mode)![1]);
}

function describeHeaderDifference(header: Uint8Array, plan: ModelPlan): string {
  let parsed: Record<string, { dtype?: string; shape?: number[]; data_offsets?: number[] }>;
  try {
    parsed = JSON.parse(new TextDecoder().decode(header.subarray(8)));
  } catch {
    return `the unpacked header (${header.length} bytes) is not the generated one and is not valid JSON`;
  }
  const names = Object.keys(parsed).filter((name) => name !== "__metadata__");
  if (names.length !== plan.tensors.length) return `the unpacked header lists ${names.length} tensors, the generated one ${plan.tensors.length}`;
  let offset = 0;
  for (let i = 0; i < names.length; i++) {
    const t = plan.tensors[i];
    const entry = parsed[names[i]];
    const want = JSON.stringify({ name: t.name, dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.byteLength] });
    const have = JSON.stringify({ name: names[i], dtype: entry.dtype, shape: entry.shape, data_offsets: entry.data_offsets });
    if (want !== have) return `unpacked header entry ${i} is ${have}, expected ${want}`;
    offset += t.byteLength;
  }
  return "the unpacked header lists the same tensors, shapes and offsets but differs in metadata or padding";
}

/**
 * Every value of the unpacked data against the regenerated original: vectors bit-exact; matrix
 * elements within half a step, the step being the row's largest magnitude / (2^(b−1) − 1) rounded
 * up to F16, plus the binary32 rounding of the reconstruction.
 */
async function compareValues(reader: ByteReader, plan: ModelPlan, bits: number): Promise<{ worst: number; problem?: string }> {
  const qmax = 2 ** (bits - 1) - 1;
  let worst = 0;
  for (const tensor of plan.tensors) {
    const values = new TensorValues(tensor, plan);
    const rows = rowsPerChunk(values.cols, CHUNK_BYTES);
    const buffer = new Uint8Array(rows * values.cols * 4);
    let row = 0;
    while (values.rowsLeft > 0) {
      const original = values.next(rows);
      const bytes = buffer.subarray(0, original.byteLength);
      if ((await reader.fill(bytes)) < bytes.length) return { worst, problem: `the unpacked stream ended inside "${tensor.name}"` };
      const restored = new Float32Array(bytes.buffer, 0, original.length);
      if (tensor.kind === "norm") {
        if (!Buffer.from(bytes).equals(Buffer.from(original.buffer))) return { worst, problem: `vector "${tensor.name}" did not come back bit-exact` };
        continue;
      }
      for (let r = 0; r * values.cols < original.length; r++, row++) {
        // One pass per row: the original's largest magnitude gives the step; the row's largest
        // error is then held against half of it, with the binary32 rounding of the largest value.
        const base = r * values.cols;
        let absMax = 0;
        let restoredMax = 0;
        let error = 0;
        let at = 0;
        for (let j = 0; j < values.cols; j++) {
          const o = original[base + j];
          const v = restored[base + j];
          absMax = Math.max(absMax, Math.abs(o));
          restoredMax = Math.max(restoredMax, Math.abs(v));
          const e = Math.abs(v - o);
          if (e > error) {
            error = e;
            at = j;
          } else if (e !== e) {
            error = NaN;
            at = j;
            break;
          }
        }
        const step = absMax / qmax;
        const allowed = (step * (1 + F16_ROUNDING)) / 2 + 2 ** -23 * restoredMax + 2 ** -149;
        if (step > 0) worst = Math.max(worst, error / step);
        if (!(error <= allowed)) {
          return { worst, problem: `"${tensor.name}" row ${row} column ${at}: ${restored[base + at]} restored for ${original[base + at]}, more than half a step (${step}) apart` };
        }
      }
    }
  }
  return { worst };
}

// ---------------------------------------------------------------------------------------------
// One run: generator → pack → unpack → checker

function writeChunk(stream: Writable, chunk: Uint8Array): Promise<void> | null {
  if (stream.write(chunk)) return null;
  return new Promise((resolvePromise, reject) => {
    const onDrain = () => {
      stream.off("error", onError);
      resolvePromise();
    };
    const onError = (error: Error) => {
      stream.off("drain", onDrain);
      reject(error);
    };
    stream.once("drain", onDrain);
    stream.once("error", onError);
  });
}

/** Spool files that unpack leaves in `directory` if it is killed before it can remove them. */
function spoolFiles(directory: string): string[] {
  try {
    return readdirSync(directory).filter((name) => name.includes(".qans-spool-"));
  } catch {
    return [];
  }
}

async function runPipeline(gb: number, mode: Mode, seed: number, work: string, memlogMs: number | null): Promise<RunResult> {
  const shape = { ...STORIES110M, layers: layersForBytes(STORIES110M, gb * GB) };
  const plan = planModel(shape, { ...DEFAULT_WEIGHTS, seed });
  const modelBytes = dataBytes(plan.tensors);
  const largestTensorBytes = Math.max(...plan.tensors.map((t) => t.byteLength));
  const tag = `${gb}gb-${mode}`;
  const file = (name: string) => join(work, `${tag}.${name}`);
  const failures: string[] = [];

  // The two children and their pipe, with each child's report and messages in its own small file.
  const node = [process.execPath, ...(memlogMs ? [memoryLogger(memlogMs)] : [])].map(shellQuote).join(" ");
  const qans = (name: "pack" | "unpack", args: string) =>
    (memlogMs ? `QANS_BENCH_MEMLOG_FILE=${shellQuote(file(`${name}.memlog`))} ` : "") +
    `${GNU_TIME} -v -o ${shellQuote(file(`${name}.time`))} ${node} ${shellQuote(CLI)} ${name} ${args} 2> ${shellQuote(file(`${name}.err`))}`;
  const script = ["set -o pipefail", `${qans("pack", `- -o - --mode ${mode} --json`)} | ${qans("unpack", "- -o - --json")}`].join("\n");
  const started = performance.now();
  const startedAt = Date.now();
  const child = spawn("bash", ["-c", script], { stdio: ["pipe", "pipe", "inherit"], detached: true });
  running = child.pid;
  const exited = new Promise<number | null>((resolvePromise) => child.on("close", (code) => resolvePromise(code)));
  child.stdin.on("error", () => undefined);

  const checking = checkUnpacked(child.stdout, plan, mode);
  const progress: { t: number; bytes: number; tensor: string }[] = [];
  const generatedHash = createHash("sha256");
  let generated = 0;
  let lastProgress = 0;
  try {
    const offsets = tensorStarts(plan);
    for (const chunk of safetensorsChunks(plan, CHUNK_BYTES)) {
      generatedHash.update(chunk);
      generated += chunk.length;
      if (memlogMs && Date.now() - lastProgress >= memlogMs) {
        lastProgress = Date.now();
        progress.push({ t: lastProgress, bytes: generated, tensor: tensorAt(offsets, generated) });
      }
      const wait = writeChunk(child.stdin, chunk);
      if (wait) await wait;
    }
    child.stdin.end();
  } catch (error) {
    failures.push(`writing the model into the pipeline failed after ${generated} bytes: ${(error as Error).message}`);
    child.stdin.destroy();
  }
  const check = await checking;
  const totalSeconds = (performance.now() - started) / 1000;
  const status = await exited;
  running = undefined;

  const pack = parseTimeReport(readIfExists(file("pack.time")));
  const unpack = parseTimeReport(readIfExists(file("unpack.time")));
  const packSummary = parseSummary(readIfExists(file("pack.err")));
  if (status !== 0) failures.push(`the pipeline exited with status ${status} (pack ${pack.exitStatus}, unpack ${unpack.exitStatus})`);
  for (const [name, report, time] of [["pack", file("pack.err"), pack], ["unpack", file("unpack.err"), unpack]] as const) {
    if (time.exitStatus === 0) continue;
    // The child's own message: a "qans: CODE: ..." line, else the end of what it printed.
    const lines = readIfExists(report).split("\n").filter((line) => line.trim() !== "");
    const errors = lines.filter((line) => line.startsWith("qans:"));
    for (const line of errors.length > 0 ? errors : lines.slice(-6)) failures.push(`${name}: ${line.slice(0, 300)}`);
  }
  const generatedSha256 = generatedHash.digest("hex");
  if (!check.ok) failures.push(...check.messages);
  if (mode === "lossless" && check.unpackedSha256 !== generatedSha256) failures.push(`lossless round trip differs: sha256 ${check.unpackedSha256} unpacked, ${generatedSha256} generated`);
  if (check.unpackedBytes !== generated) failures.push(`unpacked ${check.unpackedBytes} bytes, generated ${generated}`);
  const bound = BOUND_BASE + largestTensorBytes;
  if (pack.peakRssBytes > bound) failures.push(`pack peak RSS ${(pack.peakRssBytes / MB).toFixed(0)} MB is over the bound ${(bound / MB).toFixed(0)} MB`);
  if (unpack.peakRssBytes > bound) failures.push(`unpack peak RSS ${(unpack.peakRssBytes / MB).toFixed(0)} MB is over the bound ${(bound / MB).toFixed(0)} MB`);

  const result: RunResult = {
    gb,
    mode,
    layers: shape.layers,
    tensors: plan.tensors.length,
    modelBytes,
    largestTensorBytes,
    qansBytes: packSummary?.outputBytes ?? null,
    generatedSha256,
    pack,
    unpack,
    totalSeconds,
    check,
    failures,
  };
  if (memlogMs) {
    for (const p of progress) p.t -= startedAt;
    result.memory = { pack: readMemoryLog(file("pack.memlog"), startedAt), unpack: readMemoryLog(file("unpack.memlog"), startedAt), progress };
  }
  return result;
}

function tensorStarts(plan: ModelPlan): { start: number; name: string }[] {
  let at = safetensorsHeader(plan.tensors, modelMetadata(plan)).length;
  return plan.tensors.map((t) => {
    const entry = { start: at, name: t.name };
    at += t.byteLength;
    return entry;
  });
}

function tensorAt(starts: { start: number; name: string }[], offset: number): string {
  let name = "(header)";
  for (const s of starts) {
    if (s.start >= offset) break;
    name = s.name;
  }
  return name;
}

function parseSummary(text: string): { outputBytes?: number } | null {
  const start = text.indexOf("{");
  if (start < 0) return null;
  try {
    return JSON.parse(text.slice(start, text.lastIndexOf("}") + 1));
  } catch {
    return null;
  }
}

function readIfExists(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Reporting

function describeMemory(name: string, { samples, gcs }: MemoryLog, progress: { t: number; bytes: number; tensor: string }[], peakRss: number): string[] {
  if (samples.length === 0) return [`  ${name}: no samples`];
  const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
  const max = (key: keyof MemorySample) => Math.max(...samples.map((s) => s[key]));
  const mb = (n: number) => `${(n / MB).toFixed(0)} MB`;
  const near = progress.filter((p) => p.t <= peak.t).at(-1);
  const other = peak.rss - peak.heapTotal - peak.external;
  return [
    `  ${name}: peak RSS ${mb(peakRss)} (time -v); sampled peak ${mb(peak.rss)} at ${(peak.t / 1000).toFixed(1)} s` +
      (near ? `, generator at ${(near.bytes / GB).toFixed(2)} GB in "${near.tensor}"` : ""),
    `    at that sample: V8 heap ${mb(peak.heapTotal)} (used ${mb(peak.heapUsed)}), external ${mb(peak.external)} (ArrayBuffers ${mb(peak.arrayBuffers)}), rest ${mb(other)} (code, stacks, native allocations, freed pages not yet returned)`,
    `    maxima over ${samples.length} samples: heap ${mb(max("heapTotal"))}, external ${mb(max("external"))}, ArrayBuffers ${mb(max("arrayBuffers"))}`,
    `    garbage collections: ${countBy(gcs)}; last major one before the peak ${lastBefore(gcs, "major", peak.t)}`,
  ];
}

function countBy(gcs: GcEvent[]): string {
  const counts = new Map<string, number>();
  for (const { gc } of gcs) counts.set(gc, (counts.get(gc) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ") || "none";
}

function lastBefore(gcs: GcEvent[], kind: string, t: number): string {
  const last = gcs.filter((g) => g.gc === kind && g.t <= t).at(-1);
  return last ? `${((t - last.t) / 1000).toFixed(2)} s earlier` : "none";
}

function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model.trim() ?? "unknown CPU"}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
}

function freeBytes(directory: string): number {
  const stats = statfsSync(directory);
  return stats.bavail * stats.bsize;
}

function parseList<T extends string>(text: string | undefined, allowed: readonly T[] | null, what: string): T[] | null {
  if (text === undefined) return null;
  const items = text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  for (const item of items) {
    if (allowed ? !allowed.includes(item as T) : !(Number(item) > 0)) throw new Error(`${what}: ${JSON.stringify(item)} is not one of ${allowed ? allowed.join(", ") : "positive numbers"}`);
  }
  if (items.length === 0) throw new Error(`${what} needs at least one value`);
  return items as T[];
}

let running: number | undefined;
let workDirectory: string | undefined;

function cleanUp(): void {
  if (running !== undefined) {
    try {
      process.kill(-running, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
  if (workDirectory) rmSync(workDirectory, { recursive: true, force: true });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      gb: { type: "string" },
      modes: { type: "string" },
      seed: { type: "string", default: "1" },
      memlog: { type: "boolean", default: false },
      "keep-logs": { type: "boolean", default: false },
    },
  });
  const gbs = parseList(values.gb, null, "--gb")?.map(Number) ?? null;
  const modes = parseList(values.modes, MODES, "--modes");
  const plan = gbs === null && modes === null ? DEFAULT_PLAN : (gbs ?? [2]).flatMap((gb) => (modes ?? ["lossless", "int8"]).map((mode) => ({ gb, mode })));
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed needs an integer from 0 to 4294967295, got ${values.seed}`);
  const envMemlog = Number(process.env.QANS_BENCH_MEMLOG ?? 0);
  const memlogMs = envMemlog > 0 ? envMemlog : values.memlog ? 20 : null;

  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench:stream does)`);
  const timeProblem = ensureGnuTime((message) => console.log(message));
  if (timeProblem) {
    console.error(timeProblem);
    return 1;
  }

  const spoolDirectory = tmpdir();
  const needed = Math.max(...plan.map(({ gb }) => dataBytes(planModel({ ...STORIES110M, layers: layersForBytes(STORIES110M, gb * GB) }).tensors)));
  const free = freeBytes(spoolDirectory);
  console.log("QANS streaming bench: generator → qans pack - -o - → qans unpack - -o - → checker, all through pipes");
  console.log(`machine: ${machine()}`);
  console.log(`unpack spools to ${spoolDirectory}: ${(free / GB).toFixed(1)} GB free, the largest run needs ${(needed / GB).toFixed(2)} GB there at a time (runs are sequential; the spool is removed as each ends)`);
  if (free < needed + 2 * GB) {
    console.error(`not enough free space in ${spoolDirectory} for unpack's spool: set TMPDIR to a folder with ${((needed + 2 * GB) / GB).toFixed(1)} GB free`);
    return 1;
  }
  const w = DEFAULT_WEIGHTS;
  console.log(
    `model: Llama shape of stories110M (dim ${STORIES110M.dim}, hidden ${STORIES110M.hidden}, ${STORIES110M.heads} heads, vocab ${STORIES110M.vocab}), F32,` +
      ` layers repeated to reach the size; per layer wq/wk/wv/wo [${STORIES110M.dim},${STORIES110M.dim}], w1/w3 [${STORIES110M.hidden},${STORIES110M.dim}], w2 [${STORIES110M.dim},${STORIES110M.hidden}], 2 RMSNorm [${STORIES110M.dim}];` +
      ` plus tok_embeddings and output [${STORIES110M.vocab},${STORIES110M.dim}], norm [${STORIES110M.dim}]`,
  );
  console.log(
    `weights (seed ${seed}): Gaussian (tails cut at ±4.3σ) × per-input-channel scale = ${w.std} × exp(${w.channelSigma}·N(0,1)); ${w.outlierChannels} outlier channels per matrix × U(${w.outlierMin}, ${w.outlierMax})` +
      ` (the same ${w.outlierChannels} residual-stream channels in every matrix with ${STORIES110M.dim} columns); RMSNorm weights exp(${w.normSigma}·N(0,1))`,
  );
  console.log(`runs: ${plan.map(({ gb, mode }) => `${gb} GB ${mode}`).join(", ")}${memlogMs ? `; children log memoryUsage() every ${memlogMs} ms` : ""}`);
  console.log("");

  const work = mkdtempSync(join(tmpdir(), "qans-bench-stream-"));
  if (values["keep-logs"]) console.log(`GNU time reports, the children's messages and memory logs stay in ${work}`);
  else workDirectory = work;
  const spoolsBefore = new Set(spoolFiles(spoolDirectory));
  const results: RunResult[] = [];
  const benchStarted = performance.now();
  for (const { gb, mode } of plan) {
    process.stdout.write(`${gb} GB ${mode}: `);
    const result = await runPipeline(gb, mode, seed, work, memlogMs);
    results.push(result);
    const leftover = spoolFiles(spoolDirectory).filter((name) => !spoolsBefore.has(name));
    if (leftover.length > 0) result.failures.push(`spool files left in ${spoolDirectory}: ${leftover.join(", ")}`);
    console.log(
      `${result.layers} layers, ${result.tensors} tensors, ${(result.modelBytes / GB).toFixed(3)} GB; pack ${result.pack.wallSeconds.toFixed(1)} s, unpack ${result.unpack.wallSeconds.toFixed(1)} s,` +
        ` total ${result.totalSeconds.toFixed(1)} s; ${result.failures.length === 0 ? "ok" : "FAILED"}`,
    );
    console.log(`  generated sha256 ${result.generatedSha256}`);
    console.log(`  unpacked  sha256 ${result.check.unpackedSha256}${mode === "lossless" ? (result.check.unpackedSha256 === result.generatedSha256 ? " (equal: bit-exact)" : " (DIFFERS)") : ""}`);
    if (result.check.ok && result.check.worstStepFraction !== undefined) console.log(`  header identical; vectors bit-exact; worst matrix error ${result.check.worstStepFraction.toFixed(4)} × step (allowed: 0.5 × (1 + 2^-10), steps being rounded up to F16)`);
    if (result.memory) {
      for (const line of describeMemory("pack", result.memory.pack, result.memory.progress, result.pack.peakRssBytes)) console.log(line);
      for (const line of describeMemory("unpack", result.memory.unpack, result.memory.progress, result.unpack.peakRssBytes)) console.log(line);
    }
    for (const failure of result.failures) console.log(`  FAIL ${failure}`);
  }
  const benchSeconds = (performance.now() - benchStarted) / 1000;

  const rows = results.map((r) => {
    const bound = BOUND_BASE + r.largestTensorBytes;
    const within = r.pack.peakRssBytes <= bound && r.unpack.peakRssBytes <= bound;
    return [
      (r.modelBytes / GB).toFixed(2),
      (r.largestTensorBytes / MB).toFixed(1),
      r.mode,
      r.qansBytes === null ? "-" : formatBytes(r.qansBytes),
      (r.pack.peakRssBytes / MB).toFixed(0),
      (r.unpack.peakRssBytes / MB).toFixed(0),
      (bound / MB).toFixed(0),
      within ? "PASS" : "FAIL",
      r.check.ok && r.failures.every((f) => f.includes("peak RSS")) ? "PASS" : "FAIL",
      r.pack.wallSeconds.toFixed(1),
      (r.modelBytes / MB / r.pack.wallSeconds).toFixed(0),
      r.unpack.wallSeconds.toFixed(1),
      (r.modelBytes / MB / r.unpack.wallSeconds).toFixed(0),
      r.pack.cpuSeconds.toFixed(1),
      r.unpack.cpuSeconds.toFixed(1),
    ];
  });
  console.log("");
  console.log(
    formatTable(
      ["model GB", "largest tensor MB", "mode", "QANS", "pack RSS MB", "unpack RSS MB", "bound MB", "RSS ≤ bound", "round trip", "pack s", "pack MB/s", "unpack s", "unpack MB/s", "pack CPU s", "unpack CPU s"],
      rows,
      ["right", "right", "left"],
    ),
  );
  console.log(
    [
      "Peak RSS from GNU time -v (maximum resident set size of each qans process); bound = 256 MB + largest tensor (MB = 10^6 bytes).",
      "pack s: pack's wall time, from its start to its exit; pack MB/s = model bytes / pack s. unpack runs alongside pack, decoding and spooling each",
      "tensor as it arrives, then writes the safetensors once the stream is verified; unpack s = its wall time, start to exit, so unpack MB/s is the",
      "rate of the whole pipeline. CPU s = user + system time of each process, all its threads. All three processes share the machine's cores.",
      `round trip: lossless = SHA-256 of the unpacked stream equals the generated one's; int modes = same header, vectors bit-exact, matrices within half a step.`,
      `This process (generator and checker): peak RSS ${((process.resourceUsage().maxRSS * 1024) / MB).toFixed(0)} MB. Total ${benchSeconds.toFixed(0)} s.`,
    ].join("\n"),
  );
  const failed = results.some((r) => r.failures.length > 0);
  console.log(failed ? "FAIL" : "PASS");
  return failed ? 1 : 0;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

main()
  .then((code) => {
    cleanUp();
    process.exitCode = code;
  })
  .catch((error) => {
    cleanUp();
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
