import { describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseSafetensorsMetadata } from "@huggingface/hub";
import { QansError } from "../errors.js";
import { importLlama2c } from "../import/llama2c.js";
import { importSafetensors, importSafetensorsIndex, parseSafetensorsHeader } from "../import/safetensors.js";
import { dtypeSize, type DType } from "../tensor/dtype.js";
import { elementCount, type TensorData } from "../tensor/tensor.js";
import { STORIES_PATH, sameBytes } from "../testing/fixtures.js";
import { codeOfAsync } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { useTempDir } from "../testing/temp-dir.js";
import { encodeSafetensorsHeader, writeSafetensors, type TensorLayout } from "./safetensors.js";

const random = new Random(1);

function tensor(name: string, dtype: DType, shape: number[]): TensorData {
  return { name, dtype, shape, data: random.bytes(elementCount(shape) * dtypeSize(dtype)) };
}

/**
 * A fetch that serves files from memory the way the Hub does: HEAD, whole-file GET, and
 * `Range: bytes=a-b` GETs answered with 206 and Content-Range.
 */
function hubFetch(files: Record<string, Uint8Array>): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const name = decodeURIComponent(url.pathname.split("/resolve/main/")[1] ?? "");
    const file = files[name];
    if (file === undefined) return new Response("not found", { status: 404 });
    const headers = { etag: `"${name}"`, "content-type": "application/octet-stream" };
    if ((init?.method ?? "GET").toUpperCase() === "HEAD") {
      return new Response(null, { status: 200, headers: { ...headers, "content-length": String(file.byteLength) } });
    }
    const range = new Headers(init?.headers).get("range");
    if (range === null) return new Response(file.slice(), { status: 200, headers });
    const match = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (match === null) return new Response("bad range", { status: 416 });
    const start = Number(match[1]);
    const end = Math.min(match[2] === "" ? file.byteLength - 1 : Number(match[2]), file.byteLength - 1);
    return new Response(file.slice(start, end + 1), {
      status: 206,
      headers: { ...headers, "content-range": `bytes ${start}-${end}/${file.byteLength}` },
    });
  };
}

async function hubHeader(bytes: Uint8Array) {
  const result = await parseSafetensorsMetadata({ repo: "user/model", path: "model.safetensors", fetch: hubFetch({ "model.safetensors": bytes }) });
  expect(result.sharded).toBe(false);
  return (result as { header: Record<string, unknown> }).header;
}

/** Checks that a header the Hub's parser returned matches ours on every tensor, offset and metadata entry. */
function expectSameHeader(hub: Record<string, unknown>, bytes: Uint8Array) {
  const ours = parseSafetensorsHeader(bytes, bytes.byteLength, "written");
  const { __metadata__, ...entries } = hub;
  expect(__metadata__ ?? {}).toEqual(ours.metadata);
  expect(Object.keys(entries).sort()).toEqual(ours.tensors.map((t) => t.name).sort());
  for (const t of ours.tensors) expect(entries[t.name]).toEqual({ dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] });
}

async function expectHubAgrees(bytes: Uint8Array) {
  expectSameHeader(await hubHeader(bytes), bytes);
}

const dir = useTempDir("qans-export-");

describe("encodeSafetensorsHeader", () => {
  it("pads the JSON with spaces to a multiple of 8 and lays tensors out back to back in order", () => {
    for (let nameLength = 1; nameLength <= 16; nameLength++) {
      const tensors = [
        { name: "x".repeat(nameLength), dtype: "F32" as const, shape: [2, 3], byteLength: 24 },
        { name: "10", dtype: "U8" as const, shape: [5], byteLength: 5 },
        { name: "2", dtype: "BF16" as const, shape: [], byteLength: 2 },
      ];
      const bytes = encodeSafetensorsHeader(tensors);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(bytes.byteLength).toBe(8 + n);
      expect(n % 8).toBe(0);
      const text = new TextDecoder().decode(bytes.subarray(8));
      const json = text.trimEnd();
      expect(text.slice(json.length)).toMatch(/^ {0,7}$/);
      expect(JSON.parse(json)).toEqual({
        [tensors[0].name]: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
        "10": { dtype: "U8", shape: [5], data_offsets: [24, 29] },
        "2": { dtype: "BF16", shape: [], data_offsets: [29, 31] },
      });
      // Integer-like names keep their given place rather than moving first.
      expect(json.indexOf(`"${tensors[0].name}"`)).toBeLessThan(json.indexOf('"10"'));
      expect(json.indexOf('"10"')).toBeLessThan(json.indexOf('"2"'));
      expect(json).not.toContain("__metadata__");
    }
  });

  it("includes __metadata__ only when there is metadata", () => {
    const text = (metadata: Record<string, string>) => new TextDecoder().decode(encodeSafetensorsHeader([], metadata).subarray(8)).trimEnd();
    expect(text({})).toBe("{}");
    expect(JSON.parse(text({ format: "pt", "a\"b": "ü\n" }))).toEqual({ __metadata__: { format: "pt", "a\"b": "ü\n" } });
  });

  it("rejects inconsistent input", async () => {
    const t = { name: "a", dtype: "F32" as DType, shape: [2], byteLength: 8 };
    expect(await codeOfAsync(() => encodeSafetensorsHeader([t, t]))).toBe("DUPLICATE_NAME");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([{ ...t, byteLength: 7 }]))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([{ ...t, name: "__metadata__" }]))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([{ ...t, dtype: "Q4" as DType }]))).toBe("BAD_DTYPE");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([{ ...t, shape: [-2] }]))).toBe("BAD_SHAPE");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([{ ...t, shape: [1.5] }]))).toBe("BAD_SHAPE");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([{ ...t, shape: [1, 1, 1, 1, 1, 1, 1, 1, 2] }]))).toBe("LIMIT_EXCEEDED");
    expect(await codeOfAsync(() => encodeSafetensorsHeader([t], { k: 1 as unknown as string }))).toBe("INVALID_ARGUMENT");
  });
});

describe("writeSafetensors", () => {
  const mixed = () => [
    tensor("embed.weight", "F32", [7, 5]),
    tensor("10", "BF16", [3, 1, 2]),
    tensor("scalar", "F64", []),
    tensor("empty", "I32", [0, 9]),
    tensor("flags", "BOOL", [11]),
    tensor("u64", "U64", [2]),
    tensor("f8", "F8_E4M3", [13]),
    tensor("ünï", "I16", [3]),
  ];

  it("writes files the Hugging Face parser reads identically and that round-trip bit-exactly", async () => {
    const tensors = mixed();
    const metadata = { format: "pt", source: "test" };
    const path = join(dir(), "mixed.safetensors");
    await writeSafetensors(path, tensors, metadata);
    const bytes = new Uint8Array(await readFile(path));
    await expectHubAgrees(bytes);
    const back = await importSafetensors(path);
    expect(back.metadata).toEqual(metadata);
    expect(back.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(tensors.map((t) => [t.name, t.dtype, t.shape]));
    back.tensors.forEach((t, i) => expect(sameBytes(t.data, tensors[i].data)).toBe(true));
    const header = parseSafetensorsHeader(bytes, bytes.byteLength, path);
    expect(header.dataStart % 8).toBe(0);
    expect(sameBytes(bytes.subarray(0, header.dataStart), encodeSafetensorsHeader(tensors.map((t) => ({ ...t, byteLength: t.data.byteLength })), metadata))).toBe(true);
  });

  it("round-trips the stories260K model", async () => {
    const model = await importLlama2c(STORIES_PATH);
    const path = join(dir(), "stories.safetensors");
    await writeSafetensors(path, model.tensors, model.metadata);
    await expectHubAgrees(new Uint8Array(await readFile(path)));
    const back = await importSafetensors(path);
    expect(back.metadata).toEqual({ source_format: "llama2c" });
    expect(back.tensors.map((t) => [t.name, t.shape])).toEqual(model.tensors.map((t) => [t.name, t.shape]));
    back.tensors.forEach((t, i) => expect(sameBytes(t.data, model.tensors[i].data)).toBe(true));
  });

  it("streams tensors from an async iterable given the layout, producing the same file", async () => {
    const tensors = mixed();
    const layout: TensorLayout[] = tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape: [...shape] }));
    async function* source() {
      for (const t of tensors) yield t;
    }
    const fromArray = join(dir(), "array.safetensors");
    const fromStream = join(dir(), "stream.safetensors");
    await writeSafetensors(fromArray, tensors, { k: "v" });
    await writeSafetensors(fromStream, source(), { k: "v" }, layout);
    expect(sameBytes(new Uint8Array(await readFile(fromStream)), new Uint8Array(await readFile(fromArray)))).toBe(true);
  });

  it("rejects tensors that do not match the layout and leaves no file behind", async () => {
    const tensors = mixed().slice(0, 3);
    const layout: TensorLayout[] = tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    const folder = await mkdtemp(join(dir(), "fail-"));
    const path = join(folder, "out.safetensors");
    async function* yielding(list: TensorData[]) {
      for (const t of list) yield t;
    }
    const cases: [string, AsyncIterable<TensorData> | TensorData[] | Iterable<TensorData>, TensorLayout[] | undefined][] = [
      ["no layout", yielding(tensors), undefined],
      ["renamed", yielding([{ ...tensors[0], name: "other" }, ...tensors.slice(1)]), layout],
      ["retyped", yielding([{ ...tensors[0], dtype: "I32" }, ...tensors.slice(1)]), layout],
      ["reshaped", yielding([{ ...tensors[0], shape: [5, 7] }, ...tensors.slice(1)]), layout],
      ["short data", yielding([{ ...tensors[0], data: tensors[0].data.subarray(1) }, ...tensors.slice(1)]), layout],
      ["too few", yielding(tensors.slice(0, 2)), layout],
      ["too many", yielding([...tensors, tensor("extra", "U8", [1])]), layout],
      ["bad array data", [{ ...tensors[0], data: new Uint8Array(3) }], undefined],
      ["not a tensor", [null as unknown as TensorData], [layout[0]]],
    ];
    for (const [label, source, plan] of cases) {
      expect([label, await codeOfAsync(writeSafetensors(path, source, {}, plan))]).toEqual([label, "INVALID_ARGUMENT"]);
      expect(await readdir(folder)).toEqual([]);
    }
    const duplicated = [tensors[0], tensors[0]];
    expect(await codeOfAsync(writeSafetensors(path, duplicated))).toBe("DUPLICATE_NAME");
    async function* broken() {
      yield tensors[0];
      throw new Error("upstream failure");
    }
    expect(await codeOfAsync(writeSafetensors(path, broken(), {}, layout))).toBe("IO_ERROR");
    expect(await readdir(folder)).toEqual([]);
  });

  it("replaces an existing file only when the write succeeds", async () => {
    const path = join(dir(), "replace.safetensors");
    await writeFile(path, "previous");
    const tensors = mixed();
    await expect(writeSafetensors(path, [{ ...tensors[0], data: new Uint8Array(1) }])).rejects.toBeInstanceOf(QansError);
    expect(await readFile(path, "utf8")).toBe("previous");
    await writeSafetensors(path, tensors);
    expect((await importSafetensors(path)).tensors.length).toBe(tensors.length);
  });

  it("writes shards that the Hugging Face parser and our index importer agree on", async () => {
    const folder = await mkdtemp(join(dir(), "sharded-"));
    const tensors = mixed();
    const shards = { "model-00001-of-00002.safetensors": tensors.slice(0, 4), "model-00002-of-00002.safetensors": tensors.slice(4) };
    const files: Record<string, Uint8Array> = {};
    const weightMap: Record<string, string> = {};
    for (const [name, list] of Object.entries(shards)) {
      await writeSafetensors(join(folder, name), list, { format: "pt" });
      files[name] = new Uint8Array(await readFile(join(folder, name)));
      for (const t of list) weightMap[t.name] = name;
    }
    const index = JSON.stringify({ metadata: { total_size: 123 }, weight_map: weightMap });
    await writeFile(join(folder, "model.safetensors.index.json"), index);
    files["model.safetensors.index.json"] = new TextEncoder().encode(index);
    const hub = await parseSafetensorsMetadata({ repo: "user/model", path: "model.safetensors.index.json", fetch: hubFetch(files) });
    expect(hub.sharded).toBe(true);
    const ours = await importSafetensorsIndex(join(folder, "model.safetensors.index.json"));
    expect(ours.metadata).toEqual({ total_size: "123" });
    const headers = (hub as { headers: Record<string, Record<string, unknown>> }).headers;
    expect(Object.keys(headers).sort()).toEqual(Object.keys(shards));
    for (const shard of Object.keys(shards)) expectSameHeader(headers[shard], files[shard]);
    expect(ours.tensors.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
    ours.tensors.forEach((t, i) => expect(sameBytes(t.data, tensors[i].data)).toBe(true));
  });
});
