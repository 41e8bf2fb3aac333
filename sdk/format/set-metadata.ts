import { QansError } from "../errors.js";
import { JsonFloat, isJsonObject, type JsonValue } from "../json/strict-json.js";
import { LIMITS, MIN_FILE_SIZE } from "./constants.js";

/**
 * One shard of a set, as the set file's `shards` member lists it (spec §16.1): the shard's file
 * name, its exact length and trailer checksum, and the names of its tensors in its index order.
 */
export interface ShardEntry {
  file: string;
  bytes: number;
  trailer_crc32c: number;
  tensors: string[];
}

const MEMBERS = ["file", "bytes", "trailer_crc32c", "tensors"] as const;

/** 1 to 255 bytes of `A-Z a-z 0-9 . _ -`, not starting with `.`: no directories, `..` or absolute paths. */
const SHARD_FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const UTF8 = new TextEncoder();

/** Whether `name` may name a shard file (spec §16.1, §13). The characters are ASCII, so length is bytes. */
export function isShardFileName(name: string): boolean {
  return name.length <= LIMITS.maxShardFileNameBytes && SHARD_FILE_NAME.test(name);
}

/** Whether `name` is a valid tensor name (spec §7.1): 1 to 4096 bytes of UTF-8. */
function isTensorName(name: string): boolean {
  if (name.length === 0 || name.length > LIMITS.maxNameBytes || LONE_SURROGATE.test(name)) return false;
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so short names need no encoding.
  return name.length * 3 <= LIMITS.maxNameBytes || UTF8.encode(name).length <= LIMITS.maxNameBytes;
}

/** An integer written without fraction or exponent, within [min, max]. */
function isInteger(value: JsonValue, min: number, max: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;
}

/**
 * Checks a set file's `shards` member, as parsed with `markFloats` so that `1.0` is told from `1`,
 * in the order of spec §16.1: the array (1 to 65535 objects), each object's members, types and
 * ranges and its file name (BAD_METADATA); file names unique (BAD_METADATA); tensor names unique
 * across the set (DUPLICATE_NAME); at most 2^20 tensors in all (LIMIT_EXCEEDED).
 */
export function parseShards(value: JsonValue, where: string): ShardEntry[] {
  const fail = (message: string): never => {
    throw new QansError("BAD_METADATA", `${where}: "shards" ${message}`);
  };
  if (!Array.isArray(value)) return fail("is not an array");
  if (value.length === 0) fail("is empty; a set has at least one shard");
  if (value.length > LIMITS.maxShards) {
    throw new QansError("LIMIT_EXCEEDED", `${where}: "shards" lists ${value.length} shards, more than ${LIMITS.maxShards}`);
  }
  const shards: ShardEntry[] = value.map((item, s) => {
    const at = `shard ${s + 1}`;
    if (!isJsonObject(item)) return fail(`${at} is not an object`);
    const keys = Object.keys(item);
    const extra = keys.find((key) => !(MEMBERS as readonly string[]).includes(key));
    if (extra !== undefined) fail(`${at} has the member ${JSON.stringify(extra)}; a shard has exactly ${MEMBERS.join(", ")}`);
    const missing = MEMBERS.find((key) => !keys.includes(key));
    if (missing !== undefined) fail(`${at} has no member "${missing}"`);
    const { file, bytes, trailer_crc32c, tensors } = item;
    if (typeof file !== "string") return fail(`${at}: "file" is not a string`);
    if (!isShardFileName(file)) {
      fail(`${at}: file name ${JSON.stringify(file)} is not 1 to ${LIMITS.maxShardFileNameBytes} bytes of A-Z a-z 0-9 . _ - not starting with "."`);
    }
    if (!isInteger(bytes, MIN_FILE_SIZE, Number.MAX_SAFE_INTEGER)) {
      fail(`${at}: "bytes" ${describe(bytes)} is not an integer from ${MIN_FILE_SIZE} to 2^53 - 1`);
    }
    if (!isInteger(trailer_crc32c, 0, 0xffffffff)) fail(`${at}: "trailer_crc32c" ${describe(trailer_crc32c)} is not an integer from 0 to 2^32 - 1`);
    if (!Array.isArray(tensors)) return fail(`${at}: "tensors" is not an array`);
    if (tensors.length === 0) fail(`${at}: "tensors" is empty; a shard holds at least one tensor`);
    for (const [t, name] of tensors.entries()) {
      if (typeof name !== "string") fail(`${at}: tensor ${t} is not a string`);
      if (!isTensorName(name as string)) fail(`${at}: tensor ${t} is not a name of 1 to ${LIMITS.maxNameBytes} bytes of UTF-8`);
    }
    return { file, bytes: bytes as number, trailer_crc32c: trailer_crc32c as number, tensors: tensors as string[] };
  });
  const files = new Set<string>();
  for (const { file } of shards) {
    if (files.has(file)) fail(`names the file ${JSON.stringify(file)} twice`);
    files.add(file);
  }
  const names = new Set<string>();
  for (const [s, shard] of shards.entries()) {
    for (const name of shard.tensors) {
      if (names.has(name)) throw new QansError("DUPLICATE_NAME", `${where}: tensor "${name}" of shard ${s + 1} (${shard.file}) is listed twice in the set`);
      names.add(name);
    }
  }
  if (names.size > LIMITS.maxSetTensors) {
    throw new QansError("LIMIT_EXCEEDED", `${where}: the set lists ${names.size} tensors, more than ${LIMITS.maxSetTensors}`);
  }
  return shards;
}

function describe(value: JsonValue): string {
  if (value instanceof JsonFloat) return `${value.value} (written with a fraction or exponent)`;
  return typeof value === "string" ? JSON.stringify(value) : typeof value === "object" ? (Array.isArray(value) ? "(an array)" : "(an object)") : String(value);
}

/**
 * The `shards` member as it is written: each object's members in the spec's order. Checks what a
 * reader would: a writer never produces a set file that `parseShards` refuses.
 */
export function buildShards(shards: readonly ShardEntry[], where = "set file"): ShardEntry[] {
  const json = shards.map(({ file, bytes, trailer_crc32c, tensors }) => ({ file, bytes, trailer_crc32c, tensors: [...tensors] }));
  try {
    return parseShards(json as unknown as JsonValue, where);
  } catch (error) {
    if (error instanceof QansError && error.code === "BAD_METADATA") throw new QansError("INVALID_ARGUMENT", error.message);
    throw error;
  }
}
