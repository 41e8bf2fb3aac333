/**
 * Writes the conformance vectors and manifest: `npx tsx conformance/generate.ts`.
 *
 * Output is deterministic: running it twice gives identical files. Vector files in
 * conformance/vectors/ that the current definitions no longer produce are removed.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildVectors, type VectorFile } from "./vectors.js";

const root = fileURLToPath(new URL(".", import.meta.url));

function writeDirectory(directory: string, files: VectorFile[]): number {
  const path = `${root}vectors/${directory}`;
  mkdirSync(path, { recursive: true });
  const wanted = new Set(files.map((f) => f.file));
  for (const existing of readdirSync(path)) {
    if (existing.endsWith(".qans") && !wanted.has(existing)) rmSync(`${path}/${existing}`);
  }
  let total = 0;
  for (const { file, bytes } of files) {
    writeFileSync(`${path}/${file}`, bytes);
    total += bytes.length;
  }
  return total;
}

const vectors = await buildVectors();
const validBytes = writeDirectory("valid", vectors.valid);
const invalidBytes = writeDirectory("invalid", vectors.invalid);
writeFileSync(`${root}manifest.json`, vectors.manifestText);
console.log(
  `conformance: ${vectors.valid.length} valid vectors (${validBytes} bytes), ${vectors.invalid.length} invalid vectors (${invalidBytes} bytes), manifest.json written`,
);
