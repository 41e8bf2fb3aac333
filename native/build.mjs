#!/usr/bin/env node
// Builds the native codec addon, native/build/Release/qans_native.node.
//
//   node native/build.mjs           the package's install script: builds incrementally and never
//                                   fails the install; on any failure it prints one line to stderr
//                                   and exits 0, and the SDK uses its TypeScript codec.
//   node native/build.mjs --force   `npm run build:native`: rebuilds from scratch with the full
//                                   compiler output and exits non-zero on failure.
//
// cmake-js drives CMake when it is installed (it is a devDependency); otherwise, as in an install
// from the registry, CMake is run directly. Either way the Node headers come from the running
// Node's own install prefix when npm_config_nodedir is not set, so nothing is downloaded.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nativeDir = dirname(fileURLToPath(import.meta.url));
const buildDir = join(nativeDir, "build");
const addonPath = join(buildDir, "Release", "qans_native.node");
const force = process.argv.includes("--force");
const require = createRequire(import.meta.url);

class BuildError extends Error {}

function fail(reason) {
  throw new BuildError(reason);
}

/** The directory holding include/node/node.h for the running Node, or undefined. */
function nodePrefix() {
  // <prefix>/bin/node on POSIX, <prefix>/node.exe on Windows.
  const candidates = [dirname(dirname(process.execPath)), dirname(process.execPath)];
  return candidates.find((prefix) => existsSync(join(prefix, "include", "node", "node.h")));
}

function resolveOrUndefined(id) {
  try {
    return require.resolve(id);
  } catch {
    return undefined;
  }
}

/** Runs a command; in install mode its output is captured and summarised on failure. */
function run(command, args, env) {
  const result = spawnSync(command, args, {
    cwd: nativeDir,
    env,
    stdio: force ? "inherit" : "pipe",
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) fail(`${command} could not be started: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}\n${result.stderr ?? ""}`;
    if (/CMAKE_CXX_COMPILER|No CMAKE_CXX_COMPILER|C\+\+ compiler/i.test(output) && /not (be )?found|could not find|no such/i.test(output)) {
      fail("no C++ compiler found");
    }
    if (/big-endian|little-endian targets only/.test(output)) fail("big-endian targets are not supported");
    if (/nan\.h not found/.test(output)) fail("nan is not installed");
    if (/error:/.test(output)) fail(`compilation failed; run "npm run build:native" in the qans package for details`);
    fail(`${[command, ...args].join(" ")} exited with status ${result.status ?? result.signal}`);
  }
}

function hasCmake() {
  const result = spawnSync("cmake", ["--version"], { stdio: "ignore" });
  return !result.error && result.status === 0;
}

function build() {
  const env = { ...process.env };
  const prefix = nodePrefix();
  if (!env.npm_config_nodedir && prefix) env.npm_config_nodedir = prefix;
  const nanHeader = resolveOrUndefined("nan/nan.h");
  if (!nanHeader) fail("the nan package is not installed");
  const nanDir = dirname(nanHeader);
  if (!hasCmake()) fail("cmake not found");

  const cmakeJs = resolveOrUndefined("cmake-js/package.json");
  if (cmakeJs) {
    const bin = join(dirname(cmakeJs), "bin", "cmake-js");
    run(process.execPath, [bin, force ? "rebuild" : "compile", "-d", nativeDir, `--CDNAN_INCLUDE_DIR=${nanDir}`], env);
  } else {
    // No cmake-js (an install from the registry omits devDependencies): plain CMake, which needs the
    // headers locally and, on Windows, node.lib that only cmake-js fetches.
    if (process.platform === "win32") fail("cmake-js is not installed");
    const nodedir = env.npm_config_nodedir;
    const includeDir = nodedir && [join(nodedir, "include", "node"), join(nodedir, "src")].find((dir) => existsSync(join(dir, "node.h")));
    if (!includeDir) fail("Node headers not found (set npm_config_nodedir to a directory containing include/node/node.h)");
    if (force) rmSync(buildDir, { recursive: true, force: true });
    run("cmake", ["-S", nativeDir, "-B", buildDir, "-DCMAKE_BUILD_TYPE=Release", `-DNODE_INCLUDE_DIR=${includeDir}`, `-DNAN_INCLUDE_DIR=${nanDir}`], env);
    run("cmake", ["--build", buildDir, "--config", "Release", "--parallel"], env);
  }

  if (!existsSync(addonPath)) fail(`the build did not produce ${addonPath}`);
  // A library that builds but does not load (a missing symbol, a wrong ABI) is a failed build too.
  const check = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(addonPath)}).simdInfo()`], { encoding: "utf8" });
  if (check.status !== 0) fail(`the built addon does not load: ${(check.stderr || "").trim().split("\n")[0] ?? ""}`);
}

if (!force && process.env.QANS_NATIVE === "0") {
  process.stderr.write("qans: native build skipped (QANS_NATIVE=0); the TypeScript codec will be used\n");
  process.exit(0);
}

try {
  build();
  if (force) process.stdout.write(`qans: built ${addonPath}\n`);
} catch (error) {
  const reason = error instanceof BuildError ? error.message : String(error instanceof Error ? error.message : error);
  if (force) {
    process.stderr.write(`qans: native build failed (${reason})\n`);
    process.exit(1);
  }
  process.stderr.write(`qans: native build failed (${reason}); the TypeScript codec will be used\n`);
  process.exit(0);
}
