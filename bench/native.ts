/**
 * `npm run bench:native`: QANS's native rANS kernels at every dispatch level against htscodecs'
 * 32x16 rANS at the same level, zstd -3 and -19, and memcpy (the physical bound), in one process
 * (bench/native/harness.cc) on the same bytes. Inputs are at least 64 MiB so caches do not flatter.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import {
  chooseFreqTable,
  entropyBits,
  fromFloat32,
  histogram,
  importModel,
  normalizeFrequencies,
  quantizeRtn,
  splitFloatPlanes,
  toFloat32,
  type ImportedModel,
} from "../sdk/index.js";
import { Random } from "../sdk/testing/random.js";
import { DEMO_MODEL_PATH } from "../sdk/testing/fixtures.js";
import { parseHarnessOutput, type HarnessRow } from "./lib/harness-output.js";
import { formatTable } from "./lib/table.js";

const INPUT_BYTES = 64 * 1024 * 1024;
const BLOCK_SIZES = [1 << 17, 1 << 20];
const workDir = join(tmpdir(), "qans-bench-native");
const root = new URL("..", import.meta.url).pathname;

function ensureLibraries(): void {
  if (existsSync("/usr/include/htscodecs/rANS_static4x16.h") && existsSync("/usr/include/zstd.h")) return;
  console.log("installing libhtscodecs-dev and libzstd-dev from Debian ...");
  const install = () => spawnSync("apt-get", ["install", "-y", "-qq", "libhtscodecs-dev", "libzstd-dev"], { stdio: "inherit" }).status === 0;
  if (!install()) {
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    if (!install()) throw new Error("bench:native needs libhtscodecs-dev and libzstd-dev (apt-get install failed)");
  }
}

/** The levels the dispatcher may return kernels for, as native/CMakeLists.txt defines them on x86-64. */
const COMPILED_LEVELS = ["-DQANS_X86_SIMD=1", "-DQANS_COMPILED_SSE41=1", "-DQANS_COMPILED_AVX2=1", "-DQANS_COMPILED_AVX512=1"];

/** Compiles the harness with the kernels' per-level flags, as native/CMakeLists.txt does. */
function buildHarness(): string {
  const objects: string[] = [];
  const flags: Record<string, string[]> = {
    sse41: ["-msse4.1", "-msse4.2", "-mpopcnt"],
    avx2: ["-mavx2", "-mbmi", "-mbmi2", "-mlzcnt", "-mpopcnt"],
    avx512: ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vbmi", "-mbmi2", "-mpopcnt"],
  };
  const sources = readdirSync(join(root, "native/src")).filter((f) => f.startsWith("rans") && f.endsWith(".cc"));
  for (const source of sources) {
    const suffix = /_(sse41|avx2|avx512)\.cc$/.exec(source)?.[1];
    const object = join(workDir, source.replace(/\.cc$/, ".o"));
    execFileSync("g++", ["-std=c++17", "-O3", "-ffp-contract=off", ...COMPILED_LEVELS, ...(suffix ? flags[suffix] : []), "-c", join(root, "native/src", source), "-o", object]);
    objects.push(object);
  }
  const binary = join(workDir, "harness");
  execFileSync("g++", ["-std=c++17", "-O3", join(root, "bench/native/harness.cc"), ...objects, "-o", binary, "-lhtscodecs", "-lzstd", "-lpthread"]);
  return binary;
}

/** Repeats `make(tile)` until `INPUT_BYTES`, each tile different so that zstd cannot match whole tiles. */
function tiled(make: (tile: number) => Uint8Array): Uint8Array {
  const out = new Uint8Array(INPUT_BYTES);
  for (let at = 0, tile = 0; at < out.length; tile++) {
    const part = make(tile);
    out.set(part.subarray(0, out.length - at), at);
    at += part.length;
  }
  return out;
}

function laplacianSymbols(scale: number, bits: number, seed: number): Uint8Array {
  const random = new Random(seed);
  const out = new Uint8Array(INPUT_BYTES);
  const mid = 2 ** (bits - 1);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(2 ** bits - 1, Math.round(random.laplacian(scale)) + mid));
  return out;
}

/**
 * The model's matrices quantised per row. Tile t > 0 adds a dither of up to half a step before
 * rounding: about half the symbols change, so zstd cannot match whole tiles, while the statistics
 * stay those of the real weights. (Scaling the weights instead would give identical symbols, since
 * per-row round-to-nearest does not see a common scale.)
 */
function modelSymbols(model: ImportedModel, bits: number): Uint8Array {
  const matrices = model.tensors.filter((t) => t.dtype === "F32" && t.shape.length >= 2).map((t) => ({ values: toFloat32("F32", t.data), shape: t.shape }));
  const levels = 2 ** (bits - 1) - 1;
  return tiled((tile) => {
    const random = new Random(1000 + tile);
    const parts = matrices.map(({ values, shape }) => {
      const cols = shape[shape.length - 1];
      const dithered = Float32Array.from(values);
      if (tile > 0) {
        for (let row = 0; row < values.length / cols; row++) {
          let max = 0;
          for (let j = 0; j < cols; j++) max = Math.max(max, Math.abs(values[row * cols + j]));
          for (let j = 0; j < cols; j++) dithered[row * cols + j] += (random.next() - 0.5) * (max / levels);
        }
      }
      return quantizeRtn(dithered, values.length / cols, cols, { bits }).symbols;
    });
    return concat(parts);
  });
}

/** BF16 exponent planes of the model; tile t > 0 scales each weight by its own factor in [1, 2), so exponents move by 0 or 1. */
function exponentPlanes(model: ImportedModel): Uint8Array {
  const floats = model.tensors.filter((t) => t.dtype === "F32").map((t) => toFloat32("F32", t.data));
  return tiled((tile) => {
    const random = new Random(2000 + tile);
    const parts = floats.map((values) =>
      splitFloatPlanes("BF16", fromFloat32("BF16", tile === 0 ? values : Float32Array.from(values, (v) => v * (1 + random.next()))))[0],
    );
    return concat(parts);
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

function tableLine(k: number, freqs: ArrayLike<number>): string {
  return `${k} ${Array.from({ length: 256 }, (_, s) => freqs[s] ?? 0).join(" ")}\n`;
}

function run(binary: string, label: string, symbols: Uint8Array, forceK?: number): void {
  const counts = histogram(symbols);
  const entropy = entropyBits(counts) / 8;
  const chosen = chooseFreqTable(counts, 8)!.table;
  const k = forceK ?? chosen.k;
  const freqs = forceK ? normalizeFrequencies(counts, forceK) : chosen.freqs;
  const symbolsPath = join(workDir, "symbols.bin");
  const tablePath = join(workDir, "table.txt");
  writeFileSync(symbolsPath, symbols);
  writeFileSync(tablePath, tableLine(k, freqs));
  const env = { ...process.env, QANS_BENCH_ZSTD: forceK === undefined ? "1" : "0" };
  const result = spawnSync(binary, [symbolsPath, tablePath, ...BLOCK_SIZES.map(String)], { encoding: "utf8", maxBuffer: 1 << 24, env });
  if (result.status !== 0) throw new Error(`harness failed on ${label}: ${result.stderr}`);
  printInput(label, k, forceK !== undefined, symbols.length, entropy, parseHarnessOutput(result.stdout));
}

function printInput(label: string, k: number, forced: boolean, size: number, entropy: number, rows: HarnessRow[]): void {
  const memcpy = rows.find((r) => r.codec === "memcpy")!;
  console.log(`\n${label}: ${(size / 2 ** 20).toFixed(0)} MiB, order-0 entropy ${((entropy * 8) / size).toFixed(3)} bits/symbol, QANS k=${k}${forced ? " (fixed)" : " (reference profile's choice)"}`);
  console.log(`memcpy: ${memcpy.decMBs.toFixed(0)} MB/s`);
  const table: string[][] = [];
  for (const block of BLOCK_SIZES) {
    for (const qans of rows.filter((r) => r.codec === "qans" && r.block === block)) {
      const hts = rows.find((r) => r.codec === "htscodecs" && r.block === block && r.level === qans.level)!;
      const two = rows.find((r) => r.codec === "qans-2threads" && r.block === block && r.level === qans.level)!;
      table.push([
        `2^${Math.log2(block)}`,
        qans.level,
        `${((qans.output / entropy - 1) * 100).toFixed(2)}%`,
        `${((hts.output / entropy - 1) * 100).toFixed(2)}%`,
        qans.decMBs.toFixed(0),
        hts.decMBs.toFixed(0),
        (qans.decMBs / hts.decMBs).toFixed(2),
        (qans.decMBs / memcpy.decMBs).toFixed(3),
        (two.decMBs / qans.decMBs).toFixed(2),
        qans.encMBs.toFixed(0),
        hts.encMBs.toFixed(0),
        (qans.encMBs / hts.encMBs).toFixed(2),
      ]);
    }
  }
  console.log(
    formatTable(
      ["block", "level", "QANS over H0", "hts over H0", "QANS dec MB/s", "hts dec MB/s", "dec QANS/hts", "dec QANS/memcpy", "2-thread x", "QANS enc MB/s", "hts enc MB/s", "enc QANS/hts"],
      table,
    ),
  );
  for (const zstd of rows.filter((r) => r.codec.startsWith("zstd"))) {
    console.log(`${zstd.codec}: ${((zstd.output / entropy - 1) * 100).toFixed(2)}% over H0, decode ${zstd.decMBs.toFixed(0)} MB/s, encode ${zstd.encMBs.toFixed(1)} MB/s`);
  }
}

async function main(): Promise<void> {
  ensureLibraries();
  mkdirSync(workDir, { recursive: true });
  const binary = buildHarness();
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(`QANS native kernels vs htscodecs 32x16 (RANS_ORDER_X32 | RANS_ORDER_SIMD_AUTO), zstd and memcpy — ${cpu}, ${cpus().length} cores`);
  console.log("Speeds are MB/s of symbols, one thread unless noted, best of 4 runs, QANS and htscodecs runs alternating; 2-thread x = two threads over halves of the blocks.");
  const demo = await importModel(DEMO_MODEL_PATH);
  // `npm run bench:native -- <word>` runs only the inputs whose label contains the word.
  const only = process.argv[2];
  const inputs: [string, () => Uint8Array, number?][] = [
    ["Laplacian int8 symbols (scale 7.8)", () => laplacianSymbols(7.8, 8, 1)],
    ["Laplacian int8 symbols (scale 7.8)", () => laplacianSymbols(7.8, 8, 1), 12],
    ["Laplacian int4 symbols (scale 1.5)", () => laplacianSymbols(1.5, 4, 2)],
    ["demo model int8 symbols (per-row RTN, dithered tiles)", () => modelSymbols(demo, 8)],
    ["demo model BF16 exponent planes", () => exponentPlanes(demo)],
  ];
  for (const [label, make, k] of inputs) if (!only || label.includes(only)) run(binary, label, make(), k);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
