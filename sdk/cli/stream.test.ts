import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { importSafetensors } from "../import/safetensors.js";
import { importModel } from "../import/detect.js";
import { STORIES_PATH, sameBytes, sha256 } from "../testing/fixtures.js";
import { resealRange } from "../testing/patch.js";
import { useTempDir } from "../testing/temp-dir.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;
const CONFORMANCE = new URL("../../conformance/vectors/", import.meta.url).pathname;
const dir = useTempDir("qans-cli-stream-");

/** Runs the CLI with `input` piped to its standard input; stdout comes back as bytes. */
function qans(input: Uint8Array | null, ...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: dir(), input: input ?? undefined, maxBuffer: 1 << 28 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.toString("utf8") };
}

/** Runs a shell pipeline in the test directory (POSIX shells only); `$QANS` runs the CLI. */
function shell(command: string) {
  const result = spawnSync("sh", ["-c", command.replaceAll("$QANS", '"$NODE" "$QANS_CLI"')], { cwd: dir(), env: { ...process.env, NODE: process.execPath, QANS_CLI: CLI }, maxBuffer: 1 << 28 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.toString("utf8") };
}

const file = (name: string) => new Uint8Array(readFileSync(join(dir(), name)));
const posix = process.platform !== "win32";

beforeAll(() => {
  expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
  for (const mode of ["lossless", "int8", "int4"]) {
    const packed = qans(null, "pack", STORIES_PATH, "-o", `s-${mode}.qans`, "--mode", mode);
    expect(packed.code, packed.stderr).toBe(0);
  }
});

describe("reading standard input with the streaming decoder", () => {
  it.runIf(posix)("cat file | qans verify - accepts a valid file", () => {
    const text = shell(`cat s-int8.qans | $QANS verify -`);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.toString()).toBe(`stdin: valid QANS 1.2, 47 tensors, ${file("s-int8.qans").length} bytes\n`);
  });

  it.each(["lossless", "int8", "int4"])("verify - --json agrees with verify <file> (%s)", (mode) => {
    const direct = JSON.parse(qans(null, "verify", `s-${mode}.qans`, "--json").stdout.toString());
    const piped = qans(file(`s-${mode}.qans`), "verify", "-", "--json");
    expect(piped.code, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout.toString())).toEqual({ ...direct, file: "-" });
  });

  it("inspect - reports exactly what inspect <file> reports", () => {
    const direct = JSON.parse(qans(null, "inspect", "s-int4.qans", "--json").stdout.toString());
    const piped = qans(file("s-int4.qans"), "inspect", "-", "--json");
    expect(piped.code, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout.toString())).toEqual({ ...direct, file: "-" });
    const text = qans(file("s-int4.qans"), "inspect", "-");
    expect(text.stdout.toString()).toMatch(/^stdin: QANS 1\.2/);
    expect(text.stdout.toString()).toMatch(/total: 47 tensors/);
  });

  it.runIf(posix)("cat file | qans unpack - -o x.safetensors writes the same bytes as unpacking the file", async () => {
    for (const mode of ["lossless", "int8", "int4"]) {
      expect(qans(null, "unpack", `s-${mode}.qans`, "-o", `direct-${mode}.safetensors`).code).toBe(0);
      const piped = shell(`cat s-${mode}.qans | $QANS unpack - -o piped-${mode}.safetensors`);
      expect(piped.code, piped.stderr).toBe(0);
      expect(piped.stdout.toString()).toMatch(new RegExp(`^unpacked 47 tensors to piped-${mode}\\.safetensors`));
      expect(sameBytes(file(`piped-${mode}.safetensors`), file(`direct-${mode}.safetensors`)), mode).toBe(true);
    }
    // Lossless is bit-exact against the original model.
    const original = await importModel(STORIES_PATH);
    const exported = await importSafetensors(join(dir(), "piped-lossless.safetensors"));
    expect(exported.tensors.map((t) => sha256(t.data))).toEqual(original.tensors.map((t) => sha256(t.data)));
  });

  it("unpack -o - writes the same safetensors to standard output, its summary to standard error", () => {
    expect(qans(null, "unpack", "s-int8.qans", "-o", "direct.safetensors").code).toBe(0);
    const expected = file("direct.safetensors");
    const streamed = qans(file("s-int8.qans"), "unpack", "-", "-o", "-", "--json");
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(sameBytes(new Uint8Array(streamed.stdout), expected)).toBe(true);
    expect(JSON.parse(streamed.stderr)).toMatchObject({ input: "-", output: "-", tensors: 47 });
    const fromFile = qans(null, "unpack", "s-int8.qans", "-o", "-");
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(sameBytes(new Uint8Array(fromFile.stdout), expected)).toBe(true);
    expect(fromFile.stderr).toMatch(/^unpacked 47 tensors to stdout/);
  });
});

describe("invalid input on standard input", () => {
  it("a cut-short stream is TRUNCATED, and unpack leaves no output, temporary or spool file", () => {
    const bytes = file("s-int8.qans");
    const cut = bytes.subarray(0, bytes.length - 30);
    const verified = qans(cut, "verify", "-");
    expect(verified.code).toBe(1);
    expect(verified.stderr).toMatch(/^qans: TRUNCATED: trailer: /);

    mkdirSync(join(dir(), "out"));
    for (const at of [10, 5000, bytes.length - 30]) {
      const unpacked = qans(bytes.subarray(0, at), "unpack", "-", "-o", "out/x.safetensors");
      expect(unpacked.code).toBe(1);
      expect(unpacked.stderr).toMatch(/^qans: TRUNCATED: /);
      expect(readdirSync(join(dir(), "out"))).toEqual([]);
    }
    const toStdout = qans(cut, "unpack", "-", "-o", "-");
    expect(toStdout.code).toBe(1);
    expect(toStdout.stdout.length, "nothing is written before the input is known valid").toBe(0);
  });

  it.each([
    ["index-mismatch.qans", "INDEX_MISMATCH"],
    ["trailing-data.qans", "TRAILING_DATA"],
    ["checksum-block.qans", "CHECKSUM_MISMATCH"],
    ["duplicate-name.qans", "DUPLICATE_NAME"],
  ])("verify - --json reports %s as %s", (name, code) => {
    const result = qans(new Uint8Array(readFileSync(join(CONFORMANCE, "invalid", name))), "verify", "-", "--json");
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout.toString())).toMatchObject({ file: "-", valid: false, code });
    expect(result.stderr).toMatch(new RegExp(`^qans: ${code}: `));
  });

  it("an index that disagrees with the frames is INDEX_MISMATCH", () => {
    // Swap two dimensions of the first entry in the index of llama-tiny and re-seal it: the index
    // is consistent on its own, so only the comparison with the tensor header finds it.
    const bytes = new Uint8Array(readFileSync(join(CONFORMANCE, "valid", "llama-tiny.qans")));
    const result = qans(swapFirstIndexDims(bytes), "verify", "-");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^qans: INDEX_MISMATCH: index entry 0/);
  });
});

/** Swaps the first two dimensions of the first index entry (a matrix) and re-seals the index. */
function swapFirstIndexDims(original: Uint8Array): Uint8Array {
  const bytes = original.slice();
  const view = new DataView(bytes.buffer);
  const indexOffset = Number(view.getBigUint64(bytes.length - 40, true));
  const indexLength = Number(view.getBigUint64(bytes.length - 32, true));
  const entry = indexOffset + 16 + 24;
  const nameLength = view.getUint16(entry, true);
  const rank = bytes[entry + 2 + nameLength + 2];
  expect(rank).toBe(2);
  const dims = entry + 2 + nameLength + 4;
  const [a, b] = [view.getBigUint64(dims, true), view.getBigUint64(dims + 8, true)];
  expect(a).not.toBe(b);
  view.setBigUint64(dims, b, true);
  view.setBigUint64(dims + 8, a, true);
  resealRange(bytes, indexOffset, indexOffset + indexLength - 4);
  return bytes;
}
