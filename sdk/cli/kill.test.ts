import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { gaussianTensor, sameBytes } from "../testing/fixtures.js";
import { Random } from "../testing/random.js";
import { safetensorsBytes } from "../testing/safetensors-bytes.js";
import { useTempDir } from "../testing/temp-dir.js";

/**
 * Write safety of `qans pack -o <dest>` against SIGKILL: the process is killed at 20 points in time,
 * from its start to its end, with and without a previous complete file at the destination. Since
 * the file is written under a temporary name and renamed over the destination (sdk/io/atomic-file.ts),
 * the destination must afterwards be absent or a complete file, the previous one or the new one,
 * never a prefix; what is left besides it is only hidden temporary files of the killed process.
 */

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-kill-");
const SEED = 0x6b696c6c;
const KILLS = 20;
/** Of the kills, these many wait for the temporary file to be complete and then kill within a few ms: the rename window. */
const RENAME_WINDOW_KILLS = 6;

/** Paths: the input, the two complete files, and the directory the killed packs write into. */
const paths = () => ({
  input: join(dir(), "model.safetensors"),
  previous: join(dir(), "previous.qans"),
  complete: join(dir(), "complete.qans"),
  work: join(dir(), "work"),
  dest: join(dir(), "work", "model.qans"),
});

/** A safetensors model of 32 MB of F32 weights, which `qans pack` takes about a second to pack losslessly. */
function writeInput(path: string): void {
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i < 8; i++) {
    const tensor = gaussianTensor(`model.layers.${i}.weight`, [3906, 256], 100 + i);
    header[tensor.name] = { dtype: "F32", shape: tensor.shape, data_offsets: [offset, offset + tensor.data.length] };
    parts.push(tensor.data);
    offset += tensor.data.length;
  }
  const data = new Uint8Array(offset);
  parts.reduce((at, part) => (data.set(part, at), at + part.length), 0);
  writeFileSync(path, safetensorsBytes(header, data));
}

function qans(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: result.status, stderr: result.stderr };
}

interface Ending {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** A `qans pack` process, and how it ends (with its standard error, for messages). */
function startPack(input: string, dest: string, mode: string): { child: ChildProcess; ended: Promise<Ending> } {
  const child = spawn(process.execPath, [CLI, "pack", input, "-o", dest, "--mode", mode], { stdio: ["ignore", "ignore", "pipe"] });
  const errors: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (text: string) => errors.push(text));
  const ended = new Promise<Ending>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stderr: errors.join("") })));
  return { child, ended };
}

/** The temporary file AtomicFileSink names for `dest` in process `pid`: hidden, beside the destination. */
function isTempOf(name: string, pid: number): boolean {
  return new RegExp(`^\\.model\\.qans\\.qans-tmp-${pid}-[0-9a-f]{16}$`).test(name);
}

/** Polls (every event-loop turn) until the process's temporary file holds `length` bytes or the process exits. */
async function untilTempComplete(child: ChildProcess, work: string, length: number): Promise<void> {
  while (child.exitCode === null && child.signalCode === null) {
    const temp = readdirSync(work).find((name) => isTempOf(name, child.pid!));
    if (temp !== undefined) {
      try {
        if (statSync(join(work, temp)).size >= length) return;
      } catch {
        // Renamed away between the listing and the stat: the process is committing.
        return;
      }
    }
    await nextTurn();
  }
}

type Stage = "before its temporary file" | "writing" | "temporary file complete" | "after the rename";

interface Kill {
  at: string;
  previous: boolean;
  stage: Stage;
}

describe("qans pack killed with SIGKILL", () => {
  let complete: Uint8Array;
  let previous: Uint8Array;
  let duration: number;

  beforeAll(async () => {
    expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
    const { input, complete: completePath, previous: previousPath, work } = paths();
    writeInput(input);
    mkdirSync(work);
    // The file a pack that is not killed writes, and how long that takes, start to exit.
    const started = performance.now();
    const run = await startPack(input, completePath, "lossless").ended;
    duration = performance.now() - started;
    expect(run).toEqual({ code: 0, signal: null, stderr: "" });
    // The previous file is of another mode, so that the old and the new file differ.
    expect(qans("pack", input, "-o", previousPath, "--mode", "int8").code).toBe(0);
    for (const path of [completePath, previousPath]) {
      const verified = qans("verify", path);
      expect(verified.code, verified.stderr).toBe(0);
    }
    complete = readFileSync(completePath);
    previous = readFileSync(previousPath);
    expect(sameBytes(complete, previous)).toBe(false);
  }, 120_000);

  it(`leaves the destination absent or complete, whenever the kill lands (${KILLS} kills)`, async () => {
    const { input, previous: previousPath, work, dest } = paths();
    const random = new Random(SEED);
    const kills: Kill[] = [];
    for (let i = 0; i < KILLS; i++) {
      const withPrevious = i % 2 === 1;
      rmSync(dest, { force: true });
      if (withPrevious) copyFileSync(previousPath, dest);
      // Time-based kills spread over [0, duration) (one per equal slice, at a seeded point in it);
      // the others kill 0 to 2 ms after the temporary file reached its full length.
      const timed = i < KILLS - RENAME_WINDOW_KILLS;
      const fraction = (i + random.next()) / (KILLS - RENAME_WINDOW_KILLS);
      const delay = timed ? fraction * duration : 2 * random.next();
      const { child, ended } = startPack(input, dest, "lossless");
      if (timed) await new Promise((resolve) => setTimeout(resolve, delay));
      else {
        await untilTempComplete(child, work, complete.length);
        const until = performance.now() + delay;
        while (performance.now() < until);
      }
      child.kill("SIGKILL");
      const end = await ended;
      const at = timed ? `${delay.toFixed(0)} ms of ${duration.toFixed(0)}` : `${delay.toFixed(2)} ms after the temporary file was complete`;
      const label = `kill ${i} (${at}, ${withPrevious ? "with" : "without"} a previous file)`;
      // Either killed, or it had already finished.
      expect(end.signal === "SIGKILL" || end.code === 0, `${label}: exit ${JSON.stringify(end)}`).toBe(true);

      const leftovers = readdirSync(work).filter((name) => name !== "model.qans");
      for (const name of leftovers) expect(isTempOf(name, child.pid!), `${label}: unexpected file ${name}`).toBe(true);
      expect(leftovers.length, label).toBeLessThanOrEqual(1);
      const temp = leftovers.length === 1 ? readFileSync(join(work, leftovers[0])) : undefined;
      const destination = existsSync(dest) ? readFileSync(dest) : undefined;
      if (destination === undefined) {
        expect(withPrevious, `${label}: the previous file is gone`).toBe(false);
      } else {
        const isNew = sameBytes(destination, complete);
        expect(isNew || (withPrevious && sameBytes(destination, previous)), `${label}: the destination (${destination.length} bytes) is neither the previous nor the new complete file`).toBe(true);
      }
      const replaced = destination !== undefined && sameBytes(destination, complete);
      const stage: Stage = replaced ? "after the rename" : temp === undefined ? "before its temporary file" : temp.length === complete.length ? "temporary file complete" : "writing";
      if (temp !== undefined) {
        // The temporary file is a prefix of the new file: never the destination, never read as it.
        expect(sameBytes(temp, complete.subarray(0, temp.length)), `${label}: the temporary file is not a prefix of the new file`).toBe(true);
        rmSync(join(work, leftovers[0]));
      }
      kills.push({ at, previous: withPrevious, stage });
    }
    // The kills spread over the run: some landed while the file was being written.
    expect(kills.some((kill) => kill.stage === "writing"), JSON.stringify(kills, null, 1)).toBe(true);
    // A pack after all these kills completes and gives the new file.
    rmSync(dest, { force: true });
    expect(await startPack(input, dest, "lossless").ended).toEqual({ code: 0, signal: null, stderr: "" });
    expect(sameBytes(readFileSync(dest), complete)).toBe(true);
    expect(readdirSync(work)).toEqual(["model.qans"]);
  }, 300_000);
});
