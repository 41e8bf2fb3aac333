import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { importModel } from "../import/detect.js";
import { importSafetensors } from "../import/safetensors.js";
import { QansReader } from "../reader.js";
import { STORIES_PATH, sha256 } from "../testing/fixtures.js";
import { codeOf } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { parseByteSize } from "./args.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-cli-shard-");

function qans(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir(), encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
});

describe("--shard-size", () => {
  it("takes bytes with an optional K, M, G (powers of 1000) or KiB, MiB, GiB", () => {
    expect(parseByteSize("1", "--shard-size")).toBe(1);
    expect(parseByteSize("300000", "--shard-size")).toBe(300_000);
    expect(parseByteSize("500MB", "--shard-size")).toBe(500_000_000);
    expect(parseByteSize("500M", "--shard-size")).toBe(500_000_000);
    expect(parseByteSize("2g", "--shard-size")).toBe(2_000_000_000);
    expect(parseByteSize("64k", "--shard-size")).toBe(64_000);
    expect(parseByteSize("64KiB", "--shard-size")).toBe(65_536);
    expect(parseByteSize("1GiB", "--shard-size")).toBe(2 ** 30);
    expect(parseByteSize("10B", "--shard-size")).toBe(10);
    expect(parseByteSize(undefined, "--shard-size")).toBeUndefined();
    for (const bad of ["", "0", "0MB", "-1", "1.5G", "1e6", "10XB", "MB", "1 TB", "99999999999999999999"]) {
      expect(codeOf(() => parseByteSize(bad, "--shard-size")), bad).toBe("INVALID_ARGUMENT");
    }
  });
});

describe("qans pack --shard-size, then verify, inspect, unpack and cat of the set", () => {
  it("packs stories260K into a set file and 3 shards, and the set works as the whole model", async () => {
    const packed = qans("pack", STORIES_PATH, "-o", "s.qans", "--shard-size", "300K", "--json");
    expect(packed.code, packed.stderr).toBe(0);
    const summary = JSON.parse(packed.stdout);
    expect(summary).toMatchObject({ tensors: 47, output: "s.qans" });
    expect(summary.shards.map((s: { file: string }) => s.file)).toEqual(["s-00001.qans", "s-00002.qans", "s-00003.qans"]);
    expect(readdirSync(dir()).sort()).toEqual(["s-00001.qans", "s-00002.qans", "s-00003.qans", "s.qans"]);
    const sizes = ["s.qans", "s-00001.qans", "s-00002.qans", "s-00003.qans"].map((f) => readFileSync(join(dir(), f)).length);
    expect(summary.outputBytes).toBe(sizes.reduce((a, b) => a + b, 0));
    for (const size of sizes.slice(1)) expect(size).toBeLessThanOrEqual(300_000);

    const text = qans("pack", STORIES_PATH, "-o", "t.qans", "--shard-size", "300K");
    expect(text.stdout).toMatch(/^packed 47 tensors in a set file and 3 shards: /);

    const verified = qans("verify", "s.qans", "--json");
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toEqual({ file: "s.qans", valid: true, version: "1.2", bytes: summary.outputBytes, tensors: 47, shards: 3 });
    expect(qans("verify", "s.qans").stdout).toBe(`s.qans: valid QANS 1.2 set of 3 shards, 47 tensors, ${summary.outputBytes} bytes\n`);
    // A shard alone is a valid QANS file.
    expect(qans("verify", "s-00002.qans").code).toBe(0);

    const inspected = qans("inspect", "s.qans", "--json");
    expect(inspected.code, inspected.stderr).toBe(0);
    const report = JSON.parse(inspected.stdout);
    expect(report.totals.tensors).toBe(47);
    expect(report.fileBytes).toBe(summary.outputBytes);
    expect(report.shards).toHaveLength(3);
    expect(qans("inspect", "s.qans").stdout).toMatch(/^s\.qans: QANS 1\.2 set of 3 shards, /);

    const unpacked = qans("unpack", "s.qans", "-o", "s.safetensors");
    expect(unpacked.code, unpacked.stderr).toBe(0);
    const original = await importModel(STORIES_PATH);
    const exported = await importSafetensors(join(dir(), "s.safetensors"));
    expect(exported.tensors.map((t) => t.name)).toEqual(original.tensors.map((t) => t.name));
    for (const [i, tensor] of exported.tensors.entries()) expect(sha256(tensor.data), tensor.name).toBe(sha256(original.tensors[i].data));
    expect(exported.metadata).toEqual(original.metadata);

    const last = original.tensors.at(-1)!;
    const cat = spawnSync(process.execPath, [CLI, "cat", "s.qans", last.name], { cwd: dir() });
    expect(cat.status, String(cat.stderr)).toBe(0);
    expect(sha256(new Uint8Array(cat.stdout))).toBe(sha256(last.data));

    // From standard input, a set file is read alone: valid, but its shards cannot be found.
    const setBytes = readFileSync(join(dir(), "s.qans"));
    const streamed = spawnSync(process.execPath, [CLI, "verify", "-"], { cwd: dir(), input: setBytes, encoding: "utf8" });
    expect(streamed.status, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe(`stdin: valid QANS 1.2 set file naming 3 shards, not read, 0 tensors, ${setBytes.length} bytes\n`);
    const unpackStdin = spawnSync(process.execPath, [CLI, "unpack", "-", "-o", "stdin.safetensors"], { cwd: dir(), input: setBytes, encoding: "utf8" });
    expect(unpackStdin.status).toBe(1);
    expect(unpackStdin.stderr).toMatch(/^qans: INVALID_ARGUMENT: the input is a set file/);
    expect(existsSync(join(dir(), "stdin.safetensors"))).toBe(false);

    // The set file read as a plain file has no tensors.
    const plain = await QansReader.openLocation(join(dir(), "s.qans"));
    expect(plain.entries).toHaveLength(0);
    await plain.close();

    rmSync(join(dir(), "s-00002.qans"));
    const missing = qans("verify", "s.qans");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^qans: IO_ERROR: .*s-00002\.qans/);
    const unpackMissing = qans("unpack", "s.qans", "-o", "m.safetensors");
    expect(unpackMissing.code).toBe(1);
    expect(existsSync(join(dir(), "m.safetensors"))).toBe(false);
  });

  it("packs standard input into a set", () => {
    const safetensors = join(dir(), "in.safetensors");
    expect(qans("pack", STORIES_PATH, "-o", "plain.qans").code).toBe(0);
    expect(qans("unpack", "plain.qans", "-o", "in.safetensors").code).toBe(0);
    const piped = spawnSync(process.execPath, [CLI, "pack", "-", "-o", "p.qans", "--shard-size", "200000"], { cwd: dir(), input: readFileSync(safetensors) });
    expect(piped.status, String(piped.stderr)).toBe(0);
    expect(readdirSync(dir()).filter((f) => /^p-\d{5}\.qans$/.test(f)).length).toBeGreaterThanOrEqual(4);
    const verified = qans("verify", "p.qans", "--json");
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ tensors: 47 });
  });

  it("refuses -o - and an output not ending in .qans with --shard-size (exit 2), and a bad size (exit 1)", () => {
    const toStdout = spawnSync(process.execPath, [CLI, "pack", STORIES_PATH, "-o", "-", "--shard-size", "1M"], { cwd: dir(), encoding: "utf8" });
    expect(toStdout.status).toBe(2);
    expect(toStdout.stderr).toMatch(/--shard-size .* not -o -/);
    expect(toStdout.stdout).toBe("");
    expect(qans("pack", STORIES_PATH, "-o", "model", "--shard-size", "1M").code).toBe(2);
    const bad = qans("pack", STORIES_PATH, "-o", "z.qans", "--shard-size", "lots");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^qans: INVALID_ARGUMENT: --shard-size/);
    expect(readdirSync(dir()).filter((f) => f.startsWith("z") || f.startsWith("model"))).toEqual([]);
  });
});
