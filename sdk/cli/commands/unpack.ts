import { unpackStreamToSafetensors, unpackToSafetensors } from "../../unpack.js";
import { UsageError, parseCommand } from "../args.js";
import { formatBytes, print } from "../output.js";

const USAGE = "qans unpack <in.qans|url|-> -o <out.safetensors|-> [--json]";

export async function unpackCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { output: { type: "string", short: "o" }, json: { type: "boolean", default: false } }, 1, USAGE);
  if (!values.output) throw new UsageError(`-o <out.safetensors> is required\nusage: ${USAGE}`);
  const input = positionals[0];
  const toStdout = values.output === "-";
  const output = toStdout ? process.stdout : values.output;
  // "-" as input is standard input, read front to back with the streaming decoder.
  const result = input === "-" ? await unpackStreamToSafetensors(process.stdin, output) : await unpackToSafetensors(input, output);
  // With the safetensors on standard output, the summary goes to standard error.
  const report = toStdout ? (text: string) => writeStderr(text) : print;
  if (values.json) await report(JSON.stringify({ input, output: values.output, ...result }, null, 2));
  else await report(`unpacked ${result.tensors} tensors to ${toStdout ? "stdout" : values.output} (${formatBytes(result.bytes)})`);
  return 0;
}

function writeStderr(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stderr.write(`${text}\n`, (error) => (error ? reject(error) : resolve()));
  });
}
