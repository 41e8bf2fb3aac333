import { crc32c } from "../codec/crc32c.js";
import { QansError } from "../errors.js";
import { decodeUtf8Strict, parseStrictJson, type JsonValue } from "../json/strict-json.js";
import type { ModelArchitecture, ModelMetadata } from "../tensor/tensor.js";
import { ByteReader, ByteWriter, bytesEqual } from "./bytes.js";
import { LIMITS, METADATA_FRAME_OVERHEAD, TAG_METADATA } from "./constants.js";
import { checkStoredCrc } from "./checksum.js";
import { buildShards, parseShards, type ShardEntry } from "./set-metadata.js";

const UTF8 = new TextEncoder();

/** A metadata frame's body as read: the model's metadata and, in a set file, its shards (spec §16.1). */
export interface FileMetadata extends ModelMetadata {
  shards?: ShardEntry[];
}

/** The metadata frame; `shards` makes it a set file's (its header must then carry the flag `SET`). */
export function encodeMetadataFrame(model: ModelMetadata, shards?: readonly ShardEntry[]): Uint8Array {
  const body: Record<string, unknown> = { metadata: model.metadata };
  if (model.architecture) body.architecture = model.architecture;
  if (shards !== undefined) body.shards = buildShards(shards);
  const json = UTF8.encode(JSON.stringify(body));
  if (json.length > LIMITS.maxMetadataBytes) {
    throw new QansError("LIMIT_EXCEEDED", `metadata: ${json.length} bytes of JSON exceed ${LIMITS.maxMetadataBytes}`);
  }
  const writer = new ByteWriter(json.length + METADATA_FRAME_OVERHEAD).bytes(TAG_METADATA).u32(json.length).bytes(json);
  return writer.u32(crc32c(writer.finish())).finish();
}

/** Reads the 8-byte prefix, so a caller knows how many bytes the whole frame has. */
export function metadataFrameLength(prefix: Uint8Array, fileOffset: number): number {
  const reader = new ByteReader(prefix, "metadata frame", "TRUNCATED", 0, prefix.length, fileOffset);
  const tag = reader.bytesView(4, "tag");
  if (!bytesEqual(tag, TAG_METADATA)) reader.fail("BAD_MAGIC", "expected the QMET tag", 0);
  const bodyLength = reader.u32("body length");
  if (bodyLength > LIMITS.maxMetadataBytes) {
    reader.fail("LIMIT_EXCEEDED", `body length ${bodyLength} exceeds ${LIMITS.maxMetadataBytes}`, 4);
  }
  return bodyLength + METADATA_FRAME_OVERHEAD;
}

/**
 * Checks a whole metadata frame in the order of spec §6, then the `shards` member when there is one
 * (§16.1). `set`, when the caller has read the file header, is its flag `SET`: the member must then
 * be present exactly when the flag is (BAD_METADATA). A random-access reader, which reads no file
 * header, leaves it undefined.
 */
export function decodeMetadataFrame(frame: Uint8Array, fileOffset: number, options: { set?: boolean } = {}): FileMetadata {
  const where = "metadata frame";
  const length = metadataFrameLength(frame, fileOffset);
  if (frame.length < length) {
    throw new QansError("TRUNCATED", `${where}: needs ${length} bytes, ${frame.length} present (at byte ${fileOffset})`);
  }
  checkStoredCrc(frame, length - 4, fileOffset, where);
  const text = decodeUtf8Strict(frame.subarray(8, length - 4), where);
  const body = parseStrictJson(text, where, "BAD_METADATA");
  if (!isPlainObject(body)) throw new QansError("BAD_METADATA", `${where}: the body is not a JSON object`);
  const metadata: Record<string, string> = {};
  if (body.metadata !== undefined) {
    if (!isPlainObject(body.metadata)) throw new QansError("BAD_METADATA", `${where}: "metadata" is not an object`);
    for (const [key, value] of Object.entries(body.metadata)) {
      if (typeof value !== "string") throw new QansError("BAD_METADATA", `${where}: metadata value of "${key}" is not a string`);
      metadata[key] = value;
    }
  }
  const result: FileMetadata = { metadata };
  if (body.architecture !== undefined) {
    const architecture = body.architecture;
    if (!isPlainObject(architecture) || typeof architecture.family !== "string") {
      throw new QansError("BAD_METADATA", `${where}: "architecture" is not an object with a string "family"`);
    }
    result.architecture = architecture as ModelArchitecture;
  }
  const hasShards = body.shards !== undefined;
  if (options.set !== undefined && options.set !== hasShards) {
    throw new QansError(
      "BAD_METADATA",
      options.set ? `${where}: the file header's flag SET marks a set file, but the metadata has no "shards"` : `${where}: "shards" is only allowed in a set file, and the file header's flag SET is clear`,
    );
  }
  if (hasShards) {
    // Parsed again with floats marked, so that integers written as 1.0 or 1e3 are told apart.
    const marked = parseStrictJson(text, where, "BAD_METADATA", { markFloats: true }) as Record<string, JsonValue>;
    result.shards = parseShards(marked.shards, where);
  }
  return result;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
