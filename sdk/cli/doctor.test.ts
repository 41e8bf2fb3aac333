import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { nativeStatus, SIMD_LEVELS } from "../native/addon.js";

const CLI = new URL("../../dist/cli.js", import.meta.url).pathname;

/** This process's choice of addon, for children that must load the same. */
const INHERITED = { QANS_NATIVE: process.env.QANS_NATIVE, QANS_NATIVE_PATH: process.env.QANS_NATIVE_PATH };

function qans(args: string[], env: Record<string, string | undefined> = {}) {
  const merged: NodeJS.ProcessEnv = { ...process.env, QANS_NATIVE: undefined, QANS_NATIVE_PATH: undefined, QANS_SIMD: undefined, QANS_THREADS: undefined, ...env };
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: merged });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("qans doctor", () => {
  it("is listed in the help", () => {
    expect(existsSync(CLI), "the CLI is built by `npm run build` (npm test runs it first)").toBe(true);
    expect(qans(["--help"]).stdout).toMatch(/^ {2}doctor \[--json\] /m);
  });

  it("--json reports the native codec, the level in use, the levels available and compiled", () => {
    const { code, stdout, stderr } = qans(["doctor", "--json"], INHERITED);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout);
    const status = nativeStatus();
    expect(report).toMatchObject({ native: status.active, kernels: status.active ? "native" : "typescript", node: process.version });
    if (status.active) {
      expect(report).toMatchObject({ level: status.available!.at(-1), available: status.available, compiled: status.compiled, addon: status.path });
      expect(report.threads).toBeGreaterThanOrEqual(1);
      expect(SIMD_LEVELS).toContain(report.level);
    } else {
      expect(report).toMatchObject({ level: null, available: [], compiled: [], threads: null, reason: status.reason });
    }
  });

  it("says why the native codec is not in use, and still exits 0", () => {
    const off = qans(["doctor"], { QANS_NATIVE: "0" });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain("native codec: not in use: disabled by QANS_NATIVE=0");
    expect(off.stdout).toContain("the TypeScript codec is used");
    const missing = qans(["doctor", "--json"], { QANS_NATIVE_PATH: "/nonexistent/qans_native.node" });
    expect(missing.code).toBe(0);
    expect(JSON.parse(missing.stdout)).toMatchObject({ native: false, kernels: "typescript", reason: expect.stringContaining("does not exist") });
    expect(missing.stderr).toContain("QANS_NATIVE_UNAVAILABLE");
  });

  it.skipIf(!nativeStatus().active)("shows the level QANS_SIMD caps it at", () => {
    const { code, stdout } = qans(["doctor"], { ...INHERITED, QANS_SIMD: "scalar" });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^dispatch level: scalar$/m);
    expect(stdout).toMatch(/^available on this CPU: scalar/m);
    expect(stdout).toContain("QANS_SIMD=scalar");
  });

  it.skipIf(!nativeStatus().active)("shows the thread count QANS_THREADS sets", () => {
    const { code, stdout } = qans(["doctor"], { ...INHERITED, QANS_THREADS: "3" });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^threads per tensor: 3$/m);
    expect(stdout).toContain("QANS_THREADS=3");
  });

  it("rejects arguments with a usage error", () => {
    expect(qans(["doctor", "extra"]).code).toBe(2);
  });
});
