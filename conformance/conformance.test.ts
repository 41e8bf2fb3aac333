import { readFileSync, readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MemorySource, QansError, QansModelSet, QansReader, openModel, verifyModel, verifySource, type ModelReader } from "../sdk/index.js";
import { sha256 } from "../sdk/testing/fixtures.js";
import { fileLayout } from "../sdk/testing/patch.js";
import { featuresOf, requiredFeatures } from "./coverage.js";
import { assembleFile } from "./file-surgery.js";
import { buildVectors, float32Bytes, hasFloat32View, mapTensorHeader, readEverything, readEverythingModel, type Manifest, type VectorFile } from "./vectors.js";

const here = new URL(".", import.meta.url);
const manifestText = readFileSync(new URL("manifest.json", here), "utf8");
const manifest = JSON.parse(manifestText) as Manifest;

const load = (kind: "valid" | "invalid", file: string) => new Uint8Array(readFileSync(new URL(`vectors/${kind}/${file}`, here)));
const pathOf = (kind: "valid" | "invalid", file: string) => fileURLToPath(new URL(`vectors/${kind}/${file}`, here));
/** The .qans files of a kind, as paths under its folder: a set's files are in a folder of their own. */
const committed = (kind: "valid" | "invalid") => {
  const root = fileURLToPath(new URL(`vectors/${kind}/`, here));
  return readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".qans"))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join("/"))
    .sort();
};
/** Every file a manifest section names, set files and their shards alike, each once. */
const listed = (vectors: { file: string; shards?: string[] }[]) => [...new Set(vectors.flatMap((v) => [v.file, ...(v.shards ?? [])]))].sort();

async function outcome(action: () => Promise<unknown>): Promise<unknown> {
  try {
    await action();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("the committed vectors", () => {
  it("are exactly what the generator builds, byte for byte, with an identical manifest", async () => {
    const built = await buildVectors();
    expect(built.manifestText).toBe(manifestText);
    const check = (kind: "valid" | "invalid", files: VectorFile[]) => {
      expect(committed(kind)).toEqual(files.map((f) => f.file).sort());
      for (const { file, bytes } of files) expect(sha256(load(kind, file)), `${kind}/${file}`).toBe(sha256(bytes));
    };
    check("valid", built.valid);
    check("invalid", built.invalid);
  });

  it("are listed in a QANS 1.2 manifest, each vector once", () => {
    expect(manifest.format).toBe("qans");
    expect(manifest.version).toBe("1.2");
    for (const kind of ["valid", "invalid"] as const) {
      const files = manifest[kind].map((v) => v.file);
      expect(new Set(files).size).toBe(files.length);
      expect(listed(manifest[kind])).toEqual(committed(kind));
    }
  });
});

describe("valid vectors", () => {
  it.each(manifest.valid)("$file verifies and decodes to the manifest's hashes", async (vector) => {
    let reader: ModelReader;
    if (vector.shards) {
      // A set (spec §16): verified with its shards, read as one model, each shard a valid file alone.
      const report = await verifyModel(pathOf("valid", vector.file));
      expect(report.tensors.map((t) => t.name)).toEqual(vector.tensors.map((t) => t.name));
      expect(report.shards!.map((shard) => `${vector.file.slice(0, vector.file.lastIndexOf("/") + 1)}${shard.file}`)).toEqual(vector.shards);
      for (const shard of vector.shards) await verifySource(new MemorySource(load("valid", shard)));
      reader = await openModel(pathOf("valid", vector.file));
      expect(reader).toBeInstanceOf(QansModelSet);
    } else {
      const bytes = load("valid", vector.file);
      const report = await verifySource(new MemorySource(bytes));
      expect(report.tensors.map((t) => t.name)).toEqual(vector.tensors.map((t) => t.name));
      reader = await QansReader.open(new MemorySource(bytes));
    }
    await reader.metadata();
    expect((await reader.tensorEntries()).map(({ name, dtype, shape, encoding }) => ({ name, dtype, shape, encoding }))).toEqual(
      vector.tensors.map(({ name, dtype, shape, encoding }) => ({ name, dtype, shape, encoding })),
    );
    for (const tensor of vector.tensors) {
      const decoded = await reader.readTensor(tensor.name);
      expect(sha256(decoded.data), `${tensor.name} data`).toBe(tensor.sha256);
      const { streams } = await reader.readStreams(tensor.name);
      expect(streams.map(sha256), `${tensor.name} symbols`).toEqual(tensor.symbols_sha256);
      expect(tensor.f32_sha256 !== undefined, `${tensor.name} has a binary32 hash`).toBe(hasFloat32View(tensor.dtype));
      if (tensor.f32_sha256 !== undefined) {
        expect(sha256(float32Bytes(await reader.readFloat32(tensor.name))), `${tensor.name} binary32`).toBe(tensor.f32_sha256);
      }
    }
    await reader.close();
  });
});

describe("the valid vectors together", () => {
  it("cover every feature coverage.ts requires, read from the committed files", async () => {
    const features = new Set<string>();
    for (const vector of manifest.valid) {
      for (const file of vector.shards ?? [vector.file]) {
        const bytes = load("valid", file);
        for (const feature of await featuresOf(bytes, await verifySource(new MemorySource(bytes)))) features.add(feature);
      }
      if (vector.shards) features.add("set");
    }
    expect(requiredFeatures().filter((feature) => !features.has(feature))).toEqual([]);
    expect(requiredFeatures().length).toBeGreaterThan(100);
  });

  it("have tables at every probability scale in precision.qans, as its tensor names say", async () => {
    const report = await verifySource(new MemorySource(load("valid", "precision.qans")));
    expect(report.tensors.map((t) => [t.name, t.streams[0].precision])).toEqual([10, 11, 12, 13, 14, 15].map((k) => [`k${k}`, k]));
  });
});

describe("file-surgery's assembleFile", () => {
  it.each(manifest.valid.filter((vector) => !vector.shards).map((vector) => vector.file))("lays %s out again byte for byte", async (file) => {
    const bytes = load("valid", file);
    expect(sha256(assembleFile(bytes, await fileLayout(bytes), new Map()))).toBe(sha256(bytes));
  });
});

describe("rans-lanes.qans", () => {
  it("holds a RANS block at every lane code and tables of both presence forms, as its manifest entry says", async () => {
    const bytes = load("valid", "rans-lanes.qans");
    const layout = await fileLayout(bytes);
    const laneCodes = new Set<number>();
    const flags = new Set<number>();
    for (const tensor of layout.tensors) {
      for (const at of tensor.blockHeaders) if (bytes[at] === 2) laneCodes.add(bytes[at + 1]);
      for (const table of mapTensorHeader(bytes, tensor.headerOffset).tables) flags.add(table.flag);
    }
    expect([...laneCodes].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...flags].sort()).toEqual([1, 2]);
  });
});

describe("invalid vectors", () => {
  it.each(manifest.invalid)("$file is rejected with $code", async (vector) => {
    if (vector.shards) {
      // A set: the full verifier checks the set file, every shard, then each shard against the set (spec §16.2).
      const path = pathOf("invalid", vector.file);
      const error = await outcome(() => verifyModel(path));
      expect(error, "verifyModel must reject").toBeInstanceOf(QansError);
      expect((error as QansError).code, (error as Error).message).toBe(vector.code);
      const randomAccess = await outcome(async () => readEverythingModel(await openModel(path)));
      expect(randomAccess, "the set reader must reject").toBeInstanceOf(QansError);
      return;
    }
    const bytes = load("invalid", vector.file);
    const error = await outcome(() => verifySource(new MemorySource(bytes)));
    expect(error, "verifySource must reject").toBeInstanceOf(QansError);
    expect((error as QansError).code, (error as Error).message).toBe(vector.code);

    // The full verifier checks every structure in the order of spec §12, so its code is exact. A
    // random-access reader checks fewer structures (the trailer, the index, the metadata frame and
    // the frames it reads, never the file header or padding outside frames) in a different order,
    // so the first check it fails can be a different one, or, for damage outside what it reads,
    // none at all: the SDK's rejects exactly the vectors marked detected_by_random_access.
    const randomAccess = await outcome(() => readEverything(bytes));
    if (vector.detected_by_random_access) expect(randomAccess, "the random-access reader must reject").toBeInstanceOf(QansError);
    else expect(randomAccess, "damage outside what the random-access reader reads").toBeUndefined();
  });
});

