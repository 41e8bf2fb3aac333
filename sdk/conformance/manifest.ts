import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ERROR_CODES, QansError, type QansErrorCode } from "../errors.js";
import { readSmallFile } from "../io/source.js";
import { packageRoot } from "../native/addon.js";
import type { DType } from "../tensor/dtype.js";

/**
 * The conformance manifest (conformance/manifest.json, described in conformance/README.md): what
 * every vector is and what reading it must give.
 */

export interface ManifestTensor {
  name: string;
  dtype: DType;
  shape: number[];
  encoding: string;
  /** sha256 of the decoded tensor bytes in its original dtype (dequantised for int-quant). */
  sha256: string;
  /** sha256 of each stream's decoded symbols, one byte per symbol, in stream order. */
  symbols_sha256: string[];
  /** sha256 of the tensor as little-endian binary32 values; F32, F16 and BF16 tensors only. */
  f32_sha256?: string;
}

export interface ManifestValid {
  /** Path under vectors/valid/; for a set, its set file. */
  file: string;
  spec: string[];
  exercises: string;
  /** For a set (spec §16): its shard files, in set order, paths under vectors/valid/ beside the set file. */
  shards?: string[];
  /** In model order: for a set, every shard's tensors in set order. */
  tensors: ManifestTensor[];
}

export interface ManifestInvalid {
  /** Path under vectors/invalid/; for a set, its set file. */
  file: string;
  code: QansErrorCode;
  spec: string[];
  exercises: string;
  /** For a set: the shard files beside it (valid ones; the defect is in the set file), paths under vectors/invalid/. */
  shards?: string[];
  /**
   * Whether the damage lies in a structure that a random-access reader reads when it opens the
   * file and reads the metadata and every tensor (trailer, index, metadata frame, tensor frames).
   * When true such a reader must reject the file too, though possibly with another code.
   */
  detected_by_random_access: boolean;
}

export interface Manifest {
  format: "qans";
  version: "1.2";
  valid: ManifestValid[];
  invalid: ManifestInvalid[];
}

/** One vector to run: its manifest entry and the absolute path of its file (a set's set file). */
export type VectorCase = { kind: "valid"; entry: ManifestValid; path: string } | { kind: "invalid"; entry: ManifestInvalid; path: string };

/** A manifest is small; a larger file is not one. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * The conformance folder shipped with this package (holding manifest.json and vectors/), found
 * from this module's location both in the source tree and in the built dist/; undefined when the
 * package was installed without it.
 */
export function defaultVectorsDirectory(): string | undefined {
  const root = packageRoot(fileURLToPath(new URL(".", import.meta.url)));
  const directory = root === undefined ? undefined : join(root, "conformance");
  return directory !== undefined && existsSync(join(directory, "manifest.json")) ? directory : undefined;
}

/** Reads and checks `<directory>/manifest.json`; BAD_INPUT when it is not a QANS 1.2 manifest. */
export async function loadManifest(directory: string): Promise<Manifest> {
  const path = join(directory, "manifest.json");
  const text = new TextDecoder().decode(await readSmallFile(path, MAX_MANIFEST_BYTES, "conformance manifest"));
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new QansError("BAD_INPUT", `${path}: not JSON (${(error as Error).message})`);
  }
  checkManifest(manifest, path);
  return manifest;
}

function checkManifest(value: unknown, path: string): asserts value is Manifest {
  const bad = (what: string): never => {
    throw new QansError("BAD_INPUT", `${path}: ${what}`);
  };
  const m = value as Partial<Manifest> | null;
  if (typeof m !== "object" || m === null || m.format !== "qans" || m.version !== "1.2") bad('not a manifest of format "qans", version "1.2"');
  if (!Array.isArray(m!.valid) || !Array.isArray(m!.invalid)) bad('"valid" and "invalid" must be arrays');
  for (const entry of m!.valid!) {
    if (typeof entry?.file !== "string" || !Array.isArray(entry.tensors)) bad(`a valid vector has no "file" or "tensors"`);
    for (const tensor of entry.tensors) {
      if (typeof tensor?.name !== "string" || typeof tensor.sha256 !== "string" || !Array.isArray(tensor.symbols_sha256)) {
        bad(`${entry.file}: a tensor has no "name", "sha256" or "symbols_sha256"`);
      }
    }
  }
  for (const entry of m!.invalid!) {
    if (typeof entry?.file !== "string" || !(ERROR_CODES as readonly string[]).includes(entry.code)) bad(`an invalid vector has no "file" or a "code" that is not an error code`);
    if (typeof entry.detected_by_random_access !== "boolean") bad(`${entry.file}: "detected_by_random_access" is not a boolean`);
  }
  for (const entry of [...m!.valid!, ...m!.invalid!]) {
    // File names come from a file the user pointed at; they must stay inside the vectors folder.
    if (isAbsolute(entry.file) || entry.file.split("/").includes("..")) bad(`vector file "${entry.file}" leaves the vectors folder`);
  }
}

/** Every vector of the manifest with the absolute path of its file, valid ones first. */
export function vectorCases(manifest: Manifest, directory: string): VectorCase[] {
  const path = (kind: string, file: string) => resolve(directory, "vectors", kind, file);
  return [
    ...manifest.valid.map((entry): VectorCase => ({ kind: "valid", entry, path: path("valid", entry.file) })),
    ...manifest.invalid.map((entry): VectorCase => ({ kind: "invalid", entry, path: path("invalid", entry.file) })),
  ];
}
