import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { kernels } from "../codec/kernels.js";
import { useTempDir } from "../testing/temp-dir.js";
import { nativeAddon, nativeAddonPath, nativeStatus, SIMD_LEVELS, type NativeAddon } from "./addon.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const dir = useTempDir("qans-addon-");
const disabled = process.env.QANS_NATIVE === "0";

/** Runs an ES module snippet under tsx in a child with `env` added; the snippet prints JSON. */
function child(code: string, env: Record<string, string | undefined> = {}) {
  const merged: NodeJS.ProcessEnv = { ...process.env, QANS_NATIVE: undefined, QANS_NATIVE_PATH: undefined, QANS_SIMD: undefined, ...env };
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, env: merged, encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
  return { output: JSON.parse(result.stdout.trim().split("\n").pop()!), stderr: result.stderr };
}

// Imports for child snippets, from the SDK's sources.
const IMPORTS = `
  import { nativeStatus, nativeAddon } from "./sdk/native/addon.ts";
  import { kernels } from "./sdk/codec/kernels.ts";
  const warnings = [];
  process.on("warning", (w) => warnings.push(w.code));
`;

describe("loading the addon", () => {
  it("is active whenever the built addon exists and QANS_NATIVE is not 0", () => {
    const status = nativeStatus();
    if (disabled) {
      expect(status).toEqual({ active: false, reason: "disabled by QANS_NATIVE=0" });
      expect(kernels().name).toBe("typescript");
      return;
    }
    // A missing addon is allowed (no compiler); a built one that does not load is a failure.
    if (!existsSync(nativeAddonPath()!)) {
      expect(status.active).toBe(false);
      return;
    }
    expect(status).toMatchObject({ active: true, path: join(ROOT, "native", "build", "Release", "qans_native.node") });
    expect(kernels().name).toBe("native");
    expect(status.compiled![0]).toBe("scalar");
    expect(status.compiled!.every((level, i) => level === SIMD_LEVELS[i])).toBe(true);
    expect(status.available!.every((level, i) => level === status.compiled![i])).toBe(true);
    expect(status.available).toContain(status.level);
  });

  it("QANS_NATIVE=0 selects the TypeScript kernels without a warning", () => {
    const { output, stderr } = child(
      `${IMPORTS}
      const names = [kernels().name, kernels().name];
      console.log(JSON.stringify({ names, status: nativeStatus(), addon: nativeAddon() === undefined, warnings }));`,
      { QANS_NATIVE: "0" },
    );
    expect(output).toEqual({ names: ["typescript", "typescript"], status: { active: false, reason: "disabled by QANS_NATIVE=0" }, addon: true, warnings: [] });
    expect(stderr).not.toMatch(/Warning/);
  });

  it("reports a missing addon once, with a warning, and packs with the TypeScript kernels", () => {
    const { output, stderr } = child(
      `${IMPORTS}
      import { packModel } from "./sdk/pack.ts";
      import { MemorySink } from "./sdk/io/sink.ts";
      import { gaussianTensor } from "./sdk/testing/fixtures.ts";
      const names = [kernels().name, kernels().name];
      nativeStatus();
      const sink = new MemorySink();
      await packModel({ metadata: {}, tensors: [gaussianTensor("w", [64, 64], 1)] }, sink, { mode: "int4" });
      await new Promise((resolve) => setImmediate(resolve));
      console.log(JSON.stringify({ names, status: nativeStatus(), bytes: sink.bytes().length, warnings }));`,
      { QANS_NATIVE_PATH: join(dir(), "missing.node") },
    );
    expect(output.names).toEqual(["typescript", "typescript"]);
    expect(output.status).toMatchObject({ active: false, reason: expect.stringContaining("does not exist") });
    expect(output.bytes).toBeGreaterThan(0);
    expect(output.warnings).toEqual(["QANS_NATIVE_UNAVAILABLE"]);
    expect(stderr.match(/native codec unavailable/g)).toHaveLength(1);
  });

  it("reports an addon that does not load", () => {
    const broken = join(dir(), "broken.node");
    writeFileSync(broken, "not a shared library");
    const { output } = child(`${IMPORTS} kernels(); await new Promise((r) => setImmediate(r)); console.log(JSON.stringify({ status: nativeStatus(), warnings }));`, {
      QANS_NATIVE_PATH: broken,
    });
    expect(output.status).toMatchObject({ active: false, reason: expect.stringContaining("failed to load") });
    expect(output.warnings).toEqual(["QANS_NATIVE_UNAVAILABLE"]);
  });
});

const addon: NativeAddon | undefined = nativeAddon();

describe.skipIf(!addon)("the native binding", () => {
  it("setSimdLevel caps the level at what the CPU has and rejects unknown names", () => {
    const { level: initial, available } = addon!.simdInfo();
    try {
      for (const requested of SIMD_LEVELS) {
        const expected = SIMD_LEVELS[Math.min(SIMD_LEVELS.indexOf(requested), available.length - 1)];
        expect(addon!.setSimdLevel(requested)).toBe(expected);
        expect(addon!.simdInfo().level).toBe(expected);
      }
      expect(() => addon!.setSimdLevel("sse2" as never)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    } finally {
      addon!.setSimdLevel(initial);
    }
  });

  it("setMmapThreshold takes effect under glibc and rejects what is not a byte count", () => {
    const glibc = process.platform === "linux" && Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);
    expect(addon!.setMmapThreshold(4 << 20)).toBe(glibc);
    for (const bad of [-1, 1.5, 2 ** 30 + 1, Number.NaN, "4096" as never]) {
      expect(() => addon!.setMmapThreshold(bad)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    }
  });

  it("QANS_SIMD caps the level at load time and a bad value is reported", () => {
    const { available } = addon!.simdInfo();
    const snippet = `${IMPORTS} kernels(); await new Promise((r) => setImmediate(r)); console.log(JSON.stringify({ level: nativeStatus().level, warnings }));`;
    for (const level of SIMD_LEVELS) {
      const expected = SIMD_LEVELS[Math.min(SIMD_LEVELS.indexOf(level), available.length - 1)];
      expect(child(snippet, { QANS_SIMD: level }).output).toEqual({ level: expected, warnings: [] });
    }
    expect(child(snippet, { QANS_SIMD: "fastest" }).output).toEqual({ level: available[available.length - 1], warnings: ["QANS_SIMD_IGNORED"] });
  });

  it("throws an Error with a QANS code for every kind of bad argument, never crashing", () => {
    const a = addon!;
    const u8 = new Uint8Array(8);
    const table = a.makeDecodeTable(new Uint32Array([512, 512]), 10);
    const calls: [string, () => unknown, string][] = [
      ["no arguments", () => (a.crc32c as () => number)(), "INVALID_ARGUMENT"],
      ["crc32c of an array", () => a.crc32c([1, 2] as never, 0), "INVALID_ARGUMENT"],
      ["crc32c of a Uint16Array", () => a.crc32c(new Uint16Array(2) as never, 0), "INVALID_ARGUMENT"],
      ["crc32c with a string", () => a.crc32c(u8, "1" as never), "INVALID_ARGUMENT"],
      ["histogram of a string", () => a.histogram("abc" as never, 256), "INVALID_ARGUMENT"],
      ["histogram alphabet 0", () => a.histogram(u8, 0), "INVALID_ARGUMENT"],
      ["histogram alphabet NaN", () => a.histogram(u8, Number.NaN), "INVALID_ARGUMENT"],
      ["packBits width 9", () => a.packBits(u8, 9), "INVALID_ARGUMENT"],
      ["packBits width Infinity", () => a.packBits(u8, Number.POSITIVE_INFINITY), "INVALID_ARGUMENT"],
      ["unpackBits count 2^60", () => a.unpackBits(u8, 2 ** 60, 1, u8), "INVALID_ARGUMENT"],
      ["unpackBits into a short output", () => a.unpackBits(u8, 9, 1, u8), "INVALID_ARGUMENT"],
      ["unpackBits into a Float32Array", () => a.unpackBits(u8, 8, 8, new Float32Array(8) as never), "INVALID_ARGUMENT"],
      ["unpackBits, wrong length", () => a.unpackBits(u8, 7, 8, u8), "BAD_BLOCK"],
      ["makeDecodeTable, bad sum", () => a.makeDecodeTable(new Uint32Array([512, 511]), 10), "BAD_FREQ_TABLE"],
      ["makeDecodeTable, k 9", () => a.makeDecodeTable(new Uint32Array([256, 256]), 9), "BAD_FREQ_TABLE"],
      ["makeDecodeTable, 257 symbols", () => a.makeDecodeTable(new Uint32Array(257), 10), "INVALID_ARGUMENT"],
      ["makeDecodeTable, Int32Array", () => a.makeDecodeTable(new Int32Array([512, 512]) as never, 10), "INVALID_ARGUMENT"],
      ["the table's constructor without new", () => (table.constructor as (...args: unknown[]) => unknown)(new Uint32Array([512, 512]), 10), "INVALID_ARGUMENT"],
      ["the table's constructor without arguments", () => new (table.constructor as new () => unknown)(), "INVALID_ARGUMENT"],
      ["ransDecode with a plain object", () => a.ransDecode({} as never, new Uint8Array(128), 0, 32, u8), "INVALID_ARGUMENT"],
      ["ransDecode with a Uint8Array as table", () => a.ransDecode(u8 as never, new Uint8Array(128), 0, 32, u8), "INVALID_ARGUMENT"],
      ["ransDecode, negative count", () => a.ransDecode(table, new Uint8Array(128), -1, 32, u8), "INVALID_ARGUMENT"],
      ["ransDecode, short output", () => a.ransDecode(table, new Uint8Array(128), 9, 32, u8), "INVALID_ARGUMENT"],
      ["ransDecode, the old four arguments", () => (a.ransDecode as (...args: unknown[]) => void)(table, new Uint8Array(128), 0, u8), "INVALID_ARGUMENT"],
      ["ransDecode, 0 lanes", () => a.ransDecode(table, new Uint8Array(128), 0, 0, u8), "INVALID_ARGUMENT"],
      ["ransDecode, 3 lanes", () => a.ransDecode(table, new Uint8Array(12), 0, 3, u8), "INVALID_ARGUMENT"],
      ["ransDecode, 64 lanes", () => a.ransDecode(table, new Uint8Array(256), 0, 64, u8), "INVALID_ARGUMENT"],
      ["ransDecode, 2.5 lanes", () => a.ransDecode(table, new Uint8Array(8), 0, 2.5, u8), "INVALID_ARGUMENT"],
      ["ransDecode, lanes as string", () => a.ransDecode(table, new Uint8Array(128), 0, "32" as never, u8), "INVALID_ARGUMENT"],
      ["ransDecode, empty payload", () => a.ransDecode(table, new Uint8Array(0), 8, 32, u8), "BAD_BLOCK"],
      ["ransDecode, 32 lanes' states on 1 lane", () => a.ransDecode(table, new Uint8Array(128), 8, 1, u8), "BAD_BLOCK"],
      ["ransDecode, zero states", () => a.ransDecode(table, new Uint8Array(128), 0, 32, u8), "BAD_FINAL_STATE"],
      ["ransDecode, a zero state on 1 lane", () => a.ransDecode(table, new Uint8Array(4), 0, 1, u8), "BAD_FINAL_STATE"],
      ["ransEncode, symbol outside", () => a.ransEncode(new Uint8Array([5]), new Uint32Array([512, 512]), 10, 32), "INVALID_ARGUMENT"],
      ["ransEncode, symbol outside on 1 lane", () => a.ransEncode(new Uint8Array([5]), new Uint32Array([512, 512]), 10, 1), "INVALID_ARGUMENT"],
      ["ransEncode, k as string", () => a.ransEncode(u8, new Uint32Array([512, 512]), "10" as never, 32), "INVALID_ARGUMENT"],
      ["ransEncode, no lanes", () => (a.ransEncode as (...args: unknown[]) => Uint8Array)(u8, new Uint32Array([512, 512]), 10), "INVALID_ARGUMENT"],
      ["ransEncode, 6 lanes", () => a.ransEncode(u8, new Uint32Array([512, 512]), 10, 6), "INVALID_ARGUMENT"],
      ["ransEncode, -1 lanes", () => a.ransEncode(u8, new Uint32Array([512, 512]), 10, -1), "INVALID_ARGUMENT"],
      ["ransEncode, NaN lanes", () => a.ransEncode(u8, new Uint32Array([512, 512]), 10, Number.NaN), "INVALID_ARGUMENT"],
      ["splitFloatPlanes of F64", () => a.splitFloatPlanes("F64" as never, u8), "BAD_DTYPE"],
      ["splitFloatPlanes of a number", () => a.splitFloatPlanes(1 as never, u8), "BAD_DTYPE"],
      ["splitFloatPlanes, partial element", () => a.splitFloatPlanes("F32", new Uint8Array(6)), "INVALID_ARGUMENT"],
      ["mergeFloatPlanes, planes not an array", () => a.mergeFloatPlanes("BF16", u8 as never, u8), "INVALID_ARGUMENT"],
      ["mergeFloatPlanes, holes", () => a.mergeFloatPlanes("BF16", new Array(2) as never, u8), "INVALID_ARGUMENT"],
      ["mergeFloatPlanes, numbers", () => a.mergeFloatPlanes("BF16", [1, 2] as never, u8), "INVALID_ARGUMENT"],
      ["dequantize, too few arguments", () => (a.dequantize as (...args: unknown[]) => void)(u8, 1, 8), "INVALID_ARGUMENT"],
      ["dequantize, bits 9", () => a.dequantize(u8, 1, 8, 0, 9, 0, new Float32Array(1), null, null, new Float32Array(8)), "INVALID_ARGUMENT"],
      ["dequantize, 2^53 elements", () => a.dequantize(u8, 2 ** 27, 2 ** 27, 0, 8, 0, new Float32Array(1), null, null, new Float32Array(8)), "INVALID_ARGUMENT"],
      ["dequantize, deltas as Float64Array", () => a.dequantize(u8, 1, 8, 0, 8, 0, new Float64Array(1) as never, null, null, new Float32Array(8)), "INVALID_ARGUMENT"],
      ["dequantize, zero points as array", () => a.dequantize(u8, 1, 8, 0, 8, 0, new Float32Array(1), [1] as never, null, new Float32Array(8)), "INVALID_ARGUMENT"],
      ["dequantize, group size 2^24 + 1", () => a.dequantize(u8, 1, 8, 0, 8, 2 ** 24 + 1, new Float32Array(1), null, null, new Float32Array(8)), "INVALID_ARGUMENT"],
      ["setSimdLevel of a number", () => a.setSimdLevel(3 as never), "INVALID_ARGUMENT"],
    ];
    for (const [what, call, code] of calls) {
      let thrown: unknown;
      try {
        call();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, what).toBeInstanceOf(Error);
      expect((thrown as { code?: string }).code, what).toBe(code);
    }
  });

  it("works on detached buffers and zero-length views", () => {
    const a = addon!;
    const buffer = new ArrayBuffer(16);
    const view = new Uint8Array(buffer, 4, 8);
    structuredClone(buffer, { transfer: [buffer] });
    expect(view.length).toBe(0);
    expect(a.crc32c(view, 0)).toBe(0);
    expect(Array.from(a.histogram(view, 4))).toEqual([0, 0, 0, 0]);
    expect(a.packBits(view, 3).length).toBe(0);
    expect(a.splitFloatPlanes("F32", view).map((p) => p.length)).toEqual([0, 0, 0, 0]);
  });

  it("loads in worker threads too", () => {
    // Plain CommonJS in the main thread and in the workers (which inherit the main thread's flags).
    const workerCode = `
      const { parentPort } = require("node:worker_threads");
      const a = require(${JSON.stringify(nativeAddonPath())});
      const table = a.makeDecodeTable(new Uint32Array([512, 512]), 10);
      const out = new Uint8Array(0);
      a.ransDecode(table, a.ransEncode(out, new Uint32Array([512, 512]), 10, 1), 0, 1, out);
      parentPort.postMessage(a.crc32c(new TextEncoder().encode("123456789"), 0));`;
    const main = `
      const { Worker } = require("node:worker_threads");
      Promise.all([0, 1, 2].map(() => new Promise((resolve, reject) => {
        const worker = new Worker(${JSON.stringify(workerCode)}, { eval: true });
        worker.once("message", resolve);
        worker.once("error", reject);
      }))).then((results) => console.log(JSON.stringify(results)));`;
    const result = spawnSync(process.execPath, ["-e", main], { cwd: ROOT, encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([0xe3069283, 0xe3069283, 0xe3069283]);
  });
});

describe("the built package", () => {
  it("finds the addon from dist/ in both the ESM and the CommonJS build", () => {
    const esm = join(ROOT, "dist", "index.js");
    const cjs = join(ROOT, "dist", "index.cjs");
    expect(existsSync(esm) && existsSync(cjs), "the package is built by `npm run build` (npm test runs it first)").toBe(true);
    const expected = nativeStatus().active;
    const run = (args: string[]) => {
      const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
      expect(result.status, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as { active: boolean; level?: string };
    };
    expect(run(["-e", `console.log(JSON.stringify(require(${JSON.stringify(cjs)}).nativeStatus()))`]).active).toBe(expected);
    expect(
      run(["--input-type=module", "-e", `import { nativeStatus } from ${JSON.stringify(esm)}; console.log(JSON.stringify(nativeStatus()));`]).active,
    ).toBe(expected);
  });
});
