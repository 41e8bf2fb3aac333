import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { importSafetensors } from "../import/safetensors.js";
import { importModel } from "../import/detect.js";
import { QansReader } from "../reader.js";
import { MemorySource } from "../io/source.js";
import { STORIES_PATH, gaussianTensor, sha256, writeToMemory } from "../testing/fixtures.js";
import { TestHttpServer } from "../testing/http-server.js";
import { useTempDir } from "../testing/temp-dir.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const dir = useTempDir("qans-cli-");

function qans(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir(), encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
});

describe("qans pack / verify / inspect / unpack", () => {
  it("packs stories260K lossless and unpacks it bit-exactly to safetensors", async () => {
    const packed = qans("pack", STORIES_PATH, "-o", "s.qans", "--json");
    expect(packed.code, packed.stderr).toBe(0);
    const summary = JSON.parse(packed.stdout);
    expect(summary).toMatchObject({ mode: "lossless", tensors: 47, output: "s.qans" });
    expect(summary.outputBytes).toBe(readFileSync(join(dir(), "s.qans")).length);

    const verified = qans("verify", "s.qans", "--json");
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, version: "1.2", tensors: 47 });

    const unpacked = qans("unpack", "s.qans", "-o", "s.safetensors");
    expect(unpacked.code, unpacked.stderr).toBe(0);
    const original = await importModel(STORIES_PATH);
    const exported = await importSafetensors(join(dir(), "s.safetensors"));
    expect(exported.tensors.map((t) => t.name)).toEqual(original.tensors.map((t) => t.name));
    for (const [i, tensor] of exported.tensors.entries()) expect(sha256(tensor.data)).toBe(sha256(original.tensors[i].data));
  });

  it("inspect --json reports per-tensor sizes, entropy and overhead that add up", () => {
    expect(qans("pack", STORIES_PATH, "-o", "s8.qans", "--mode", "int8").code).toBe(0);
    const inspected = qans("inspect", "s8.qans", "--json");
    expect(inspected.code, inspected.stderr).toBe(0);
    const report = JSON.parse(inspected.stdout);
    const fileBytes = readFileSync(join(dir(), "s8.qans")).length;
    expect(report.fileBytes).toBe(fileBytes);
    expect(report.metadata.architecture).toMatchObject({ family: "llama", dim: 64, n_layers: 5 });
    const embed = report.tensors.find((t: { name: string }) => t.name === "model.embed_tokens.weight");
    expect(embed).toMatchObject({ encoding: "int-quant", elements: 32768, quant: { bits: 8, groupSize: 0 } });
    expect(embed.bitsPerWeight).toBeCloseTo((embed.storedBytes * 8) / 32768, 10);
    expect(embed.overheadPct).toBeCloseTo((embed.codedBytes / embed.entropyBytes - 1) * 100, 10);
    // Everything but the file header, metadata frame and trailer belongs to some tensor.
    const attributed = report.tensors.reduce((sum: number, t: { storedBytes: number }) => sum + t.storedBytes, 0);
    expect(attributed).toBeLessThan(fileBytes);
    expect(fileBytes - attributed).toBeLessThan(2048);
    const text = qans("inspect", "s8.qans");
    expect(text.stdout).toContain("model.embed_tokens.weight");
    expect(text.stdout).toMatch(/total: 47 tensors/);
  });

  it("writes dequantized tensors of the original dtype when unpacking an int4 file", async () => {
    expect(qans("pack", STORIES_PATH, "-o", "s4.qans", "--mode", "int4", "--group", "32").code).toBe(0);
    expect(qans("unpack", "s4.qans", "-o", "s4.safetensors").code).toBe(0);
    const exported = await importSafetensors(join(dir(), "s4.safetensors"));
    const reader = await QansReader.openLocation(join(dir(), "s4.qans"));
    const wq = exported.tensors.find((t) => t.name === "model.layers.0.self_attn.q_proj.weight")!;
    expect(wq.dtype).toBe("F32");
    expect(new Float32Array(wq.data.slice().buffer)).toEqual(await reader.readFloat32(wq.name));
    await reader.close();
  });
});

describe("URLs", () => {
  /** As `qans`, without blocking this process's event loop, which serves the test server. */
  function qansAsync(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { cwd: dir(), encoding: "utf8" }, (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  it("verify, inspect and unpack read a file over HTTP with range requests", async () => {
    const bytes = await writeToMemory([{ tensor: gaussianTensor("w", [32, 64], 3), encoding: { encoding: "int-quant", bits: 4 } }], { log2Block: 12 });
    const server = await TestHttpServer.start(bytes);
    try {
      const verified = await qansAsync("verify", server.url(), "--json");
      expect(verified.code, verified.stderr).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, tensors: 1, bytes: bytes.length });
      const inspected = await qansAsync("inspect", server.url(), "--json");
      expect(inspected.code, inspected.stderr).toBe(0);
      expect(JSON.parse(inspected.stdout).tensors.map((t: { name: string }) => t.name)).toEqual(["w"]);
      const unpacked = await qansAsync("unpack", server.url(), "-o", "w.safetensors");
      expect(unpacked.code, unpacked.stderr).toBe(0);
      const local = await QansReader.open(new MemorySource(bytes));
      const exported = await importSafetensors(join(dir(), "w.safetensors"));
      expect(sha256(exported.tensors[0].data)).toBe(sha256((await local.readTensor("w")).data));
      expect(server.log.every((entry) => entry.range !== null), "every request is a range request").toBe(true);

      server.setContent(bytes.slice(0, bytes.length - 1));
      const changed = await qansAsync("verify", server.url());
      expect(changed.code).toBe(1);
      expect(changed.stderr).toMatch(/^qans: (TRUNCATED|BAD_MAGIC|OFFSET_OUT_OF_RANGE|IO_ERROR|INDEX_MISMATCH|CHECKSUM_MISMATCH): /);
    } finally {
      await server.stop();
    }
  });

  it("names the URL when the server answers 404", async () => {
    const server = await TestHttpServer.start(new Uint8Array(100));
    try {
      server.fail({ kind: "status", status: 404 });
      const result = await qansAsync("verify", server.url());
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^qans: IO_ERROR: .*404.*127\.0\.0\.1/);
    } finally {
      await server.stop();
    }
  });
});

describe("qans cat", () => {
  it("writes one tensor as raw bytes, binary32 or .npy, and names a missing tensor", async () => {
    const bytes = await writeToMemory(
      [
        { tensor: gaussianTensor("q", [8, 16], 5), encoding: { encoding: "int-quant", bits: 4 } },
        { tensor: gaussianTensor("b", [16], 6, "BF16"), encoding: { encoding: "float-planes" } },
      ],
      { log2Block: 12 },
    );
    writeFileSync(join(dir(), "c.qans"), bytes);
    const reader = await QansReader.open(new MemorySource(bytes));
    const stdout = (...args: string[]) => {
      const result = spawnSync(process.execPath, [CLI, "cat", "c.qans", ...args], { cwd: dir() });
      expect(result.status, String(result.stderr)).toBe(0);
      return new Uint8Array(result.stdout);
    };
    const q = (await reader.readTensor("q")).data;
    expect(sha256(stdout("q"))).toBe(sha256(q));
    const npy = stdout("q", "--format", "npy");
    expect(sha256(npy.subarray(npy.length - q.length))).toBe(sha256(q));
    expect(Buffer.from(npy.subarray(0, npy.length - q.length)).toString("latin1")).toMatch(/^\x93NUMPY\x01\x00.{2}\{'descr': '<f4', 'fortran_order': False, 'shape': \(8, 16\), \} *\n$/s);
    const f32 = await reader.readFloat32("b");
    expect(sha256(stdout("b", "--format", "f32"))).toBe(sha256(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength)));
    expect(sha256(stdout("b"))).toBe(sha256((await reader.readTensor("b")).data));

    const missing = qans("cat", "c.qans", "nope");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^qans: NOT_FOUND: no tensor named "nope"/);
    const bf16Npy = qans("cat", "c.qans", "b", "--format", "npy");
    expect(bf16Npy.code).toBe(1);
    expect(bf16Npy.stderr).toMatch(/^qans: INVALID_ARGUMENT: NumPy has no BF16 type/);
    expect(qans("cat", "c.qans", "q", "--format", "csv").code).toBe(2);
    expect(qans("cat", "c.qans").code).toBe(2);
  });
});

describe("errors and exit codes", () => {
  it("verify names the code of a corrupt file and exits 1", () => {
    expect(qans("pack", STORIES_PATH, "-o", "bad.qans").code).toBe(0);
    const bytes = readFileSync(join(dir(), "bad.qans"));
    bytes[2000] ^= 0x40;
    writeFileSync(join(dir(), "bad.qans"), bytes);
    const text = qans("verify", "bad.qans");
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/^qans: CHECKSUM_MISMATCH: .*at byte/m);
    const json = qans("verify", "bad.qans", "--json");
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: false, code: "CHECKSUM_MISMATCH" });
  });

  it("reports a truncated file as TRUNCATED", () => {
    const bytes = readFileSync(join(dir(), "s.qans"));
    writeFileSync(join(dir(), "cut.qans"), bytes.subarray(0, bytes.length - 100));
    const result = qans("inspect", "cut.qans");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^qans: TRUNCATED: /);
  });

  it("uses exit code 2 for usage errors and names missing inputs", () => {
    expect(qans().code).toBe(2);
    expect(qans("frobnicate").code).toBe(2);
    const missing = qans("pack", STORIES_PATH);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("-o <out.qans> is required");
    expect(qans("pack", STORIES_PATH, "-o", "x.qans", "--unknown").code).toBe(2);
    const badMode = qans("pack", STORIES_PATH, "-o", "x.qans", "--mode", "int9");
    expect(badMode.code).toBe(1);
    expect(badMode.stderr).toMatch(/^qans: INVALID_ARGUMENT: /);
    const noFile = qans("verify", "nope.qans");
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toMatch(/^qans: IO_ERROR: .*nope\.qans/);
    expect(qans("--help").code).toBe(0);
  });

  it("leaves no file behind when packing fails", () => {
    writeFileSync(join(dir(), "broken.bin"), new Uint8Array(100));
    const result = qans("pack", "broken.bin", "-o", "never.qans");
    expect(result.code).toBe(1);
    expect(existsSync(join(dir(), "never.qans"))).toBe(false);
  });
});
