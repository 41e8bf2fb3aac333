import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MemorySource, QansError, QansReader, verifySource } from "../sdk/index.js";
import { sha256 } from "../sdk/testing/fixtures.js";
import { fileLayout } from "../sdk/testing/patch.js";
import { buildVectors, float32Bytes, hasFloat32View, mapTensorHeader, readEverything, type Manifest, type VectorFile } from "./vectors.js";

const here = new URL(".", import.meta.url);
const manifestText = readFileSync(new URL("manifest.json", here), "utf8");
const manifest = JSON.parse(manifestText) as Manifest;

const load = (kind: "valid" | "invalid", file: string) => new Uint8Array(readFileSync(new URL(`vectors/${kind}/${file}`, here)));
const committed = (kind: "valid" | "invalid") =>
  readdirSync(new URL(`vectors/${kind}/`, here))
    .filter((f) => f.endsWith(".qans"))
    .sort();

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

  it("are listed in a QANS 1.1 manifest, each file once", () => {
    expect(manifest.format).toBe("qans");
    expect(manifest.version).toBe("1.1");
    expect(manifest.valid.map((v) => v.file).sort()).toEqual(committed("valid"));
    expect(manifest.invalid.map((v) => v.file).sort()).toEqual(committed("invalid"));
  });
});

describe("valid vectors", () => {
  it.each(manifest.valid)("$file verifies and decodes to the manifest's hashes", async (vector) => {
    const bytes = load("valid", vector.file);
    const report = await verifySource(new MemorySource(bytes));
    expect(report.tensors.map((t) => t.name)).toEqual(vector.tensors.map((t) => t.name));

    const reader = await QansReader.open(new MemorySource(bytes));
    await reader.metadata();
    expect(reader.entries.map(({ name, dtype, shape, encoding }) => ({ name, dtype, shape, encoding }))).toEqual(
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
    const bytes = load("invalid", vector.file);
    const error = await outcome(() => verifySource(new MemorySource(bytes)));
    expect(error, "verifySource must reject").toBeInstanceOf(QansError);
    expect((error as QansError).code, (error as Error).message).toBe(vector.code);

    // The full verifier checks every structure in the order of spec §12, so its code is exact. A
    // random-access reader checks fewer structures (the trailer, the index and the frames it reads,
    // never the file header or padding outside frames) in a different order, so the first check it
    // fails can be a different one, or, for damage confined to the file header, none at all.
    const randomAccess = await outcome(() => readEverything(bytes));
    if (randomAccess !== undefined) expect(randomAccess, String(randomAccess)).toBeInstanceOf(QansError);
    if (vector.detected_by_random_access) expect(randomAccess, "the random-access reader must reject").toBeInstanceOf(QansError);
  });
});
