import { importModel, openModelTensors } from "../../import/detect.js";
import { readSafetensorsStream } from "../../import/safetensors-stream.js";
import { StreamSink } from "../../io/stream-sink.js";
import { largeTensorBytes, packModel, packStream, packStreamToFile, packToFile, parsePackMode, type PackMode, type PackResult, type PackStreamOptions } from "../../pack.js";
import { packModelSharded, packStreamSharded, type ShardedPackResult } from "../../pack-set.js";
import { QansError } from "../../errors.js";
import { UsageError, parseByteSize, parseCommand, parseInteger } from "../args.js";
import { formatBytes, print } from "../output.js";
import { ProgressBar } from "../progress.js";
import type { PlannedModel } from "../../calibrate/apply.js";
import { parseQuantizationFlags, planFromFlags, type QuantizationFlags } from "../../calibrate/pack-flags.js";

const USAGE =
  "qans pack <input|-> -o <out.qans|-> [--mode lossless|int8|int4|int<b>] [--group N] [--block-size N] [--asymmetric] [--shard-size SIZE] [--json]\n" +
  "       [--calib FILE|samples:N] [--prune P] [--target-size BYTES|<x>bpw | --max-kld X] [--seed S]";

/** The path that means standard input (as the input) or standard output (as the output). */
const STDIO = "-";

export async function packCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      output: { type: "string", short: "o" },
      mode: { type: "string" },
      group: { type: "string" },
      "block-size": { type: "string" },
      asymmetric: { type: "boolean", default: false },
      "shard-size": { type: "string" },
      json: { type: "boolean", default: false },
      calib: { type: "string" },
      prune: { type: "string" },
      "target-size": { type: "string" },
      "max-kld": { type: "string" },
      seed: { type: "string" },
    },
    1,
    USAGE,
  );
  if (!values.output) throw new UsageError(`-o <out.qans> is required\nusage: ${USAGE}`);
  const input = positionals[0];
  const output = values.output;
  // Binary data is never read from or written to a terminal: that is almost surely a mistake.
  if (input === STDIO && process.stdin.isTTY) throw new UsageError(`input "-" reads safetensors from standard input, which is a terminal\nusage: ${USAGE}`);
  if (output === STDIO && process.stdout.isTTY) throw new UsageError(`-o - writes the packed file to standard output, which is a terminal\nusage: ${USAGE}`);
  if (values["shard-size"] !== undefined && output === STDIO) {
    throw new UsageError(`--shard-size writes a set file and shard files beside it, so it needs -o <base>.qans, not -o -\nusage: ${USAGE}`);
  }
  if (values["shard-size"] !== undefined && !output.endsWith(".qans")) {
    throw new UsageError(`--shard-size names the set file <base>.qans and its shards <base>-00001.qans, ...: -o must end in .qans\nusage: ${USAGE}`);
  }
  const shardBytes = parseByteSize(values["shard-size"], "--shard-size");
  const mode = (values.mode ?? "lossless") as PackMode;
  parsePackMode(mode);
  const quantization = parseQuantizationFlags(values, (text) => parseByteSize(text, "--target-size")!);
  if (quantization && input === STDIO) throw new UsageError(`--calib, --prune, --target-size and --max-kld need the whole model: give a file, not "-"\nusage: ${USAGE}`);
  if (quantization && values.asymmetric) throw new UsageError(`compression-aware quantisation is symmetric: drop --asymmetric\nusage: ${USAGE}`);
  if (quantization?.target && (values.mode !== undefined || values.group !== undefined)) {
    throw new UsageError(`--target-size and --max-kld choose each tensor's bit width and group size: drop --mode and --group\nusage: ${USAGE}`);
  }
  const groupSize = parseInteger(values.group, "--group", 0, 2 ** 24);
  const blockSize = parseInteger(values["block-size"], "--block-size", 4096, 1 << 20);
  const log2Block = blockSize === undefined ? undefined : log2Exact(blockSize);
  const started = Date.now();
  const progress = new ProgressBar("packing");
  const options: PackStreamOptions = {
    mode,
    groupSize,
    log2Block,
    asymmetric: values.asymmetric,
    onTensor: (done, total) => progress.update(done, total),
  };

  let result: PackResult | ShardedPackResult;
  if (shardBytes !== undefined) result = input === STDIO ? await packStandardInputSharded(output, { ...options, shardBytes }) : await packPathSharded(input, output, { ...options, shardBytes }, quantization);
  else result = input === STDIO ? await packStandardInput(output, options) : await packPath(input, output, options, quantization);
  progress.done();
  const shards = "shards" in result ? result.shards.map((shard) => ({ file: shard.file, bytes: shard.bytes, tensors: shard.tensors.length })) : undefined;
  const summary = {
    input,
    output,
    // With a target the plan chose each tensor's bit width, so no one mode describes the file.
    mode: quantization?.target ? "allocated" : mode,
    ...(quantization ? { quantization } : {}),
    tensors: result.tensors,
    inputBytes: result.inputBytes,
    outputBytes: result.bytes,
    ratio: result.inputBytes / result.bytes,
    seconds: (Date.now() - started) / 1000,
    ...(shards ? { shards } : {}),
  };
  const where = shards ? ` in a set file and ${shards.length} shard${shards.length === 1 ? "" : "s"}` : "";
  const text = values.json
    ? JSON.stringify(summary, null, 2)
    : `packed ${result.tensors} tensors${where}: ${formatBytes(result.inputBytes)} -> ${formatBytes(result.bytes)} (${summary.ratio.toFixed(3)}x) in ${summary.seconds.toFixed(1)} s`;
  // With -o -, standard output carries the packed file, so the summary goes to stderr.
  if (output === STDIO) await writeStderr(text);
  else await print(text);
  return 0;
}

/**
 * A safetensors file on standard input, packed as it arrives: one tensor in memory at a time.
 * With an output file, it is written atomically; with -o -, straight through to standard output.
 */
async function packStandardInput(output: string, options: PackStreamOptions): Promise<PackResult> {
  const stream = await readSafetensorsStream(process.stdin, { name: "standard input" });
  try {
    const metadata = { metadata: stream.header.metadata };
    const streamOptions = { ...options, tensorCount: stream.header.tensors.length };
    if (output !== STDIO) return await packStreamToFile(stream.tensors, metadata, output, streamOptions);
    return await toStandardOutput((sink) => packStream(stream.tensors, metadata, sink, streamOptions));
  } finally {
    await stream.close();
  }
}

/** A model file or folder (every format `importModel` knows), to a file or standard output; imported whole only when quantisation is planned over the whole model. */
async function packPath(input: string, output: string, options: PackStreamOptions, quantization: QuantizationFlags | null): Promise<PackResult> {
  if (quantization === null) return packPathStreamed(input, output, options);
  const { model, encodingsFor } = await importPlanned(input, options, quantization);
  options = { ...options, encodingsFor };
  if (output !== STDIO) return packToFile(model, output, options);
  return toStandardOutput((sink) => packModel(model, sink, options));
}

/**
 * A model file or folder read a tensor at a time (`openModelTensors`): tensors above the large
 * tensor size are read from the file twice, histograms then blocks, and never held.
 */
async function packPathStreamed(input: string, output: string, options: PackStreamOptions): Promise<PackResult> {
  const model = await openModelTensors(input, { wholeBytes: largeTensorBytes(options), onConfigProblem: warnConfigProblem });
  try {
    const streamOptions = { ...options, tensorCount: model.count };
    if (output !== STDIO) return await packStreamToFile(model.tensors(), model, output, streamOptions);
    return await toStandardOutput((sink) => packStream(model.tensors(), model, sink, streamOptions));
  } finally {
    await model.close();
  }
}

/** As `packStandardInput`, into a set file and its shards (spec §16.3). */
async function packStandardInputSharded(output: string, options: PackStreamOptions & { shardBytes: number }): Promise<ShardedPackResult> {
  const stream = await readSafetensorsStream(process.stdin, { name: "standard input" });
  try {
    return await packStreamSharded(stream.tensors, { metadata: stream.header.metadata }, output, { ...options, tensorCount: stream.header.tensors.length });
  } finally {
    await stream.close();
  }
}

/** As `packPath`, into a set file and its shards (spec §16.3). */
async function packPathSharded(input: string, output: string, options: PackStreamOptions & { shardBytes: number }, quantization: QuantizationFlags | null): Promise<ShardedPackResult> {
  const { model, encodingsFor } = await importPlanned(input, options, quantization);
  return packModelSharded(model, output, { ...options, encodingsFor });
}

/** The model at `input`, with the compression-aware quantisation the flags ask for planned and applied (sdk/calibrate). */
async function importPlanned(input: string, options: PackStreamOptions, quantization: QuantizationFlags | null): Promise<Pick<PlannedModel, "model"> & { encodingsFor?: PlannedModel["encodingsFor"] }> {
  const model = await importModel(input, { onConfigProblem: warnConfigProblem });
  if (quantization === null) return { model };
  const { bits } = parsePackMode(options.mode ?? "lossless");
  return planFromFlags(model, input, quantization, { bits, groupSize: options.groupSize ?? 0, log2Block: options.log2Block }, (message) => {
    if (process.stderr.isTTY) process.stderr.write(`${message}\n`);
  });
}

/**
 * A Llama config.json beside the weights that the decoder cannot run does not stop packing: the
 * weights are packed without an architecture record, and stderr says why.
 */
function warnConfigProblem(problem: QansError): void {
  process.stderr.write(`qans: warning: ${problem.code}: ${problem.message}; packing without a model-architecture record, so qans run and qans eval cannot run the file\n`);
}

/** Writes through a sink on standard output and waits until every byte was handed to it. */
async function toStandardOutput(pack: (sink: StreamSink) => Promise<PackResult>): Promise<PackResult> {
  // Not ended: standard output belongs to the process, and the exit flushes it.
  const sink = new StreamSink(process.stdout, { name: "standard output", end: false });
  const result = await pack(sink);
  await sink.end();
  return result;
}

function writeStderr(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stderr.write(`${text}\n`, (error) => (error ? reject(error) : resolve()));
  });
}

function log2Exact(value: number): number {
  const log2 = Math.log2(value);
  if (!Number.isInteger(log2)) throw new QansError("INVALID_ARGUMENT", `--block-size must be a power of two, got ${value}`);
  return log2;
}
