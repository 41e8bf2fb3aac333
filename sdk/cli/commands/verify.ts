import { isQansError } from "../../errors.js";
import { openSource } from "../../io/open-source.js";
import type { ByteSource } from "../../io/source.js";
import { verifySource, verifyStream, type FileReport } from "../../verify.js";
import { parseCommand } from "../args.js";
import { print, printJson } from "../output.js";
import { ProgressBar } from "../progress.js";

const USAGE = "qans verify <file|url|-> [--json]";

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { json: { type: "boolean", default: false } }, 1, USAGE);
  const path = positionals[0];
  const progress = new ProgressBar("verifying");
  let source: ByteSource | undefined;
  try {
    let report: FileReport;
    if (path === "-") {
      // Standard input, read front to back with the streaming decoder: no index or size needed first.
      report = await verifyStream(process.stdin);
    } else {
      source = await openSource(path);
      report = await verifySource(source, (done, total) => progress.update(done, total));
    }
    progress.done();
    const result = { file: path, valid: true, version: `${report.version.major}.${report.version.minor}`, bytes: report.fileBytes, tensors: report.tensors.length };
    if (values.json) await printJson(result);
    else await print(`${path === "-" ? "stdin" : path}: valid QANS ${result.version}, ${result.tensors} tensors, ${result.bytes} bytes`);
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
  } finally {
    await source?.close();
  }
}
