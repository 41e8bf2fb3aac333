import { describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { elementCount } from "../tensor/tensor.js";
import { DEMO_MODEL_PATH, sameBytes } from "../testing/fixtures.js";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { importTfjs } from "./tfjs.js";

const seq = (n: number, salt = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + salt) & 255);

const dir = useTempDir("qans-tfjs-");

/** Writes model.json and its shards into a fresh folder; returns the model.json path. */
async function model(manifest: unknown, shards: Record<string, Uint8Array>, extra: object = {}): Promise<string> {
  const folder = await mkdtemp(join(dir(), "m-"));
  for (const [name, bytes] of Object.entries(shards)) {
    await mkdir(dirname(join(folder, name)), { recursive: true });
    await writeFile(join(folder, name), bytes);
  }
  const path = join(folder, "model.json");
  await writeFile(path, typeof manifest === "string" ? manifest : JSON.stringify({ modelTopology: {}, ...extra, weightsManifest: manifest }));
  return path;
}

describe("importTfjs on the demo embedding model", () => {
  it("imports all 61 weights in manifest order with the right bytes", async () => {
    const json = JSON.parse(await readFile(DEMO_MODEL_PATH, "utf8"));
    const group = json.weightsManifest[0];
    const stream = Buffer.concat(await Promise.all(group.paths.map((p: string) => readFile(join(dirname(DEMO_MODEL_PATH), p)))));
    const imported = await importTfjs(DEMO_MODEL_PATH);
    expect(imported.metadata).toEqual({ source_format: "tfjs" });
    expect(imported.architecture).toBeUndefined();
    expect(imported.tensors.length).toBe(61);
    expect(imported.tensors.reduce((sum, t) => sum + elementCount(t.shape), 0)).toBe(6_975_914);
    expect(imported.tensors.filter((t) => t.dtype === "F32").length).toBe(35);
    expect(imported.tensors.filter((t) => t.dtype === "I32").length).toBe(26);
    let offset = 0;
    let spansShards = 0;
    const shardSize = 4 * 1024 * 1024;
    imported.tensors.forEach((t, i) => {
      const spec = group.weights[i];
      expect([t.name, t.shape, t.dtype]).toEqual([spec.name, spec.shape, spec.dtype === "float32" ? "F32" : "I32"]);
      expect(sameBytes(t.data, stream.subarray(offset, offset + t.data.byteLength))).toBe(true);
      if (Math.floor(offset / shardSize) !== Math.floor((offset + t.data.byteLength - 1) / shardSize)) spansShards++;
      offset += t.data.byteLength;
    });
    expect(offset).toBe(stream.byteLength);
    expect(spansShards).toBeGreaterThan(0);
  });
});

describe("importTfjs on synthetic models", () => {
  it("slices weights across shard boundaries and groups", async () => {
    const weights = [
      { name: "a", shape: [3], dtype: "float32" },
      { name: "b", shape: [2, 2], dtype: "int32" },
      { name: "c", shape: [5], dtype: "bool" },
      { name: "z", shape: [0, 4], dtype: "float32" },
    ];
    const g1 = seq(33);
    const path = await model(
      [
        { paths: ["w/group1-shard1of3.bin", "w/group1-shard2of3.bin", "w/group1-shard3of3.bin"], weights },
        { paths: ["group2-shard1of1.bin"], weights: [{ name: "d", shape: [], dtype: "int32" }] },
        { paths: [], weights: [] },
      ],
      {
        "w/group1-shard1of3.bin": g1.subarray(0, 10),
        "w/group1-shard2of3.bin": g1.subarray(10, 10),
        "w/group1-shard3of3.bin": g1.subarray(10),
        "group2-shard1of1.bin": seq(4, 7),
      },
    );
    const imported = await importTfjs(path);
    expect(imported.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ["a", "F32", [3]],
      ["b", "I32", [2, 2]],
      ["c", "BOOL", [5]],
      ["z", "F32", [0, 4]],
      ["d", "I32", []],
    ]);
    expect(imported.tensors[0].data).toEqual(g1.subarray(0, 12));
    expect(imported.tensors[1].data).toEqual(g1.subarray(12, 28));
    expect(imported.tensors[2].data).toEqual(g1.subarray(28, 33));
    expect(imported.tensors[3].data.byteLength).toBe(0);
    expect(imported.tensors[4].data).toEqual(seq(4, 7));
  });

  const one = (weight: object, bytes = 4) =>
    model([{ paths: ["s.bin"], weights: [weight] }], { "s.bin": seq(bytes) });

  it("checks shard byte counts exactly", async () => {
    const weights = [{ name: "a", shape: [4], dtype: "float32" }];
    const short = await model([{ paths: ["s1", "s2"], weights }], { s1: seq(8), s2: seq(7) });
    expect(await codeOfAsync(importTfjs(short))).toBe("TRUNCATED");
    await expect(importTfjs(short)).rejects.toThrow(/weights need 16 bytes but the shards hold 15/);
    const long = await model([{ paths: ["s1", "s2"], weights }], { s1: seq(8), s2: seq(9) });
    expect(await codeOfAsync(importTfjs(long))).toBe("BAD_INPUT");
    const missing = await model([{ paths: ["s1", "s2"], weights }], { s1: seq(8) });
    expect(await codeOfAsync(importTfjs(missing))).toBe("IO_ERROR");
    await expect(importTfjs(missing)).rejects.toThrow(/s2/);
  });

  it("rejects quantized weights and unsupported dtypes", async () => {
    expect(await codeOfAsync(importTfjs(await one({ name: "q", shape: [4], dtype: "float32", quantization: { dtype: "uint8", min: 0, scale: 1 } })))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await one({ name: "q", shape: [4], dtype: "float32", quantization: null })))).toBe("BAD_INPUT");
    for (const dtype of ["string", "complex64", "float16", "uint8", 1]) {
      expect([dtype, await codeOfAsync(importTfjs(await one({ name: "x", shape: [1], dtype })))]).toEqual([dtype, "BAD_DTYPE"]);
    }
  });

  it("rejects shard paths that leave the model folder", async () => {
    for (const p of ["../s.bin", "a/../../s.bin", "/etc/passwd", "a\\..\\s.bin", "http://host/s.bin", "C:s.bin", "", ".", "sub/..", 5]) {
      const path = await model([{ paths: [p], weights: [] }], {});
      expect([p, await codeOfAsync(importTfjs(path))]).toEqual([p, "BAD_INPUT"]);
    }
  });

  it("rejects duplicate weight names within and across groups", async () => {
    const w = { name: "a", shape: [1], dtype: "int32" };
    const within = await model([{ paths: ["s"], weights: [w, w] }], { s: seq(8) });
    expect(await codeOfAsync(importTfjs(within))).toBe("DUPLICATE_NAME");
    const across = await model([{ paths: ["s"], weights: [w] }, { paths: ["t"], weights: [w] }], { s: seq(4), t: seq(4) });
    expect(await codeOfAsync(importTfjs(across))).toBe("DUPLICATE_NAME");
  });

  it("rejects malformed manifests", async () => {
    expect(await codeOfAsync(importTfjs(await model('{"modelTopology":{}}', {})))).toBe("BAD_INPUT");
    await expect(importTfjs(await model('{"modelTopology":{}}', {}))).rejects.toThrow(/model\.json: not a TF\.js model/);
    expect(await codeOfAsync(importTfjs(await model('{"weightsManifest":{}}', {})))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await model('{"weightsManifest":[],}', {})))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await model('{"weightsManifest":[],"weightsManifest":[]}', {})))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await model([{ paths: "s", weights: [] }], {})))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await model([{ paths: [] }], {})))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await model([5], {})))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await one({ shape: [1], dtype: "int32" })))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await one([])))).toBe("BAD_INPUT");
    expect(await codeOfAsync(importTfjs(await one({ name: "a", shape: [-1], dtype: "int32" })))).toBe("BAD_SHAPE");
    expect(await codeOfAsync(importTfjs(await one({ name: "a", shape: "4", dtype: "int32" })))).toBe("BAD_SHAPE");
    expect(await codeOfAsync(importTfjs(await one({ name: "a", shape: [2 ** 30, 2 ** 30], dtype: "int32" })))).toBe("LIMIT_EXCEEDED");
    const badUtf8 = await model("", {});
    await writeFile(badUtf8, new Uint8Array([0x7b, 0x22, 0xc3, 0x22, 0x3a, 0x31, 0x7d]));
    expect(await codeOfAsync(importTfjs(badUtf8))).toBe("BAD_UTF8");
    expect(await codeOfAsync(importTfjs(join(dir(), "nope", "model.json")))).toBe("IO_ERROR");
  });
});
