import { summarizeReport, type TensorSummary } from "../../inspect.js";
import { verifyModel, verifyStream, type FileReport } from "../../verify.js";
import { parseCommand } from "../args.js";
import { formatBytes, formatTable, print, printJson } from "../output.js";
import { ProgressBar } from "../progress.js";

const USAGE = "qans inspect <file|set file|url|-> [--json]";

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { json: { type: "boolean", default: false } }, 1, USAGE);
  const path = positionals[0];
  const progress = new ProgressBar("inspecting");
  try {
    // "-" is standard input, read front to back with the streaming decoder; a set file is inspected with its shards.
    const report: FileReport = path === "-" ? await verifyStream(process.stdin) : await verifyModel(path, (done, total) => progress.update(done, total));
    progress.done();
    const summary = summarizeReport(report);
    if (values.json) {
      await printJson({ file: path, metadata: report.metadata, ...summary, ...(report.shards ? { shards: report.shards } : {}) });
      return 0;
    }
    const rows = summary.tensors.map((t) => [
      t.name,
      t.dtype,
      `[${t.shape.join(",")}]`,
      describeEncoding(t),
      t.storedBytes,
      t.bitsPerWeight.toFixed(3),
      t.elements ? ((t.entropyBytes * 8) / t.elements).toFixed(3) : "-",
      t.overheadPct === null ? "-" : `${t.overheadPct.toFixed(2)}%`,
    ]);
    const totals = summary.totals;
    await print(
      [
        `${path === "-" ? "stdin" : path}: QANS ${summary.version}${report.shards ? ` set of ${report.shards.length} shards` : ""}, ${formatBytes(summary.fileBytes)}`,
        formatTable(["tensor", "dtype", "shape", "encoding", "bytes", "bits/w", "H0 bits/w", "overhead"], rows),
        `total: ${totals.tensors} tensors, ${totals.elements} elements, ${totals.bitsPerWeight.toFixed(3)} bits/weight, ` +
          `overhead against order-0 entropy ${totals.overheadPct === null ? "-" : `${totals.overheadPct.toFixed(2)}%`}`,
      ].join("\n"),
    );
    return 0;
  } finally {
    progress.done();
  }
}

function describeEncoding(t: TensorSummary): string {
  if (!t.quant) return t.encoding;
  const q = t.quant;
  const recorded = t.quantization ? ` a=${t.quantization.alpha ?? "-"} p=${t.quantization.prune}${t.quantization.rounding === "compensated" ? " compensated" : ""}` : "";
  return `int${q.bits}${q.asymmetric ? "a" : ""}/${q.groupSize ? `g${q.groupSize}` : "row"}${q.inputScale ? "+s" : ""}${recorded}`;
}
