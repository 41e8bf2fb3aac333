import { isQansError } from "../../errors.js";
import { verifyModel, verifyStream, type FileReport } from "../../verify.js";
import { parseCommand } from "../args.js";
import { print, printJson } from "../output.js";
import { ProgressBar } from "../progress.js";

const USAGE = "qans verify <file|set file|url|-> [--json]";

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { json: { type: "boolean", default: false } }, 1, USAGE);
  const path = positionals[0];
  const progress = new ProgressBar("verifying");
  try {
    let report: FileReport;
    if (path === "-") {
      // Standard input, read front to back with the streaming decoder: no index or size needed first.
      report = await verifyStream(process.stdin);
    } else {
      // A set file is verified with every shard it names (spec §16.2).
      report = await verifyModel(path, (done, total) => progress.update(done, total));
    }
    progress.done();
    const shards = report.shards?.length;
    const result = {
      file: path,
      valid: true,
      version: `${report.version.major}.${report.version.minor}`,
      bytes: report.fileBytes,
      tensors: report.tensors.length,
      ...(shards === undefined ? {} : { shards }),
    };
    if (values.json) await printJson(result);
    else {
      const named = report.metadata.shards?.length;
      // From standard input a set file is checked alone: its shards are found only from its location.
      const kind =
        shards !== undefined ? ` set of ${shards} shard${shards === 1 ? "" : "s"}` : named !== undefined ? ` set file naming ${named} shard${named === 1 ? "" : "s"}, not read` : "";
      await print(`${path === "-" ? "stdin" : path}: valid QANS ${result.version}${kind}, ${result.tensors} tensors, ${result.bytes} bytes`);
    }
    return 0;
  } catch (error) {
    progress.done();
    // The JSON document reports invalid files too; other callers get the error on stderr from main.
    if (values.json && isQansError(error)) {
      await printJson({ file: path, valid: false, code: error.code, message: error.message });
      process.stderr.write(`qans: ${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
