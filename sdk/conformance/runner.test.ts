import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDir } from "../testing/temp-dir.js";
import { externalDecoder, parseAnswer, splitCommand } from "./external-decoder.js";
import { runConformance } from "./runner.js";
import { availableSimdLevels, sdkDecoders } from "./sdk-decoder.js";
import { CONFORMANCE_DIR, ORACLE_DECODER, repositoryManifest, writeVectorSubset } from "./testing.js";

const dir = useTempDir("qans-conformance-", { each: true });

/** A set (with shards), a file without tensors, tensors of every kind; a file-header defect and a missing shard. */
const VALID = ["shapes.qans", "no-tensors.qans", "set-single/set-single.qans"];
const INVALID = ["bad-magic.qans", "set-llama/missing-shard.qans"];

function oracle(): string {
  // A folder with a space in its name, so the command needs quotes.
  const folder = join(dir(), "the decoder");
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "oracle.mjs"), ORACLE_DECODER);
  return `"${process.execPath}" "${join(folder, "oracle.mjs")}"`;
}

describe("the SDK's decoders", () => {
  it("pass every vector on TypeScript and on the native codec at every level the CPU supports", async () => {
    const manifest = repositoryManifest();
    const report = await runConformance({ directory: CONFORMANCE_DIR, decoders: sdkDecoders("all") });
    expect(report.decoders.map((d) => d.decoder)).toEqual(["typescript", ...availableSimdLevels().map((level) => `native ${level}`)]);
    for (const decoder of report.decoders) {
      expect(decoder.results.filter((r) => !r.passed), decoder.decoder).toEqual([]);
      expect(decoder.passed).toBe(manifest.valid.length + manifest.invalid.length);
    }
    expect(report.passed).toBe(true);
  });

  it("fail a vector whose manifest entry says something else than the file holds", async () => {
    writeVectorSubset(dir(), ["shapes.qans"], ["bad-magic.qans", "checksum-block.qans"], (manifest) => {
      manifest.valid[0].tensors[1].symbols_sha256[0] = "1".repeat(64);
      manifest.invalid[0].code = "TRUNCATED";
    });
    const [typescript] = (await runConformance({ directory: dir(), decoders: sdkDecoders([]) })).decoders;
    expect(typescript.results).toEqual([
      {
        vector: "valid/shapes.qans",
        passed: false,
        expected: "accepted, with the manifest's hashes",
        got: expect.stringMatching(/^tensor "scalar.planes": stream 0 symbols_sha256 [0-9a-f]{64}, expected 1{64}$/),
      },
      { vector: "invalid/bad-magic.qans", passed: false, expected: "TRUNCATED", got: expect.stringMatching(/^BAD_MAGIC: /) },
      { vector: "invalid/checksum-block.qans", passed: true, expected: "CHECKSUM_MISMATCH", got: "CHECKSUM_MISMATCH" },
    ]);
  });

  it("fail an invalid vector that the random-access reader must reject but reads", async () => {
    writeVectorSubset(dir(), [], ["bad-magic.qans"], (manifest) => {
      manifest.invalid[0].detected_by_random_access = true;
    });
    const [typescript] = (await runConformance({ directory: dir(), decoders: sdkDecoders([]) })).decoders;
    expect(typescript.results[0]).toMatchObject({ passed: false, got: "the full verifier gives BAD_MAGIC, but the random-access reader reads every tensor" });
  });
});

describe("an external decoder", () => {
  const run = async (mode: string, timeout?: number) => {
    writeVectorSubset(dir(), VALID, INVALID);
    const [decoder] = (await runConformance({ directory: dir(), decoders: [externalDecoder(`${oracle()} ${mode}`, timeout)] })).decoders;
    return decoder;
  };

  it("passes when it answers as the protocol says, sets and missing shards included", async () => {
    const report = await run("right");
    expect(report.results.map((r) => [r.vector, r.passed])).toEqual([
      ["valid/shapes.qans", true],
      ["valid/no-tensors.qans", true],
      ["valid/set-single/set-single.qans", true],
      ["invalid/bad-magic.qans", true],
      ["invalid/set-llama/missing-shard.qans", true],
    ]);
    expect(report.decoder).toContain("oracle.mjs");
  });

  it("fails a valid vector decoded to a wrong hash, and only those", async () => {
    const report = await run("wrong-hash");
    expect(report.results.filter((r) => !r.passed).map((r) => [r.vector, r.got])).toEqual([
      ["valid/shapes.qans", expect.stringMatching(/^tensor "scalar.raw": sha256 0{64}, expected [0-9a-f]{64}$/)],
      ["valid/set-single/set-single.qans", expect.stringMatching(/^tensor "poids.é": sha256 0{64}, expected /)],
    ]);
  });

  it("fails an invalid vector rejected with another code", async () => {
    const report = await run("wrong-code");
    expect(report.results.filter((r) => !r.passed)).toEqual([
      { vector: "invalid/bad-magic.qans", passed: false, expected: "BAD_MAGIC", got: "TRUNCATED" },
      { vector: "invalid/set-llama/missing-shard.qans", passed: false, expected: "IO_ERROR", got: "BAD_MAGIC" },
    ]);
  });

  it.each([
    ["garbage", /^printed a line that is not JSON: this is not JSON$/],
    ["two-lines", /^printed more than one line on stdout$/],
    ["exit-1", /^exit status 1$/],
  ])("fails every vector when it breaks the protocol (%s)", async (mode, got) => {
    const report = await run(mode);
    expect(report.failed).toBe(VALID.length + INVALID.length);
    for (const result of report.results) expect(result.got).toMatch(got);
  });

  it("fails a vector it does not answer within the timeout, and stops it", async () => {
    writeVectorSubset(dir(), ["no-tensors.qans"], []);
    const started = Date.now();
    const [report] = (await runConformance({ directory: dir(), decoders: [externalDecoder(`${oracle()} hang`, 1)] })).decoders;
    expect(report.results[0]).toMatchObject({ passed: false, got: "no answer within 1 s; stopped (stderr: thinking)" });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("fails every vector when the command cannot be run", async () => {
    writeVectorSubset(dir(), ["no-tensors.qans"], []);
    const [report] = (await runConformance({ directory: dir(), decoders: [externalDecoder(join(dir(), "no-such-decoder"))] })).decoders;
    expect(report.results[0].got).toMatch(/^cannot run .*no-such-decoder: .*ENOENT/);
  });
});

describe("splitCommand", () => {
  it("splits on whitespace and groups double-quoted words, dropping the quotes", () => {
    expect(splitCommand('python3  conformance/qans_decode.py\t--fast')).toEqual(["python3", "conformance/qans_decode.py", "--fast"]);
    expect(splitCommand('"/opt/my decoder/bin" --name="a b" ""')).toEqual(["/opt/my decoder/bin", "--name=a b", ""]);
  });

  it("refuses an empty command and an unterminated quote", () => {
    expect(() => splitCommand("  ")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => splitCommand('decode "x')).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});

describe("parseAnswer", () => {
  it("reads one JSON line with tensors or an error", () => {
    expect(parseAnswer('{"tensors":[{"name":"a","sha256":"x","symbols_sha256":["y"],"f32_sha256":"z"}]}\n')).toEqual({
      tensors: [{ name: "a", sha256: "x", symbols_sha256: ["y"], f32_sha256: "z" }],
    });
    expect(parseAnswer('{"error":"BAD_MAGIC","message":"not QANS"}\r\n')).toEqual({ error: "BAD_MAGIC", message: "not QANS" });
  });

  it("says why anything else is not an answer", () => {
    expect(parseAnswer("")).toBe("printed nothing on stdout");
    expect(parseAnswer("[1]\n")).toMatch(/not an object/);
    expect(parseAnswer('{"error":5}')).toBe('"error" is not a string');
    expect(parseAnswer('{"tensors":[{"name":"a","sha256":"x"}]}')).toMatch(/^tensor 0 of the answer lacks/);
    expect(parseAnswer('{"tensors":[],"error":"BAD_MAGIC"}')).toMatch(/neither "tensors" \(an array\) nor "error", or with both/);
  });
});
