import { describe, expect, it } from "vitest";
import { crc32c } from "../codec/crc32c.js";
import { parseStrictJson, type JsonValue } from "../json/strict-json.js";
import { codeOf } from "../testing/outcome.js";
import { FILE_HEADER_SIZE, LIMITS, MIN_FILE_SIZE, TAG_METADATA } from "./constants.js";
import { decodeFileHeader, encodeFileHeader } from "./file-header.js";
import { decodeMetadataFrame, encodeMetadataFrame } from "./metadata-frame.js";
import { buildShards, isShardFileName, parseShards, type ShardEntry } from "./set-metadata.js";
import { resealFileHeader } from "../testing/patch.js";

const SHARDS: ShardEntry[] = [
  { file: "model-00001.qans", bytes: 5000, trailer_crc32c: 0, tensors: ["a", "b"] },
  { file: "model-00002.qans", bytes: 2 ** 53 - 1, trailer_crc32c: 2 ** 32 - 1, tensors: ["é", "🦙"] },
];

/** A metadata frame around `body`, sealed. */
function frame(body: string): Uint8Array {
  const json = new TextEncoder().encode(body);
  const bytes = new Uint8Array(12 + json.length);
  bytes.set(TAG_METADATA);
  const view = new DataView(bytes.buffer);
  view.setUint32(4, json.length, true);
  bytes.set(json, 8);
  view.setUint32(8 + json.length, crc32c(bytes.subarray(0, 8 + json.length)), true);
  return bytes;
}

/** The code (or "no error") of decoding a set file's metadata whose shards are `shards` (JSON text). */
function setCode(shards: string, set = true): string {
  return codeOf(() => decodeMetadataFrame(frame(`{"metadata":{},"shards":${shards}}`), FILE_HEADER_SIZE, { set }));
}

function shardJson(overrides: Record<string, string> = {}): string {
  const members: Record<string, string> = { file: '"m-00001.qans"', bytes: "5000", trailer_crc32c: "7", tensors: '["a"]', ...overrides };
  return `{${Object.entries(members)
    .filter(([, value]) => value !== "")
    .map(([key, value]) => `"${key}":${value}`)
    .join(",")}}`;
}

describe("the shards member (spec §16.1)", () => {
  it("round-trips through the metadata frame, members in the spec's order", () => {
    const bytes = encodeMetadataFrame({ metadata: { k: "v" } }, SHARDS);
    const text = new TextDecoder().decode(bytes.subarray(8, bytes.length - 4));
    expect(text).toContain('"shards":[{"file":"model-00001.qans","bytes":5000,"trailer_crc32c":0,"tensors":["a","b"]}');
    const decoded = decodeMetadataFrame(bytes, FILE_HEADER_SIZE, { set: true });
    expect(decoded.shards).toEqual(SHARDS);
    expect(decoded.metadata).toEqual({ k: "v" });
  });

  it("is present exactly when the flag SET is, where the caller knows the flag", () => {
    expect(setCode(`[${shardJson()}]`, true)).toBe("no error");
    expect(setCode(`[${shardJson()}]`, false)).toBe("BAD_METADATA");
    expect(codeOf(() => decodeMetadataFrame(frame('{"metadata":{}}'), FILE_HEADER_SIZE, { set: true }))).toBe("BAD_METADATA");
    expect(codeOf(() => decodeMetadataFrame(frame('{"metadata":{}}'), FILE_HEADER_SIZE, { set: false }))).toBe("no error");
    // A random-access reader, which reads no file header, still checks the member itself.
    expect(codeOf(() => decodeMetadataFrame(frame(`{"shards":[${shardJson()}]}`), FILE_HEADER_SIZE))).toBe("no error");
    expect(codeOf(() => decodeMetadataFrame(frame(`{"shards":[]}`), FILE_HEADER_SIZE))).toBe("BAD_METADATA");
  });

  it("refuses every malformed shard with BAD_METADATA", () => {
    const cases: [string, string][] = [
      ["not an array", "{}"],
      ["no shards", "[]"],
      ["a shard that is not an object", "[1]"],
      ["an extra member", `[${shardJson({ sha256: '"00"' })}]`],
      ["a missing member", `[${shardJson({ trailer_crc32c: "" })}]`],
      ["file not a string", `[${shardJson({ file: "1" })}]`],
      ["bytes below the smallest file", `[${shardJson({ bytes: String(MIN_FILE_SIZE - 1) })}]`],
      ["bytes of 2^53", `[${shardJson({ bytes: String(2 ** 53) })}]`],
      ["bytes with a fraction", `[${shardJson({ bytes: "5000.0" })}]`],
      ["bytes with an exponent", `[${shardJson({ bytes: "5e3" })}]`],
      ["bytes as a string", `[${shardJson({ bytes: '"5000"' })}]`],
      ["a negative checksum", `[${shardJson({ trailer_crc32c: "-1" })}]`],
      ["a checksum of 2^32", `[${shardJson({ trailer_crc32c: String(2 ** 32) })}]`],
      ["a checksum with an exponent", `[${shardJson({ trailer_crc32c: "1E0" })}]`],
      ["tensors not an array", `[${shardJson({ tensors: '"a"' })}]`],
      ["no tensors", `[${shardJson({ tensors: "[]" })}]`],
      ["a tensor that is not a string", `[${shardJson({ tensors: '["a", 1]' })}]`],
      ["an empty tensor name", `[${shardJson({ tensors: '[""]' })}]`],
      ["a tensor name over 4096 bytes", `[${shardJson({ tensors: `["${"é".repeat(2049)}"]` })}]`],
      ["a tensor name with a lone surrogate", `[${shardJson({ tensors: '["a\\ud800"]' })}]`],
      ["the same file twice", `[${shardJson()},${shardJson({ tensors: '["b"]' })}]`],
    ];
    for (const [what, json] of cases) expect(setCode(json), what).toBe("BAD_METADATA");
    expect(setCode(`[${shardJson({ bytes: String(MIN_FILE_SIZE) }).replace('"a"', `"${"é".repeat(2048)}"`)}]`), "4096 bytes, the boundaries").toBe("no error");
  });

  it("takes only plain file names: 1 to 255 bytes of A-Z a-z 0-9 . _ -, not starting with a dot", () => {
    for (const name of ["a", "model-00001.qans", "A_b.C-9", "-x", "_", "x".repeat(255)]) expect(isShardFileName(name), name).toBe(true);
    for (const name of ["", ".", "..", "../x.qans", ".hidden.qans", "a/b.qans", "a\\b.qans", "/abs.qans", "C:x.qans", "é.qans", "a b.qans", "x".repeat(256), "a%2F.qans"]) {
      expect(isShardFileName(name), name).toBe(false);
      expect(setCode(`[${shardJson({ file: JSON.stringify(name) })}]`), name).toBe("BAD_METADATA");
    }
  });

  it("reports a tensor in two shards as DUPLICATE_NAME, even in the same shard", () => {
    expect(setCode(`[${shardJson()},${shardJson({ file: '"m-00002.qans"' })}]`)).toBe("DUPLICATE_NAME");
    expect(setCode(`[${shardJson({ tensors: '["a","b","a"]' })}]`)).toBe("DUPLICATE_NAME");
  });

  it("counts shards and tensors against the limits of §13 (LIMIT_EXCEEDED)", () => {
    const shard = (i: number, tensors: string[]) => ({ file: `m-${i}.qans`, bytes: 5000, trailer_crc32c: 0, tensors });
    const many = Array.from({ length: LIMITS.maxShards + 1 }, (_, i) => shard(i, [`t${i}`]));
    expect(codeOf(() => parseShards(many as unknown as JsonValue, "test"))).toBe("LIMIT_EXCEEDED");
    expect(codeOf(() => parseShards(many.slice(1) as unknown as JsonValue, "test"))).toBe("no error");
    const names = Array.from({ length: LIMITS.maxSetTensors + 1 }, (_, i) => `t${i}`);
    expect(codeOf(() => parseShards([shard(0, names.slice(0, 2 ** 19)), shard(1, names.slice(2 ** 19))] as unknown as JsonValue, "test"))).toBe("LIMIT_EXCEEDED");
    expect(codeOf(() => parseShards([shard(0, names.slice(1))] as unknown as JsonValue, "test"))).toBe("no error");
  });

  it("is built by writers only when a reader would accept it", () => {
    expect(buildShards(SHARDS)).toEqual(SHARDS);
    expect(codeOf(() => buildShards([{ ...SHARDS[0], file: "../x.qans" }]))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => buildShards([{ ...SHARDS[0], bytes: 1.5 }]))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => buildShards([SHARDS[0], { ...SHARDS[1], tensors: ["a"] }]))).toBe("DUPLICATE_NAME");
    expect(codeOf(() => encodeMetadataFrame({ metadata: {} }, []))).toBe("INVALID_ARGUMENT");
  });

  it("tells integers written as integers from 1.0 and 1e3 only when asked", () => {
    expect(parseStrictJson("[1.0, 1e3, 7]", "test")).toEqual([1, 1000, 7]);
    const marked = parseStrictJson("[1.0, 1e3, 7]", "test", "BAD_METADATA", { markFloats: true }) as JsonValue[];
    expect(marked.map((v) => typeof v)).toEqual(["object", "object", "number"]);
  });
});

describe("the file-header flag SET (spec §4.1)", () => {
  it("is bit 0; bits 1 to 31 stay reserved", () => {
    expect(decodeFileHeader(encodeFileHeader({ set: true }))).toEqual({ version: { major: 1, minor: 2 }, set: true });
    expect(decodeFileHeader(encodeFileHeader())).toEqual({ version: { major: 1, minor: 2 }, set: false });
    for (const bit of [1, 2, 7, 31]) {
      const bytes = encodeFileHeader({ set: true });
      new DataView(bytes.buffer).setUint32(12, (1 | 2 ** bit) >>> 0, true);
      resealFileHeader(bytes);
      expect(codeOf(() => decodeFileHeader(bytes)), `bit ${bit}`).toBe("RESERVED_BITS");
    }
  });
});
