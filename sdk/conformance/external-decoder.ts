import { spawn } from "node:child_process";
import { QansError } from "../errors.js";
import type { Decoder } from "./decoder.js";
import { expectation, failed, judgeInvalid, judgeValid, type DecodedTensor, type DecoderAnswer, type Verdict } from "./judge.js";
import type { VectorCase } from "./manifest.js";

/**
 * Another implementation as a decoder under test, run as a command once per vector (the protocol
 * of conformance/README.md): the vector's absolute path is appended to the command's words; the
 * command must print exactly one JSON line on stdout, `{"tensors":[...]}` when it accepts the
 * vector or `{"error":"CODE"}` when it rejects it, and exit 0. Anything else fails the vector.
 */

/** Vectors an external decoder runs at once. */
export const EXTERNAL_CONCURRENCY = 2;
export const DEFAULT_TIMEOUT_SECONDS = 60;

/** An answer's stdout is one short line per tensor; more than this is not an answer. */
const MAX_STDOUT_BYTES = 16 * 1024 * 1024;
/** What is kept of stderr, for the report of a failure. */
const MAX_STDERR_BYTES = 4096;

/**
 * Splits a command into words as a shell would, kept simple: words are separated by whitespace,
 * and double quotes group words with spaces (the quotes themselves are removed). Nothing else is
 * special. INVALID_ARGUMENT for an empty command or an unterminated quote.
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quoted = false;
  for (const char of command) {
    if (char === '"') {
      quoted = !quoted;
      word ??= "";
    } else if (!quoted && /\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + char;
    }
  }
  if (quoted) throw new QansError("INVALID_ARGUMENT", `decoder command ${JSON.stringify(command)} has an unterminated double quote`);
  if (word !== undefined) words.push(word);
  if (words.length === 0) throw new QansError("INVALID_ARGUMENT", "the decoder command is empty");
  return words;
}

interface Finished {
  /** Exit status, or null when the process ended on a signal or never ran. */
  status: number | null;
  stdout: Buffer;
  stderr: string;
  /** Why it produced no answer at all: it could not start, timed out, or printed too much. */
  problem?: string;
}

/** Runs `words` with `path` appended; settles when it exits, or kills it (and its process group) on timeout. */
function runCommand(words: string[], path: string, timeoutMs: number): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(words[0], [...words.slice(1), path], { stdio: ["ignore", "pipe", "pipe"], detached: process.platform !== "win32" });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = "";
    let settled = false;
    const finish = (result: Finished) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    // A decoder that hangs, or that a child of it keeps alive, is ended with everything it started.
    const kill = () => {
      try {
        if (child.pid !== undefined && process.platform !== "win32") process.kill(-child.pid, "SIGKILL");
        else child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const timer = setTimeout(() => {
      kill();
      finish({ status: null, stdout: Buffer.alloc(0), stderr, problem: `no answer within ${timeoutMs / 1000} s; stopped` });
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_STDOUT_BYTES) {
        kill();
        finish({ status: null, stdout: Buffer.alloc(0), stderr, problem: `more than ${MAX_STDOUT_BYTES} bytes on stdout; stopped` });
      } else stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR_BYTES) stderr = (stderr + chunk.toString("utf8")).slice(0, MAX_STDERR_BYTES);
    });
    child.on("error", (error) => finish({ status: null, stdout: Buffer.alloc(0), stderr, problem: `cannot run ${words[0]}: ${error.message}` }));
    child.on("close", (status, signal) =>
      finish({ status, stdout: Buffer.concat(stdout), stderr, ...(signal ? { problem: `ended by signal ${signal}` } : {}) }),
    );
  });
}

const isString = (value: unknown): value is string => typeof value === "string";

function asTensor(value: unknown): DecodedTensor | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { name, sha256, symbols_sha256, f32_sha256 } = value as Record<string, unknown>;
  if (!isString(name) || !isString(sha256) || !Array.isArray(symbols_sha256) || !symbols_sha256.every(isString)) return undefined;
  if (f32_sha256 !== undefined && !isString(f32_sha256)) return undefined;
  return { name, sha256, symbols_sha256, ...(f32_sha256 === undefined ? {} : { f32_sha256 }) };
}

/** The answer printed on stdout, or why it is not one. */
export function parseAnswer(stdout: string): DecoderAnswer | string {
  const text = stdout.endsWith("\r\n") ? stdout.slice(0, -2) : stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
  if (text.length === 0) return "printed nothing on stdout";
  if (/[\r\n]/.test(text)) return "printed more than one line on stdout";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `printed a line that is not JSON: ${text.slice(0, 200)}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return `printed JSON that is not an object: ${text.slice(0, 200)}`;
  const answer = value as Record<string, unknown>;
  if ("error" in answer && !("tensors" in answer)) {
    if (!isString(answer.error)) return '"error" is not a string';
    return { error: answer.error, ...(isString(answer.message) ? { message: answer.message } : {}) };
  }
  if ("tensors" in answer && !("error" in answer) && Array.isArray(answer.tensors)) {
    const tensors = answer.tensors.map(asTensor);
    const bad = tensors.findIndex((tensor) => tensor === undefined);
    if (bad >= 0) return `tensor ${bad} of the answer lacks a string "name" or "sha256", or an array of strings "symbols_sha256"`;
    return { tensors: tensors as DecodedTensor[] };
  }
  return 'printed an object with neither "tensors" (an array) nor "error", or with both';
}

/** The verdict on one run of the external decoder. */
function verdictOf(vector: VectorCase, finished: Finished): Verdict {
  const expected = expectation(vector.kind, vector.entry);
  const stderr = finished.stderr.trim() ? ` (stderr: ${finished.stderr.trim().split("\n").slice(-3).join(" | ")})` : "";
  if (finished.problem) return failed(expected, `${finished.problem}${stderr}`);
  if (finished.status !== 0) return failed(expected, `exit status ${finished.status}${stderr}`);
  const answer = parseAnswer(finished.stdout.toString("utf8"));
  if (typeof answer === "string") return failed(expected, answer);
  return vector.kind === "valid" ? judgeValid(vector.entry, answer) : judgeInvalid(vector.entry, answer);
}

/** An external decoder: `command` is split by `splitCommand`; each vector gets `timeoutSeconds`. */
export function externalDecoder(command: string, timeoutSeconds = DEFAULT_TIMEOUT_SECONDS): Decoder {
  const words = splitCommand(command);
  if (!(timeoutSeconds > 0)) throw new QansError("INVALID_ARGUMENT", `the timeout must be positive, got ${timeoutSeconds}`);
  return {
    name: command,
    concurrency: EXTERNAL_CONCURRENCY,
    run: async (vector) => verdictOf(vector, await runCommand(words, vector.path, timeoutSeconds * 1000)),
  };
}
