import { isQansError } from "../errors.js";
import { returnFreedBuffersToSystem } from "../native/addon.js";
import { UsageError } from "./args.js";
import { catCommand } from "./commands/cat.js";
import { conformanceCommand } from "./commands/conformance.js";
import { doctorCommand } from "./commands/doctor.js";
import { evalCommand } from "./commands/eval.js";
import { inspectCommand } from "./commands/inspect.js";
import { packCommand } from "./commands/pack.js";
import { runCommand } from "./commands/run.js";
import { unpackCommand } from "./commands/unpack.js";
import { verifyCommand } from "./commands/verify.js";

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  pack: packCommand,
  unpack: unpackCommand,
  inspect: inspectCommand,
  verify: verifyCommand,
  cat: catCommand,
  doctor: doctorCommand,
  conformance: conformanceCommand,
  run: runCommand,
  eval: evalCommand,
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
  conformance [--decoder "<command>"] [--simd LEVEL|all] [--vectors DIR] [--json]
                                 check a decoder (default: this SDK) against the conformance vectors
  run <file|url> --prompt TEXT [-n N] [--temperature T] [--top-p P] [--seed S] [--tokenizer FILE]
      [--memory-budget BYTES|PCT]
                                 generate text with a Llama model, streamed to stdout
  eval <file|url> --reference <file> [--text FILE | --samples N] [--length L] [--seed S]
      [--tokenizer FILE] [--json]
                                 perplexity, KL divergence and top-1 agreement against a reference

An input of "-" is standard input, decoded front to back as it arrives (verify, inspect, unpack);
"unpack -o -" writes the safetensors to standard output and its summary to standard error.

"pack --shard-size 500MB -o model.qans" writes a sharded model: shards model-00001.qans, ... of at
most that size each, then the set file model.qans. verify, inspect, unpack and cat given a set file
work on the whole model, reading the shards beside it.

"run" samples -n new tokens (default 256) after the prompt, at --temperature 1, --top-p 1 and
--seed 0 unless given; --temperature 0 is greedy. The tokenizer defaults to tok512.bin,
tokenizer.bin or tokenizer.json beside the model. --memory-budget (bytes, or a percentage of the
weights decoded to F32) keeps each int-quant matrix decoded, as int8 symbols or compressed, as a
short calibration predicts is fastest within it, and prints the plan. "eval" by default scores 16
sequences of 128 tokens sampled from the reference at temperature 1, sequence i with seed
1000000 + i.

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
