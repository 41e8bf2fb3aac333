import { isQansError } from "../errors.js";
import { returnFreedBuffersToSystem } from "../native/addon.js";
import { UsageError } from "./args.js";
import { catCommand } from "./commands/cat.js";
import { doctorCommand } from "./commands/doctor.js";
import { inspectCommand } from "./commands/inspect.js";
import { packCommand } from "./commands/pack.js";
import { unpackCommand } from "./commands/unpack.js";
import { verifyCommand } from "./commands/verify.js";

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  pack: packCommand,
  unpack: unpackCommand,
  inspect: inspectCommand,
  verify: verifyCommand,
  cat: catCommand,
  doctor: doctorCommand,
};

const HELP = `qans: quantized, entropy-coded model weights

usage: qans <command> [options]

commands:
  pack <input|-> -o <out.qans|-> pack safetensors (- reads stdin), a llama2.c .bin or a TF.js model.json
  unpack <in.qans|url|-> -o <out> write the tensors back as safetensors
  inspect <file|url> [--json]    per-tensor sizes, bits per weight and entropy overhead
  verify <file|url> [--json]     check every checksum and decode everything
  cat <file|url> <tensor> [--format raw|npy|f32]
                                 write one tensor to stdout
  doctor [--json]                native codec status and the instruction sets it uses

An input of "-" is standard input, decoded front to back as it arrives (verify, inspect, unpack);
"unpack -o -" writes the safetensors to standard output and its summary to standard error.

"pack --shard-size 500MB -o model.qans" writes a sharded model: shards model-00001.qans, ... of at
most that size each, then the set file model.qans. verify, inspect, unpack and cat given a set file
work on the whole model, reading the shards beside it.

Errors print "qans: <CODE>: <message>" and exit 1; usage errors exit 2.`;

/** Runs the CLI and returns its exit code. Errors become `qans: CODE: message` on stderr. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(`${HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`qans: unknown command "${name}"\n${HELP}\n`);
    return 2;
  }
  // The CLI streams models through one process, which it owns: see there.
  returnFreedBuffersToSystem();
  try {
    return await command(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`qans: ${error.message}\n`);
      return 2;
    }
    if (isQansError(error)) {
      process.stderr.write(`qans: ${error.code}: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`qans: INTERNAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 70;
  }
}
