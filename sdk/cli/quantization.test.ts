import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TINY_LLAMA, writeTinyLlama2c } from "../calibrate/tiny-llama.js";
import { STORIES_PATH } from "../testing/fixtures.js";
import { useTempDir } from "../testing/temp-dir.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-cli-quant-");

function qans(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir(), encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface InspectedTensor {
  name: string;
  encoding: string;
  elements: number;
  storedBytes: number;
  quant?: { bits: number; groupSize: number; inputScale: boolean };
  quantization?: { alpha: number | null; prune: number };
}

function inspectJson(file: string): { tensors: InspectedTensor[]; metadata: { metadata: Record<string, string> } } {
  const inspected = qans("inspect", file, "--json");
  expect(inspected.code, inspected.stderr).toBe(0);
  return JSON.parse(inspected.stdout);
}

beforeAll(() => {
  expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
  // The vocabulary of stories260K's tokenizer, so that a text can calibrate the model.
  const arch = { ...TINY_LLAMA, vocab_size: 512 };
  writeTinyLlama2c(join(dir(), "tiny.bin"), 7, arch);
  copyFileSync(join(dirname(STORIES_PATH), "tok512.bin"), join(dir(), "tok512.bin"));
  mkdirSync(join(dir(), "alone"));
  writeTinyLlama2c(join(dir(), "alone", "tiny.bin"), 7, arch);
});

describe("qans pack with compression-aware quantisation", () => {
  it("--calib samples:N --prune P at an int mode: every matrix pruned, scales where they pay, and inspect shows the setting", () => {
    const packed = qans("pack", "tiny.bin", "-o", "c.qans", "--mode", "int6", "--calib", "samples:3", "--prune", "0.1", "--seed", "4");
    expect(packed.code, packed.stderr).toBe(0);
    const report = inspectJson("c.qans");
    const quantised = report.tensors.filter((t) => t.encoding === "int-quant");
    expect(quantised).toHaveLength(15);
    for (const t of quantised) {
      expect(t.quant).toMatchObject({ bits: 6, groupSize: 0 });
      expect(t.quantization!.prune).toBe(0.1);
      expect(t.quant!.inputScale).toBe(t.quantization!.alpha !== null);
    }
    expect(quantised.some((t) => t.quant!.inputScale)).toBe(true);
    const record = JSON.parse(report.metadata.metadata["qans.quantization"]);
    expect(record.calibration).toMatchObject({ source: "samples", sequences: 3, seed: 4 });

    const text = qans("inspect", "c.qans");
    expect(text.code).toBe(0);
    const scaled = quantised.find((t) => t.quant!.inputScale)!;
    const line = text.stdout.split("\n").find((l) => l.startsWith(`${scaled.name} `))!;
    expect(line).toContain(`int6/row+s a=${scaled.quantization!.alpha} p=0.1`);

    // The same flags and seed give the same file.
    expect(qans("pack", "tiny.bin", "-o", "c2.qans", "--mode", "int6", "--calib", "samples:3", "--prune", "0.1", "--seed", "4").code).toBe(0);
    expect(readFileSync(join(dir(), "c2.qans")).equals(readFileSync(join(dir(), "c.qans")))).toBe(true);
  });

  it("--target-size <x>bpw chooses bits per tensor and meets the target", () => {
    const packed = qans("pack", "tiny.bin", "-o", "t.qans", "--target-size", "9bpw", "--json");
    expect(packed.code, packed.stderr).toBe(0);
    expect(JSON.parse(packed.stdout)).toMatchObject({ mode: "allocated", quantization: { target: { bitsPerWeight: 9 }, seed: 0 } });
    const quantised = inspectJson("t.qans").tensors.filter((t) => t.encoding === "int-quant");
    expect(quantised).toHaveLength(15);
    const bits = quantised.reduce((sum, t) => sum + 8 * t.storedBytes, 0) / quantised.reduce((sum, t) => sum + t.elements, 0);
    expect(bits).toBeLessThanOrEqual(9);
    expect(new Set(quantised.map((t) => t.quant!.bits)).size).toBeGreaterThan(1);
    expect(quantised.every((t) => t.quantization!.alpha === null)).toBe(true);
  });

  it("--calib FILE tokenizes a text with the tokenizer beside the model", () => {
    writeFileSync(join(dir(), "text.txt"), "Once upon a time there was a cat. She liked to play in the sun. ".repeat(20));
    const packed = qans("pack", "tiny.bin", "-o", "f.qans", "--mode", "int8", "--calib", "text.txt");
    expect(packed.code, packed.stderr).toBe(0);
    const record = JSON.parse(inspectJson("f.qans").metadata.metadata["qans.quantization"]);
    expect(record.calibration).toMatchObject({ source: "text" });
    expect(record.calibration.tokens).toBeGreaterThan(64);
    const alone = qans("pack", join("alone", "tiny.bin"), "-o", "g.qans", "--mode", "int8", "--calib", "text.txt");
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain("tokenizer");
    expect(qans("pack", "tiny.bin", "-o", "g.qans", "--mode", "int8", "--calib", "missing.txt").code).toBe(1);
  });

  it("rejects contradictory or malformed flags", () => {
    expect(qans("pack", "tiny.bin", "-o", "x.qans", "--target-size", "5bpw", "--mode", "int4").code).toBe(2);
    expect(qans("pack", "tiny.bin", "-o", "x.qans", "--mode", "int4", "--prune", "0.2", "--asymmetric").code).toBe(2);
    const badPrune = qans("pack", "tiny.bin", "-o", "x.qans", "--mode", "int4", "--prune", "1.5");
    expect(badPrune.code).toBe(1);
    expect(badPrune.stderr).toContain("INVALID_ARGUMENT");
    expect(qans("pack", "tiny.bin", "-o", "x.qans", "--calib", "samples:2").stderr).toContain("int mode");
    expect(qans("pack", "tiny.bin", "-o", "x.qans", "--target-size", "5bpw", "--max-kld", "0.1").code).toBe(1);
    expect(existsSync(join(dir(), "x.qans"))).toBe(false);
  });
});
