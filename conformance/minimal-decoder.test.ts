// The minimal Python decoder (conformance/minimal-decoder/qans_decode.py), written from the spec
// alone, against every conformance vector; and the reader's guide, whose code excerpts must be
// the decoder's own regions, verbatim.
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import type { Manifest, ManifestTensor } from "./vectors.js";

const here = new URL(".", import.meta.url);
const DECODER = fileURLToPath(new URL("minimal-decoder/qans_decode.py", here));
const READER_GUIDE = fileURLToPath(new URL("../docs/writing-a-reader.md", here));
const manifest = JSON.parse(readFileSync(new URL("manifest.json", here), "utf8")) as Manifest;

/** Decoder processes at a time: the machines that run this have two cores. */
const PARALLEL_RUNS = 2;
const RUN_TIMEOUT_MS = 60_000;

interface DecoderOutput {
  tensors?: { name: string; sha256: string; symbols_sha256: string[]; f32_sha256?: string }[];
  error?: string;
  message?: string;
}

/** The decoder's parsed output, or why it broke its protocol (one JSON line on stdout, exit 0). */
type DecoderRun = { output: DecoderOutput } | { failure: string };

function runDecoder(path: string): Promise<DecoderRun> {
  return new Promise((resolve) => {
    execFile("python3", [DECODER, path], { timeout: RUN_TIMEOUT_MS, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const why = error.killed ? `timed out after ${RUN_TIMEOUT_MS} ms` : `exited with ${error.code ?? error.signal}`;
        resolve({ failure: `${why}\n${stderr}` });
      } else if (!stdout.endsWith("\n") || stdout.indexOf("\n") !== stdout.length - 1) {
        resolve({ failure: `stdout is not exactly one line: ${JSON.stringify(stdout.slice(0, 500))}` });
      } else {
        try {
          resolve({ output: JSON.parse(stdout) as DecoderOutput });
        } catch {
          resolve({ failure: `stdout is not JSON: ${stdout.slice(0, 500)}` });
        }
      }
    });
  });
}

/** Runs `task` over `items` with at most `limit` running at once; results in input order. */
async function mapWithLimit<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const vectorPath = (kind: "valid" | "invalid", file: string) => fileURLToPath(new URL(`vectors/${kind}/${file}`, here));

/** The manifest's tensor entry as the decoder reports it: the fields the protocol defines. */
function expectedOutput(tensor: ManifestTensor) {
  const { name, sha256, symbols_sha256, f32_sha256 } = tensor;
  return f32_sha256 === undefined ? { name, sha256, symbols_sha256 } : { name, sha256, symbols_sha256, f32_sha256 };
}

describe("the minimal Python decoder", () => {
  const runs = new Map<string, DecoderRun>();
  /** Set when python3 cannot be run: every test then fails with it (CI installs python3). */
  let missingPython: Error | undefined;

  beforeAll(async () => {
    try {
      execFileSync("python3", ["--version"], { stdio: "pipe" });
    } catch (error) {
      missingPython = new Error(
        `python3 is required to check conformance/minimal-decoder/qans_decode.py and could not be run ` +
          `(${(error as Error).message}); install Python 3.11 or later`,
      );
      return;
    }
    const jobs = [
      ...manifest.valid.map((v) => ({ key: `valid/${v.file}`, path: vectorPath("valid", v.file) })),
      ...manifest.invalid.map((v) => ({ key: `invalid/${v.file}`, path: vectorPath("invalid", v.file) })),
    ];
    const results = await mapWithLimit(jobs, PARALLEL_RUNS, (job) => runDecoder(job.path));
    jobs.forEach((job, i) => runs.set(job.key, results[i]));
  }, 900_000);

  const outputOf = (key: string): DecoderOutput => {
    if (missingPython) throw missingPython;
    const run = runs.get(key);
    if (run === undefined) throw new Error(`${key} was not run`);
    if ("failure" in run) throw new Error(`the decoder failed on ${key}: ${run.failure}`);
    return run.output;
  };

  it.each(manifest.valid)("decodes valid/$file to the manifest's tensors and hashes", (vector) => {
    const output = outputOf(`valid/${vector.file}`);
    expect(output.error, output.message).toBeUndefined();
    expect(output.tensors).toEqual(vector.tensors.map(expectedOutput));
  });

  it.each(manifest.invalid)("rejects invalid/$file with $code", (vector) => {
    const output = outputOf(`invalid/${vector.file}`);
    expect(output.tensors).toBeUndefined();
    expect(output.error, output.message).toBe(vector.code);
  });
});

// ---------------------------------------------------------------------------------------------
// docs/writing-a-reader.md quotes qans_decode.py: each ```python block is preceded by
// <!-- region: NAME --> and must equal the lines between `# region: NAME` and `# endregion`.

function decoderRegions(source: string): Map<string, string> {
  const regions = new Map<string, string>();
  let open: { name: string; lines: string[] } | undefined;
  for (const [number, line] of source.split("\n").entries()) {
    const start = /^# region: ([\w-]+)$/.exec(line);
    if (start) {
      if (open) throw new Error(`line ${number + 1}: region ${start[1]} starts inside region ${open.name}`);
      if (regions.has(start[1])) throw new Error(`line ${number + 1}: region ${start[1]} is defined twice`);
      open = { name: start[1], lines: [] };
    } else if (line === "# endregion") {
      if (!open) throw new Error(`line ${number + 1}: # endregion without a region`);
      regions.set(open.name, open.lines.join("\n"));
      open = undefined;
    } else if (open) {
      open.lines.push(line);
    }
  }
  if (open) throw new Error(`region ${open.name} has no # endregion`);
  return regions;
}

function guideExcerpts(markdown: string): { name: string | undefined; code: string }[] {
  const excerpts: { name: string | undefined; code: string }[] = [];
  const block = /(?:<!-- region: ([\w-]+) -->\n)?```python\n([\s\S]*?)\n```/g;
  for (const match of markdown.matchAll(block)) excerpts.push({ name: match[1], code: match[2] });
  return excerpts;
}

describe("docs/writing-a-reader.md", () => {
  const regions = decoderRegions(readFileSync(DECODER, "utf8"));
  const excerpts = guideExcerpts(readFileSync(READER_GUIDE, "utf8"));

  it("quotes qans_decode.py only through named regions, each verbatim", () => {
    expect(excerpts.length).toBeGreaterThan(0);
    for (const [i, { name, code }] of excerpts.entries()) {
      expect(name, `python block ${i + 1} has no <!-- region: NAME --> marker`).toBeDefined();
      expect(regions.has(name!), `region ${name} does not exist in qans_decode.py`).toBe(true);
      expect(code, `region ${name}`).toBe(regions.get(name!));
    }
  });

  it("quotes every region of qans_decode.py", () => {
    const quoted = new Set(excerpts.map((e) => e.name));
    expect([...regions.keys()].filter((name) => !quoted.has(name))).toEqual([]);
  });
});
