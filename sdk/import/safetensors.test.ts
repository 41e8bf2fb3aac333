import { describe, expect, it } from "vitest";
import { safetensorsBytes, sequenceBytes } from "../testing/safetensors-bytes.js";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { importSafetensors, importSafetensorsIndex, parseSafetensorsHeader } from "./safetensors.js";

const st = safetensorsBytes;

const parse = (file: Uint8Array) => parseSafetensorsHeader(file, file.byteLength, "test.safetensors");
const parseCode = (file: Uint8Array) => codeOfAsync(() => parse(file));
const seq = sequenceBytes;

/** Two F32 tensors and a U8 one, listed out of data order, with metadata. */
const GOOD_HEADER = {
  b: { dtype: "F32", shape: [2, 2], data_offsets: [6, 22] },
  __metadata__: { format: "pt", note: "ünïcode" },
  a: { dtype: "U8", shape: [6], data_offsets: [0, 6] },
  c: { dtype: "BF16", shape: [], data_offsets: [22, 24] },
  empty: { dtype: "F64", shape: [3, 0], data_offsets: [24, 24] },
};
const GOOD = st(GOOD_HEADER, seq(24));

const dir = useTempDir("qans-st-", { each: true });

async function save(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir(), name);
  await writeFile(path, bytes);
  return path;
}

describe("parseSafetensorsHeader", () => {
  it("returns tensors in data order with their metadata", () => {
    const header = parse(GOOD);
    const n = new TextEncoder().encode(JSON.stringify(GOOD_HEADER)).byteLength;
    expect(header.headerLength).toBe(n);
    expect(header.dataStart).toBe(8 + n);
    expect(header.metadata).toEqual({ format: "pt", note: "ünïcode" });
    expect(header.tensors).toEqual([
      { name: "a", dtype: "U8", shape: [6], begin: 0, end: 6 },
      { name: "b", dtype: "F32", shape: [2, 2], begin: 6, end: 22 },
      { name: "c", dtype: "BF16", shape: [], begin: 22, end: 24 },
      { name: "empty", dtype: "F64", shape: [3, 0], begin: 24, end: 24 },
    ]);
  });

  it("accepts every listed dtype, bigint file sizes and whitespace padding after the JSON", () => {
    const sizes: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8, F8_E4M3: 1, F8_E5M2: 1 };
    let offset = 0;
    const header: Record<string, object> = {};
    for (const [dtype, size] of Object.entries(sizes)) {
      header[`t_${dtype}`] = { dtype, shape: [3], data_offsets: [offset, offset + 3 * size] };
      offset += 3 * size;
    }
    const file = st(JSON.stringify(header) + "   \n\t ", seq(offset));
    const parsed = parseSafetensorsHeader(file, BigInt(file.byteLength), "all.safetensors");
    expect(parsed.tensors.map((t) => t.dtype)).toEqual(Object.keys(sizes));
    expect(parsed.metadata).toEqual({});
  });

  it("accepts an empty file with no tensors and unusual names", () => {
    expect(parse(st({})).tensors).toEqual([]);
    const odd = parse(st({ __proto__: 1 } as object));
    expect(odd.tensors).toEqual([]);
    const named = parse(st('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}', seq(1)));
    expect(named.tensors.map((t) => t.name)).toEqual(["__proto__", ""]);
  });

  it("reports truncation at every cut point as TRUNCATED", async () => {
    for (let cut = 0; cut < GOOD.byteLength; cut++) {
      const file = GOOD.subarray(0, cut);
      expect([cut, await parseCode(file)]).toEqual([cut, "TRUNCATED"]);
    }
    // Cutting only the data section and keeping the real size in the prefix is TRUNCATED too.
    expect(await codeOfAsync(() => parseSafetensorsHeader(GOOD, GOOD.byteLength - 1, "x"))).toBe("TRUNCATED");
  });

  it("enforces the header length limit before anything else", async () => {
    expect(await parseCode(st({}, new Uint8Array(0), 100_000_001n))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(st({}, new Uint8Array(0), 2n ** 64n - 1n))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(st({}, new Uint8Array(0), 2n ** 53n + 1n))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(st({}, new Uint8Array(0), 100_000_000n))).toBe("TRUNCATED");
    expect(() => parse(st({}, new Uint8Array(0), 100_000_001n))).toThrow(/test\.safetensors: header length 100000001/);
  });

  it("rejects trailing bytes after the last tensor", async () => {
    const file = st(GOOD_HEADER, seq(25));
    expect(await parseCode(file)).toBe("OFFSET_OUT_OF_RANGE");
    expect(await parseCode(st({}, seq(1)))).toBe("OFFSET_OUT_OF_RANGE");
  });

  it("rejects gaps, overlaps and a first tensor not at zero", async () => {
    const gap = { a: { dtype: "U8", shape: [2], data_offsets: [0, 2] }, b: { dtype: "U8", shape: [2], data_offsets: [3, 5] } };
    expect(await parseCode(st(gap, seq(5)))).toBe("OFFSET_OUT_OF_RANGE");
    expect(() => parse(st(gap, seq(5)))).toThrow(/tensor "b" starts at data offset 3 .*gap/);
    const overlap = { a: { dtype: "U8", shape: [3], data_offsets: [0, 3] }, b: { dtype: "U8", shape: [2], data_offsets: [2, 4] } };
    expect(await parseCode(st(overlap, seq(4)))).toBe("OFFSET_OUT_OF_RANGE");
    const late = { a: { dtype: "U8", shape: [2], data_offsets: [1, 3] } };
    expect(await parseCode(st(late, seq(3)))).toBe("OFFSET_OUT_OF_RANGE");
    const same = { a: { dtype: "U8", shape: [2], data_offsets: [0, 2] }, b: { dtype: "U8", shape: [2], data_offsets: [0, 2] } };
    expect(await parseCode(st(same, seq(2)))).toBe("OFFSET_OUT_OF_RANGE");
    const backwards = { a: { dtype: "U8", shape: [0], data_offsets: [2, 0] } };
    expect(await parseCode(st(backwards, seq(2)))).toBe("OFFSET_OUT_OF_RANGE");
  });

  it("keeps u64 offsets above 2^53 exact", async () => {
    const text = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[9007199254740993,9007199254740997]}}';
    expect(await parseCode(st(text, seq(4)))).toBe("OFFSET_OUT_OF_RANGE");
    expect(() => parse(st(text, seq(4)))).toThrow(/data offset 9007199254740993 /);
    const end = '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}';
    expect(() => parse(st(end, seq(4)))).toThrow(/18446744073709551615/);
    // A byte count whose difference only looks right after rounding to a double.
    const rounded = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[9007199254740992,9007199254740992]}}';
    expect(await parseCode(st(rounded))).toBe("BAD_SHAPE");
  });

  it("rejects a byte range that does not match dtype and shape", async () => {
    const wrong = { a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } };
    expect(await parseCode(st(wrong, seq(20)))).toBe("BAD_SHAPE");
    expect(() => parse(st(wrong, seq(20)))).toThrow(/tensor "a".*20 bytes.*needs 24/);
  });

  it("rejects bad shapes and enforces rank and size limits", async () => {
    const withShape = (shape: unknown) => st({ a: { dtype: "U8", shape, data_offsets: [0, 0] } });
    expect(await parseCode(withShape([-1]))).toBe("BAD_SHAPE");
    expect(await parseCode(withShape([1.5]))).toBe("BAD_SHAPE");
    expect(await parseCode(withShape(["2"]))).toBe("BAD_SHAPE");
    expect(await parseCode(withShape(4))).toBe("BAD_SHAPE");
    expect(await parseCode(withShape(null))).toBe("BAD_SHAPE");
    expect(await parseCode(withShape([1, 1, 1, 1, 1, 1, 1, 1, 0]))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(withShape([0, 2 ** 48 + 1]))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(withShape([2 ** 24, 2 ** 24 + 1]))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(st('{"a":{"dtype":"U8","shape":[0,99999999999999999999],"data_offsets":[0,0]}}'))).toBe("LIMIT_EXCEEDED");
    expect(await parseCode(withShape([1, 1, 1, 1, 1, 1, 1, 0]))).toBe("no error");
  });

  it("rejects malformed entries", async () => {
    const entry = (value: unknown) => st({ a: value });
    expect(await parseCode(entry({ dtype: "F4", shape: [0], data_offsets: [0, 0] }))).toBe("BAD_DTYPE");
    expect(await parseCode(entry({ dtype: "C64", shape: [0], data_offsets: [0, 0] }))).toBe("BAD_DTYPE");
    expect(await parseCode(entry({ dtype: "f32", shape: [0], data_offsets: [0, 0] }))).toBe("BAD_DTYPE");
    expect(await parseCode(entry({ dtype: 1, shape: [0], data_offsets: [0, 0] }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ shape: [0], data_offsets: [0, 0] }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ dtype: "U8", shape: [0], data_offsets: [0, 0], extra: 1 }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ dtype: "U8", shape: [0], data_offsets: [0] }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ dtype: "U8", shape: [0], data_offsets: [0, 0, 0] }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ dtype: "U8", shape: [0], data_offsets: [-1, 0] }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ dtype: "U8", shape: [0], data_offsets: [0, 0.5] }))).toBe("BAD_INPUT");
    expect(await parseCode(entry({ dtype: "U8", shape: [0], data_offsets: "0,0" }))).toBe("BAD_INPUT");
    expect(await parseCode(entry([]))).toBe("BAD_INPUT");
    expect(await parseCode(entry("U8"))).toBe("BAD_INPUT");
  });

  it("rejects headers that are not a strict JSON object", async () => {
    expect(await parseCode(st(""))).toBe("BAD_INPUT");
    expect(await parseCode(st("[]"))).toBe("BAD_INPUT");
    expect(await parseCode(st("null"))).toBe("BAD_INPUT");
    expect(await parseCode(st("{} x"))).toBe("BAD_INPUT");
    expect(await parseCode(st("{,}"))).toBe("BAD_INPUT");
    expect(await parseCode(st("\ufeff{}"))).toBe("BAD_INPUT");
    expect(await parseCode(st("{}\u0000"))).toBe("BAD_INPUT");
    expect(await parseCode(st(`{"m":${"[".repeat(100)}${"]".repeat(100)}}`))).toBe("BAD_INPUT");
    const dup = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    expect(await parseCode(st(dup, seq(1)))).toBe("BAD_INPUT");
    expect(() => parse(st(dup, seq(1)))).toThrow(/test\.safetensors: header at offset 8: duplicate key "a"/);
    const dupInEntry = '{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    expect(await parseCode(st(dupInEntry, seq(1)))).toBe("BAD_INPUT");
  });

  it("rejects invalid UTF-8 in the header", async () => {
    const text = new TextEncoder().encode('{"__metadata__":{"k":"v?"}}');
    text[text.indexOf(0x3f)] = 0xff;
    expect(await parseCode(st(text))).toBe("BAD_UTF8");
    const overlong = new TextEncoder().encode('{"??":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}');
    overlong.set([0xc0, 0xaf], 2);
    expect(await parseCode(st(overlong))).toBe("BAD_UTF8");
  });

  it("requires __metadata__ to map strings to strings", async () => {
    expect(await parseCode(st({ __metadata__: { a: 1 } }))).toBe("BAD_METADATA");
    expect(await parseCode(st({ __metadata__: { a: { b: "c" } } }))).toBe("BAD_METADATA");
    expect(await parseCode(st({ __metadata__: ["a"] }))).toBe("BAD_METADATA");
    expect(await parseCode(st({ __metadata__: null }))).toBe("BAD_METADATA");
    expect(await parseCode(st({ __metadata__: "x" }))).toBe("BAD_METADATA");
    const proto = parse(st('{"__metadata__":{"__proto__":"p"}}'));
    expect(Object.keys(proto.metadata)).toEqual(["__proto__"]);
    expect(proto.metadata.__proto__).toBe("p");
  });

  it("refuses a prefix shorter than the header it declares", async () => {
    expect(await codeOfAsync(() => parseSafetensorsHeader(GOOD.subarray(0, 20), GOOD.byteLength, "x"))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => parseSafetensorsHeader(GOOD.subarray(0, 4), GOOD.byteLength, "x"))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => parseSafetensorsHeader(GOOD, -1, "x"))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => parseSafetensorsHeader(GOOD, 1.5, "x"))).toBe("INVALID_ARGUMENT");
  });
});

describe("importSafetensors", () => {
  it("reads every tensor's bytes in data order", async () => {
    const data = seq(24);
    const model = await importSafetensors(await save("good.safetensors", st(GOOD_HEADER, data)));
    expect(model.metadata).toEqual({ format: "pt", note: "ünïcode" });
    expect(model.architecture).toBeUndefined();
    expect(model.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ["a", "U8", [6]],
      ["b", "F32", [2, 2]],
      ["c", "BF16", []],
      ["empty", "F64", [3, 0]],
    ]);
    expect(model.tensors[0].data).toEqual(data.subarray(0, 6));
    expect(model.tensors[1].data).toEqual(data.subarray(6, 22));
    expect(model.tensors[2].data).toEqual(data.subarray(22, 24));
    expect(model.tensors[3].data.byteLength).toBe(0);
  });

  it("reports damaged files with the same codes as the pure parser", async () => {
    for (const cut of [0, 4, 7, 8, 30, GOOD.byteLength - 24, GOOD.byteLength - 1]) {
      const path = await save(`cut${cut}.safetensors`, GOOD.subarray(0, cut));
      expect([cut, await codeOfAsync(() => importSafetensors(path))]).toEqual([cut, "TRUNCATED"]);
    }
    const huge = await save("huge.safetensors", st({}, new Uint8Array(0), 2n ** 62n));
    expect(await codeOfAsync(() => importSafetensors(huge))).toBe("LIMIT_EXCEEDED");
    const long = await save("long.safetensors", st({}, new Uint8Array(0), 99_999_999n));
    expect(await codeOfAsync(() => importSafetensors(long))).toBe("TRUNCATED");
    await expect(importSafetensors(long)).rejects.toThrow(/long\.safetensors: header of 99999999 bytes/);
  });

  it("maps file-system failures to QansErrors", async () => {
    expect(await codeOfAsync(() => importSafetensors(join(dir(), "missing.safetensors")))).toBe("IO_ERROR");
    await expect(importSafetensors(join(dir(), "missing.safetensors"))).rejects.toThrow(/missing\.safetensors/);
    expect(await codeOfAsync(() => importSafetensors(dir()))).toBe("BAD_INPUT");
  });
});

describe("importSafetensorsIndex", () => {
  const shard1 = st({ "w.0": { dtype: "F32", shape: [2], data_offsets: [0, 8] }, "w.1": { dtype: "U8", shape: [3], data_offsets: [8, 11] } }, seq(11));
  const shard2 = st({ __metadata__: { format: "pt" }, "w.2": { dtype: "I16", shape: [1, 2], data_offsets: [0, 4] } }, seq(4));
  const weightMap = { "w.0": "model-00001-of-00002.safetensors", "w.1": "model-00001-of-00002.safetensors", "w.2": "model-00002-of-00002.safetensors" };

  async function sharded(index: unknown, shards: Record<string, Uint8Array> = { "model-00001-of-00002.safetensors": shard1, "model-00002-of-00002.safetensors": shard2 }) {
    const folder = await mkdtemp(join(dir(), "model-"));
    for (const [name, bytes] of Object.entries(shards)) await writeFile(join(folder, name), bytes);
    const path = join(folder, "model.safetensors.index.json");
    await writeFile(path, typeof index === "string" || index instanceof Uint8Array ? index : JSON.stringify(index));
    return path;
  }

  it("imports every shard once and stringifies non-string metadata", async () => {
    const index = `{"metadata":{"total_size":18446744073709551615,"format":"pt","nested":{"a":[1,true]}},"weight_map":${JSON.stringify(weightMap)}}`;
    const model = await importSafetensorsIndex(await sharded(index));
    expect(model.metadata).toEqual({ total_size: "18446744073709551615", format: "pt", nested: '{"a":[1,true]}' });
    expect(model.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ["w.0", "F32", [2]],
      ["w.1", "U8", [3]],
      ["w.2", "I16", [1, 2]],
    ]);
    expect(model.tensors[1].data).toEqual(seq(11).subarray(8, 11));
    expect(model.tensors[2].data).toEqual(seq(4));
    const plain = await importSafetensorsIndex(await sharded({ weight_map: weightMap }));
    expect(plain.metadata).toEqual({});
  });

  it("rejects shard names that could leave the folder", async () => {
    for (const name of ["../model.safetensors", "sub/model.safetensors", "/etc/passwd", "..", ".", "", "a\\b.safetensors", "C:evil.safetensors", "nul\u0000.safetensors"]) {
      const path = await sharded({ weight_map: { ...weightMap, "w.2": name } });
      expect([name, await codeOfAsync(() => importSafetensorsIndex(path))]).toEqual([name, "BAD_INPUT"]);
    }
  });

  it("cross-checks weight_map against the shards", async () => {
    const missing = await sharded({ weight_map: { ...weightMap, "w.9": "model-00002-of-00002.safetensors" } });
    expect(await codeOfAsync(() => importSafetensorsIndex(missing))).toBe("BAD_INPUT");
    await expect(importSafetensorsIndex(missing)).rejects.toThrow(/"w\.9" is not in its shard/);
    const unlisted = await sharded({ weight_map: { "w.0": weightMap["w.0"], "w.2": weightMap["w.2"] } });
    expect(await codeOfAsync(() => importSafetensorsIndex(unlisted))).toBe("BAD_INPUT");
    const misplaced = await sharded({ weight_map: { ...weightMap, "w.1": "model-00002-of-00002.safetensors" } });
    expect(await codeOfAsync(() => importSafetensorsIndex(misplaced))).toBe("BAD_INPUT");
    const twice = st({ "w.0": { dtype: "F32", shape: [2], data_offsets: [0, 8] }, "w.2": { dtype: "I16", shape: [1, 2], data_offsets: [8, 12] } }, seq(12));
    const duplicated = await sharded({ weight_map: weightMap }, { "model-00001-of-00002.safetensors": shard1, "model-00002-of-00002.safetensors": twice });
    expect(await codeOfAsync(() => importSafetensorsIndex(duplicated))).toBe("DUPLICATE_NAME");
  });

  it("rejects malformed index files", async () => {
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded({ metadata: {} })))).toBe("BAD_INPUT");
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded({ weight_map: [] })))).toBe("BAD_INPUT");
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded({ weight_map: { "w.0": 1 } })))).toBe("BAD_INPUT");
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded({ metadata: "x", weight_map: weightMap })))).toBe("BAD_METADATA");
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded("[]")))).toBe("BAD_INPUT");
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded('{"weight_map":{}} trailing')))).toBe("BAD_INPUT");
    const dupTensor = `{"weight_map":{"w.0":"model-00001-of-00002.safetensors","w.0":"model-00002-of-00002.safetensors"}}`;
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded(dupTensor)))).toBe("BAD_INPUT");
    expect(await codeOfAsync(async () => importSafetensorsIndex(await sharded(new Uint8Array([0x7b, 0xff, 0x7d]))))).toBe("BAD_UTF8");
    expect(await codeOfAsync(() => importSafetensorsIndex(join(dir(), "absent.index.json")))).toBe("IO_ERROR");
  });

  it("passes on a damaged or missing shard's error", async () => {
    const cut = await sharded({ weight_map: weightMap }, { "model-00001-of-00002.safetensors": shard1.subarray(0, shard1.byteLength - 1), "model-00002-of-00002.safetensors": shard2 });
    expect(await codeOfAsync(() => importSafetensorsIndex(cut))).toBe("TRUNCATED");
    const absent = await sharded({ weight_map: weightMap }, { "model-00001-of-00002.safetensors": shard1 });
    expect(await codeOfAsync(() => importSafetensorsIndex(absent))).toBe("IO_ERROR");
    await expect(importSafetensorsIndex(absent)).rejects.toThrow(/model-00002-of-00002\.safetensors/);
    const folder = join(dir(), "dir-shard");
    await mkdir(join(folder, "model-00001-of-00002.safetensors"), { recursive: true });
    await writeFile(join(folder, "i.index.json"), JSON.stringify({ weight_map: { x: "model-00001-of-00002.safetensors" } }));
    expect(await codeOfAsync(() => importSafetensorsIndex(join(folder, "i.index.json")))).toBe("BAD_INPUT");
  });
});
