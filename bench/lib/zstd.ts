import { execFileSync, spawnSync } from "node:child_process";

/** One result of `zstd -b`: sizes in bytes, speeds in MB/s (zstd's MB is 10^6 bytes). */
export interface ZstdBenchResult {
  level: number;
  sourceBytes: number | null;
  compressedBytes: number;
  ratio: number;
  compressMBps: number;
  decompressMBps: number;
}

// zstd 1.5 prints its final result in one of two shapes, depending on the display level:
//   quiet (-q):  "-3      2036447 (1.327) 358.12 MB/s 1116.3 MB/s  file.bin"
//   default:     " 3#file.bin            :   2701756 ->   2036447 (x1.327),  329.0 MB/s,  690.9 MB/s"
// The default shape is redrawn in place with carriage returns while it runs, and only its last
// drawing carries both speeds.
const QUIET_LINE = /^\s*-(\d+)\s+(\d+)\s+\(\s*([\d.]+)\)\s+([\d.]+)\s*MB\/s\s+([\d.]+)\s*MB\/s/;
const VERBOSE_LINE = /^\s*(\d+)#.*?:\s*(\d+)\s*->\s*(\d+)\s*\(x?\s*([\d.]+)\),\s*([\d.]+)\s*MB\/s,\s*([\d.]+)\s*MB\/s/;

/** The last complete result line in the output of `zstd -b`, or null when there is none. */
export function parseZstdBench(output: string): ZstdBenchResult | null {
  let found: ZstdBenchResult | null = null;
  for (const line of output.split(/[\r\n]+/)) {
    const quiet = QUIET_LINE.exec(line);
    if (quiet) {
      found = {
        level: Number(quiet[1]),
        sourceBytes: null,
        compressedBytes: Number(quiet[2]),
        ratio: Number(quiet[3]),
        compressMBps: Number(quiet[4]),
        decompressMBps: Number(quiet[5]),
      };
      continue;
    }
    const verbose = VERBOSE_LINE.exec(line);
    if (verbose) {
      found = {
        level: Number(verbose[1]),
        sourceBytes: Number(verbose[2]),
        compressedBytes: Number(verbose[3]),
        ratio: Number(verbose[4]),
        compressMBps: Number(verbose[5]),
        decompressMBps: Number(verbose[6]),
      };
    }
  }
  return found;
}

function zstdPresent(): boolean {
  const probe = spawnSync("zstd", ["--version"], { stdio: "ignore" });
  return !probe.error && probe.status === 0;
}

function apt(args: string[]): boolean {
  const run = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  return !run.error && run.status === 0;
}

/**
 * Makes sure the `zstd` CLI is on PATH, installing Debian's package when it is not. Returns null
 * when zstd is usable, otherwise the reason it is not.
 */
export function ensureZstd(log: (message: string) => void): string | null {
  if (zstdPresent()) return null;
  log("zstd is not on PATH; installing it with apt-get install -y zstd ...");
  // A fresh machine often has no package lists yet, so a failed install is retried after an update.
  if (!apt(["install", "-y", "zstd"]) && apt(["update"])) apt(["install", "-y", "zstd"]);
  if (zstdPresent()) return null;
  return "could not install zstd (apt-get install -y zstd failed; it needs root and Debian's package lists). Install zstd and rerun to get the zstd rows.";
}

export function zstdVersion(): string {
  const out = execFileSync("zstd", ["--version"], { encoding: "utf8" });
  return /v(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? out.trim();
}

/** Runs zstd's built-in benchmark on one file at one level for at least `seconds` per direction. */
export function zstdBench(file: string, level: number, seconds: number): ZstdBenchResult {
  // -q leaves the one-line summary instead of a display redrawn with carriage returns.
  const run = spawnSync("zstd", ["-q", `-b${level}`, `-i${seconds}`, file], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (run.error) throw run.error;
  const result = parseZstdBench(`${run.stdout}\n${run.stderr}`);
  if (run.status !== 0 || !result) throw new Error(`zstd -b${level} ${file} failed (status ${run.status}): ${run.stderr || run.stdout}`);
  return result;
}

/** Exact size of `zstd -<level> -c file`: a complete frame, header and checksum included. */
export function zstdCompressedSize(file: string, level: number): number {
  const args = level > 19 ? ["--ultra", `-${level}`] : [`-${level}`];
  const out = execFileSync("zstd", [...args, "-q", "-c", file], { maxBuffer: 1 << 30 });
  return out.length;
}
