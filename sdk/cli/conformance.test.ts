import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { availableSimdLevels } from "../conformance/sdk-decoder.js";
import { ORACLE_DECODER, repositoryManifest, writeVectorSubset } from "../conformance/testing.js";
import { useTempDir } from "../testing/temp-dir.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-cli-conformance-", { each: true });

function qans(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir(), encoding: "utf8", timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A subset of the vectors in the test's directory, and an oracle decoder command answering in `mode`. */
function setUp(mode: string): string {
  writeVectorSubset(dir(), ["shapes.qans", "set-single/set-single.qans"], ["bad-magic.qans", "checksum-block.qans", "set-llama/missing-shard.qans"]);
  writeFileSync(join(dir(), "oracle.mjs"), ORACLE_DECODER);
  return `node oracle.mjs ${mode}`;
}

beforeAll(() => {
  expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
});

describe("qans conformance", () => {
  it("finds the package's own vectors and passes them on TypeScript and the native codec", () => {
    const level = availableSimdLevels()[0];
    const result = qans("conformance", ...(level ? ["--simd", level] : []));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const count = repositoryManifest().valid.length + repositoryManifest().invalid.length;
    const lines = result.stdout.split("\n");
    expect(lines).toContain(`typescript: ${count} passed, 0 failed, of ${count} vectors`);
    if (level) expect(lines).toContain(`native ${level}: ${count} passed, 0 failed, of ${count} vectors`);
    expect(lines.filter((line) => /^typescript {2}(valid|invalid)\/\S+ +pass$/.test(line))).toHaveLength(count);
    expect(lines.at(-2)).toBe("all vectors passed");
  });

  it("reports a decoder that gives wrong codes: a FAIL row per vector with expected and got, a summary, exit 1", () => {
    const result = qans("conformance", "--decoder", setUp("wrong-code"), "--vectors", ".");
    expect(result.code, result.stderr).toBe(1);
    const rows = [
      ["valid/shapes.qans", "pass"],
      ["valid/set-single/set-single.qans", "pass"],
      ["invalid/bad-magic.qans", "FAIL  expected BAD_MAGIC; got TRUNCATED"],
      ["invalid/checksum-block.qans", "FAIL  expected CHECKSUM_MISMATCH; got BAD_MAGIC"],
      ["invalid/set-llama/missing-shard.qans", "FAIL  expected IO_ERROR; got BAD_MAGIC"],
    ];
    const width = Math.max(...rows.map(([vector]) => vector.length));
    expect(result.stdout).toBe(
      [
        ...rows.map(([vector, outcome]) => `node oracle.mjs wrong-code  ${vector.padEnd(width)}  ${outcome}`),
        "node oracle.mjs wrong-code: 2 passed, 3 failed, of 5 vectors",
        "some vectors FAILED",
        "",
      ].join("\n"),
    );
  });

  it("passes a decoder that answers as the protocol says, with exit 0", () => {
    const result = qans("conformance", "--decoder", setUp("right"), "--vectors", ".");
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout.trimEnd().split("\n").slice(-2)).toEqual(["node oracle.mjs right: 5 passed, 0 failed, of 5 vectors", "all vectors passed"]);
  });

  it("--json reports every vector of a decoder that prints garbage", () => {
    const result = qans("conformance", "--decoder", setUp("garbage"), "--vectors", ".", "--json");
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ directory: dir(), vectors: 5, passed: false, notes: [] });
    expect(report.decoders).toHaveLength(1);
    expect(report.decoders[0]).toMatchObject({ decoder: "node oracle.mjs garbage", passed: 0, failed: 5 });
    expect(report.decoders[0].results[2]).toEqual({
      vector: "invalid/bad-magic.qans",
      passed: false,
      expected: "BAD_MAGIC",
      got: "printed a line that is not JSON: this is not JSON",
    });
  });

  it("stops a decoder that hangs after --timeout seconds and fails the vector", () => {
    writeVectorSubset(dir(), ["no-tensors.qans"], []);
    writeFileSync(join(dir(), "oracle.mjs"), ORACLE_DECODER);
    const result = qans("conformance", "--decoder", "node oracle.mjs hang", "--vectors", ".", "--timeout", "1");
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/valid\/no-tensors\.qans {2}FAIL {2}expected accepted, with the manifest's hashes; got no answer within 1 s; stopped/);
  });

  it("refuses options that do not go together, and vectors that are not there", () => {
    expect(qans("conformance", "--decoder", "x", "--simd", "all").code).toBe(2);
    expect(qans("conformance", "--simd", "sse2").code).toBe(2);
    expect(qans("conformance", "--timeout", "5").code).toBe(2);
    const missing = qans("conformance", "--vectors", "nowhere");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^qans: IO_ERROR: /);
  });
});
