import { beforeAll, describe, expect, it } from "vitest";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { QansError } from "../errors.js";
import type { ImportedModel } from "../tensor/tensor.js";
import { STORIES_PATH } from "../testing/fixtures.js";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { importModel } from "./detect.js";

function safetensors(name: string, bytes: number[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ [name]: { dtype: "U8", shape: [bytes.length], data_offsets: [0, bytes.length] } }));
  const out = new Uint8Array(8 + json.byteLength + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(bytes, 8 + json.byteLength);
  return out;
}

const summary = (m: ImportedModel) => ({ metadata: m.metadata, tensors: m.tensors.map((t) => [t.name, t.dtype, t.shape, [...t.data]]) });

const dir = useTempDir("qans-detect-");
beforeAll(async () => {
  await mkdir(join(dir(), "sharded"));
  await writeFile(join(dir(), "sharded", "model.safetensors.index.json"), JSON.stringify({ weight_map: { s: "part.safetensors" } }));
  await writeFile(join(dir(), "sharded", "part.safetensors"), safetensors("s", [1, 2]));
  await mkdir(join(dir(), "single"));
  await writeFile(join(dir(), "single", "model.safetensors"), safetensors("m", [3]));
  await writeFile(join(dir(), "weights.SafeTensors"), safetensors("w", [4, 5, 6]));
  await writeFile(join(dir(), "custom.index.json"), JSON.stringify({ weight_map: { s: "sharded/part.safetensors" } }));
  await writeFile(join(dir(), "shard-index.index.json"), JSON.stringify({ metadata: { v: 1 }, weight_map: { s: "part.safetensors" } }));
  await writeFile(join(dir(), "part.safetensors"), safetensors("s", [7, 8]));
  await writeFile(join(dir(), "tf.json"), JSON.stringify({ weightsManifest: [{ paths: ["tf.bin"], weights: [{ name: "t", shape: [1], dtype: "int32" }] }] }));
  await writeFile(join(dir(), "tf.bin"), new Uint8Array([9, 0, 0, 0]));
  await writeFile(join(dir(), "config.json"), JSON.stringify({ hidden_size: 64 }));
  await writeFile(join(dir(), "notes.txt"), "hello");
  await mkdir(join(dir(), "empty"));
  await copyFile(STORIES_PATH, join(dir(), "stories.bin"));
});

describe("importModel", () => {
  it("reads a folder with an index as sharded safetensors", async () => {
    expect(summary(await importModel(join(dir(), "sharded")))).toEqual({ metadata: {}, tensors: [["s", "U8", [2], [1, 2]]] });
  });

  it("reads a folder with model.safetensors as a single file", async () => {
    expect(summary(await importModel(join(dir(), "single")))).toEqual({ metadata: {}, tensors: [["m", "U8", [1], [3]]] });
  });

  it("reads *.index.json as a sharded index and *.safetensors as one file", async () => {
    expect(summary(await importModel(join(dir(), "shard-index.index.json")))).toEqual({ metadata: { v: "1" }, tensors: [["s", "U8", [2], [7, 8]]] });
    expect(summary(await importModel(join(dir(), "weights.SafeTensors")))).toEqual({ metadata: {}, tensors: [["w", "U8", [3], [4, 5, 6]]] });
    // An index may not point into subfolders.
    expect(await codeOfAsync(importModel(join(dir(), "custom.index.json")))).toBe("BAD_INPUT");
  });

  it("reads a TF.js model.json", async () => {
    expect(summary(await importModel(join(dir(), "tf.json")))).toEqual({ metadata: { source_format: "tfjs" }, tensors: [["t", "I32", [1], [9, 0, 0, 0]]] });
  });

  it("reads a llama2.c .bin checkpoint", async () => {
    const model = await importModel(join(dir(), "stories.bin"));
    expect(model.metadata).toEqual({ source_format: "llama2c" });
    expect(model.architecture?.family).toBe("llama");
    expect(model.tensors.length).toBe(47);
  });

  it("rejects anything else with BAD_INPUT naming the path", async () => {
    for (const name of ["config.json", "notes.txt", "empty"]) {
      const path = join(dir(), name);
      const error = await importModel(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QansError);
      expect((error as QansError).code).toBe("BAD_INPUT");
      expect((error as QansError).message).toContain(path);
    }
  });

  it("reports a missing path as IO_ERROR naming it", async () => {
    const path = join(dir(), "absent.safetensors");
    expect(await codeOfAsync(importModel(path))).toBe("IO_ERROR");
    await expect(importModel(path)).rejects.toThrow(path);
  });
});
