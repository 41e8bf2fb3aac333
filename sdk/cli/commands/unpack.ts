import { unpackToSafetensors } from "../../unpack.js";
import { UsageError, parseCommand } from "../args.js";
import { formatBytes, print, printJson } from "../output.js";

const USAGE = "qans unpack <in.qans> -o <out.safetensors> [--json]";

export async function unpackCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { output: { type: "string", short: "o" }, json: { type: "boolean", default: false } }, 1, USAGE);
  if (!values.output) throw new UsageError(`-o <out.safetensors> is required\nusage: ${USAGE}`);
  const result = await unpackToSafetensors(positionals[0], values.output);
  if (values.json) await printJson({ input: positionals[0], output: values.output, ...result });
  else await print(`unpacked ${result.tensors} tensors to ${values.output} (${formatBytes(result.bytes)})`);
  return 0;
}
