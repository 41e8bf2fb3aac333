import { spawn } from "node:child_process";
import { createReadStream, existsSync, openSync, closeSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSafetensors } from "../export/safetensors.js";
import { importModel } from "../import/detect.js";
import { STORIES_PATH, sameBytes } from "../testing/fixtures.js";
import { useTempDir } from "../testing/temp-dir.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-cli-stream-");

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs the built CLI without blocking this process. `stdin` is piped from a file as `cat` would,
 * given as a file descriptor (a redirect, `< file`), or left empty.
 */
function qans(args: string[], stdin: { pipeFrom?: string; redirectFrom?: string; bytes?: Uint8Array } = {}, onStdout?: (child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const fd = stdin.redirectFrom === undefined ? undefined : openSync(stdin.redirectFrom, "r");
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir(), stdio: [fd ?? "pipe", "pipe", "pipe"] });
    if (fd !== undefined) closeSync(fd);
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    onStdout?.(child);
    if (child.stdin) {
      // The CLI may stop reading early (on a bad header); what it leaves unread is not an error here.
      child.stdin.on("error", () => undefined);
      if (stdin.pipeFrom !== undefined) createReadStream(stdin.pipeFrom, { highWaterMark: 16 * 1024 }).pipe(child.stdin);
      else child.stdin.end(stdin.bytes ?? new Uint8Array(0));
    }
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr }));
  });
}

const MODES = [[], ["--mode", "int8"], ["--mode", "int4", "--group", "32"], ["--mode", "int4", "--asymmetric", "--block-size", "4096"]].map((options) => ({
  options,
  label: options.join(" ") || "(lossless)",
}));

describe("qans pack with standard input and output", () => {
  let model: string;

  beforeAll(async () => {
    expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
    const stories = await importModel(STORIES_PATH);
    model = join(dir(), "stories.safetensors");
    await writeSafetensors(model, stories.tensors, stories.metadata);
  });

  it.each(MODES)("cat model.safetensors | qans pack - -o - $label gives the file-to-file bytes", async ({ options }) => {
    const name = `file${options.join("")}.qans`;
    const fromFile = await qans(["pack", model, "-o", name, ...options]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const expected = await readFile(join(dir(), name));

    const piped = await qans(["pack", "-", "-o", "-", ...options], { pipeFrom: model });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout.length).toBe(expected.length);
    expect(sameBytes(piped.stdout, expected)).toBe(true);
    // The summary goes to stderr, stdout carrying the file.
    expect(piped.stderr).toMatch(/^packed 47 tensors: /);
  });

  it("packs standard input to a file, and a file to standard output, with the same bytes", async () => {
    const expected = await qans(["pack", model, "-o", "expected.qans", "--mode", "int8"]);
    expect(expected.code, expected.stderr).toBe(0);
    const bytes = await readFile(join(dir(), "expected.qans"));

    const toFile = await qans(["pack", "-", "-o", "from-stdin.qans", "--mode", "int8", "--json"], { pipeFrom: model });
    expect(toFile.code, toFile.stderr).toBe(0);
    expect(sameBytes(await readFile(join(dir(), "from-stdin.qans")), bytes)).toBe(true);
    expect(JSON.parse(toFile.stdout.toString("utf8"))).toMatchObject({ input: "-", output: "from-stdin.qans", tensors: 47, outputBytes: bytes.length });

    const redirected = await qans(["pack", "-", "-o", "-", "--mode", "int8", "--json"], { redirectFrom: model });
    expect(redirected.code, redirected.stderr).toBe(0);
    expect(sameBytes(redirected.stdout, bytes)).toBe(true);
    expect(JSON.parse(redirected.stderr)).toMatchObject({ input: "-", output: "-", mode: "int8", outputBytes: bytes.length });

    const toStdout = await qans(["pack", model, "-o", "-", "--mode", "int8"]);
    expect(toStdout.code, toStdout.stderr).toBe(0);
    expect(sameBytes(toStdout.stdout, bytes)).toBe(true);
  });

  it("fails with the importer's code on bad input and leaves no file, not even a temporary one", async () => {
    const bytes = await readFile(model);
    await writeFile(join(dir(), "cut.safetensors"), bytes.subarray(0, bytes.length - 1000));
    const before = await readdir(dir());
    const truncated = await qans(["pack", "-", "-o", "never.qans"], { pipeFrom: join(dir(), "cut.safetensors") });
    expect(truncated.code).toBe(1);
    expect(truncated.stderr).toMatch(/^qans: TRUNCATED: standard input: tensor ".*" needs bytes/);
    expect(await readdir(dir())).toEqual(before);

    const llama2c = await qans(["pack", "-", "-o", "-"], { pipeFrom: STORIES_PATH });
    expect(llama2c.code).toBe(1);
    expect(llama2c.stderr).toMatch(/^qans: (LIMIT_EXCEEDED|BAD_INPUT|TRUNCATED): standard input/);

    const empty = await qans(["pack", "-", "-o", "-"], { bytes: new Uint8Array(0) });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^qans: TRUNCATED: standard input: input ended after 0 bytes/);
    expect(await readdir(dir())).toEqual(before);
  });

  it("stops with IO_ERROR when the reader of standard output goes away", async () => {
    const run = await qans(["pack", "-", "-o", "-"], { pipeFrom: model }, (child) => {
      child.stdout!.once("data", () => child.stdout!.destroy());
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^qans: IO_ERROR: writing standard output/);
  });
});
