import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "./manifest.js";

/** The repository's conformance folder. */
export const CONFORMANCE_DIR = fileURLToPath(new URL("../../conformance/", import.meta.url));

export function repositoryManifest(): Manifest {
  return JSON.parse(readFileSync(join(CONFORMANCE_DIR, "manifest.json"), "utf8")) as Manifest;
}

/**
 * A conformance folder in `target` with some of the repository's vectors (and their shards),
 * chosen by file, and their manifest entries, after `edit` (to make a manifest say something else).
 */
export function writeVectorSubset(target: string, valid: string[], invalid: string[], edit: (manifest: Manifest) => void = () => undefined): void {
  const all = repositoryManifest();
  const pick = <T extends { file: string }>(entries: T[], files: string[]): T[] =>
    files.map((file) => {
      const entry = entries.find((candidate) => candidate.file === file);
      if (!entry) throw new Error(`the manifest has no vector ${file}`);
      return entry;
    });
  const manifest: Manifest = { ...all, valid: pick(all.valid, valid), invalid: pick(all.invalid, invalid) };
  for (const kind of ["valid", "invalid"] as const) {
    for (const entry of manifest[kind]) {
      for (const file of [entry.file, ...(entry.shards ?? [])]) {
        const to = join(target, "vectors", kind, file);
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(join(CONFORMANCE_DIR, "vectors", kind, file), to);
      }
    }
  }
  edit(manifest);
  writeFileSync(join(target, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}

/**
 * A decoder for the protocol of conformance/README.md that answers from the manifest beside the
 * vectors instead of decoding: run as `node <script> <mode> <vector>`. Mode "right" answers as a
 * conforming decoder would; the others break the answer in one way each.
 */
export const ORACLE_DECODER = `
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
const [mode, path] = process.argv.slice(2);
let dir = dirname(path);
while (!existsSync(join(dir, "manifest.json"))) dir = dirname(dir);
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const [kind, ...rest] = relative(join(dir, "vectors"), path).split(sep);
const entry = manifest[kind].find((vector) => vector.file === rest.join("/"));
const answer = kind === "valid"
  ? { tensors: entry.tensors.map(({ name, sha256, symbols_sha256, f32_sha256 }) => ({ name, sha256, symbols_sha256, ...(f32_sha256 ? { f32_sha256 } : {}) })) }
  : { error: entry.code };
const line = (value) => process.stdout.write(JSON.stringify(value) + "\\n");
switch (mode) {
  case "right": line(answer); break;
  case "wrong-hash": if (answer.tensors?.length) answer.tensors[0].sha256 = "0".repeat(64); line(answer); break;
  case "wrong-code": if (answer.error) answer.error = answer.error === "BAD_MAGIC" ? "TRUNCATED" : "BAD_MAGIC"; line(answer); break;
  case "garbage": process.stdout.write("this is not JSON\\n"); break;
  case "two-lines": line(answer); line(answer); break;
  case "exit-1": line(answer); process.exitCode = 1; break;
  case "hang": process.stderr.write("thinking\\n"); setInterval(() => {}, 1000); break;
}
`;
