import { importModel } from "../../import/detect.js";
import { packToFile, parsePackMode, type PackMode } from "../../pack.js";
import { QansError } from "../../errors.js";
import { UsageError, parseCommand, parseInteger } from "../args.js";
import { formatBytes, print, printJson } from "../output.js";
import { ProgressBar } from "../progress.js";

const USAGE = "qans pack <input> -o <out.qans> [--mode lossless|int8|int4|int<b>] [--group N] [--block-size N] [--json]";

export async function packCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      output: { type: "string", short: "o" },
      mode: { type: "string", default: "lossless" },
      group: { type: "string" },
      "block-size": { type: "string" },
      asymmetric: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    1,
    USAGE,
  );
  if (!values.output) throw new UsageError(`-o <out.qans> is required\nusage: ${USAGE}`);
  const mode = values.mode as PackMode;
  parsePackMode(mode);
  const groupSize = parseInteger(values.group, "--group", 0, 2 ** 24);
  const blockSize = parseInteger(values["block-size"], "--block-size", 4096, 1 << 20);
  const log2Block = blockSize === undefined ? undefined : log2Exact(blockSize);
  const started = Date.now();
  const model = await importModel(positionals[0]);
  const progress = new ProgressBar("packing");
  const result = await packToFile(model, values.output, {
    mode,
    groupSize,
    log2Block,
    asymmetric: values.asymmetric,
    onTensor: (done, total) => progress.update(done, total),
  });
  progress.done();
  const inputBytes = model.tensors.reduce((sum, t) => sum + t.data.length, 0);
  const summary = { input: positionals[0], output: values.output, mode, tensors: result.tensors, inputBytes, outputBytes: result.bytes, ratio: inputBytes / result.bytes, seconds: (Date.now() - started) / 1000 };
  if (values.json) await printJson(summary);
  else await print(`packed ${result.tensors} tensors: ${formatBytes(inputBytes)} -> ${formatBytes(result.bytes)} (${summary.ratio.toFixed(3)}x) in ${summary.seconds.toFixed(1)} s`);
  return 0;
}

function log2Exact(value: number): number {
  const log2 = Math.log2(value);
  if (!Number.isInteger(log2)) throw new QansError("INVALID_ARGUMENT", `--block-size must be a power of two, got ${value}`);
  return log2;
}
