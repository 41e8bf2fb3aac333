/**
 * Writes the conformance vectors and manifest: `npx tsx conformance/generate.ts`.
 *
 * Output is deterministic: running it twice gives identical files. Vector files in
 * conformance/vectors/ that the current definitions no longer produce are removed.
 */
import { mkdirSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { buildVectors, type VectorFile } from "./vectors.js";

const root = fileURLToPath(new URL(".", import.meta.url));

/** The .qans files under `path`, as paths relative to it: a set's files are in a folder of their own. */
function existingVectors(path: string): string[] {
  return readdirSync(path, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".qans"))
    .map((entry) => relative(path, join(entry.parentPath, entry.name)).split(sep).join("/"));
}

function writeDirectory(directory: string, files: VectorFile[]): number {
  const path = `${root}vectors/${directory}`;
  mkdirSync(path, { recursive: true });
  const wanted = new Set(files.map((f) => f.file));
  for (const existing of existingVectors(path)) {
    if (!wanted.has(existing)) rmSync(`${path}/${existing}`);
  }
  let total = 0;
  for (const { file, bytes } of files) {
    mkdirSync(dirname(`${path}/${file}`), { recursive: true });
    writeFileSync(`${path}/${file}`, bytes);
    total += bytes.length;
  }
  // Folders of sets that are no longer made.
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory() && readdirSync(`${path}/${entry.name}`).length === 0) rmdirSync(`${path}/${entry.name}`);
  }
  return total;
}

const vectors = await buildVectors();
const validBytes = writeDirectory("valid", vectors.valid);
const invalidBytes = writeDirectory("invalid", vectors.invalid);
writeFileSync(`${root}manifest.json`, vectors.manifestText);
console.log(
  `conformance: ${vectors.valid.length} files of valid vectors (${validBytes} bytes), ${vectors.invalid.length} files of invalid vectors (${invalidBytes} bytes), manifest.json written`,
);
