import { basename, dirname, join } from "node:path";
import { QansError } from "./errors.js";
import { DEFAULT_LOG2_BLOCK, LIMITS } from "./format/constants.js";
import { isShardFileName, type ShardEntry } from "./format/set-metadata.js";
import { AtomicFileSink } from "./io/atomic-file.js";
import { checkTensorData, encodeSmallestAsync, largeTensorBytes, type PackResult, type PackStreamOptions } from "./pack.js";
import { QansWriter } from "./writer.js";
import type { ImportedModel, ModelMetadata, TensorData } from "./tensor/tensor.js";

const UTF8 = new TextEncoder();

export interface ShardedPackOptions extends PackStreamOptions {
  /**
   * The largest shard file, in bytes. A new shard starts before a tensor that would take the
   * current shard's file past it, index and trailer included; a shard holds at least one tensor,
   * so a tensor that alone exceeds it gets a shard of its own.
   */
  shardBytes: number;
}

export interface ShardedPackResult extends PackResult {
  /** Bytes written: the set file and every shard together. */
  bytes: number;
  /** The set file's size. */
  setBytes: number;
  /** Each shard as the set file lists it, with its path. */
  shards: (ShardEntry & { path: string })[];
}

/**
 * The shard file name of shard `n` (from 1) of the set file `<base>.qans`: `<base>-00001.qans`, …
 * (spec §16.3).
 */
export function shardFileName(setPath: string, n: number): string {
  return `${basename(setBaseOf(setPath))}-${String(n).padStart(5, "0")}.qans`;
}

function setBaseOf(setPath: string): string {
  if (!setPath.endsWith(".qans") || basename(setPath) === ".qans") {
    throw new QansError("INVALID_ARGUMENT", `a set file is named <base>.qans, so that its shards can be <base>-00001.qans and on; got ${JSON.stringify(setPath)}`);
  }
  return setPath.slice(0, -".qans".length);
}

function checkShardBytes(shardBytes: unknown): number {
  if (typeof shardBytes !== "number" || !Number.isSafeInteger(shardBytes) || shardBytes < 1) {
    throw new QansError("INVALID_ARGUMENT", `shardBytes must be a positive integer, got ${String(shardBytes)}`);
  }
  return shardBytes;
}

/**
 * Packs tensors as they arrive, as `packStream` does (same frames, same memory), into a sharded
 * model (spec §16.3): shard files `<base>-00001.qans`, `<base>-00002.qans`, … beside the set file
 * `setPath` = `<base>.qans`. Shards are filled in tensor order up to `shardBytes` each; each shard is
 * written through a temporary file and renamed once complete, and the set file, which records each
 * shard's length, trailer checksum and tensor names, is written last the same way. So a set file on
 * disk names only complete shards, and a reader notices a shard that a later write replaced.
 *
 * If the write fails, shards renamed into place before the failure stay; no set file names them.
 * Shard files of an earlier, larger write with the same base that this write does not replace are
 * left as they are.
 */
export async function packStreamSharded(
  tensors: AsyncIterable<TensorData> | Iterable<TensorData>,
  metadata: ModelMetadata,
  setPath: string,
  options: ShardedPackOptions,
): Promise<ShardedPackResult> {
  const shardBytes = checkShardBytes(options?.shardBytes);
  largeTensorBytes(options);
  const directory = dirname(setBaseOf(setPath));
  const firstName = shardFileName(setPath, 1);
  if (!isShardFileName(firstName)) {
    throw new QansError("INVALID_ARGUMENT", `shard file name ${JSON.stringify(firstName)} is not 1 to 255 bytes of A-Z a-z 0-9 . _ -; choose a set file name of those characters`);
  }
  const total = options.tensorCount ?? (Array.isArray(tensors) ? tensors.length : 0);
  const log2Block = options.log2Block ?? DEFAULT_LOG2_BLOCK;
  const model: ModelMetadata = { metadata: metadata.metadata, architecture: metadata.architecture };
  const shards: (ShardEntry & { path: string })[] = [];
  const names = new Set<string>();
  // A lower bound on the set file's metadata body, so that a set whose names alone overflow it
  // fails before its shards are written rather than after.
  let metadataBytes = UTF8.encode(JSON.stringify({ ...model, shards: [] })).length;
  let inputBytes = 0;
  let current: { sink: AtomicFileSink; writer: QansWriter; file: string; tensors: string[] } | undefined;

  const startShard = async () => {
    if (shards.length >= LIMITS.maxShards) throw new QansError("LIMIT_EXCEEDED", `a set has at most ${LIMITS.maxShards} shards; choose a larger shard size`);
    const file = shardFileName(setPath, shards.length + 1);
    const sink = await AtomicFileSink.create(join(directory, file));
    current = { sink, writer: new QansWriter(sink, { log2Block }), file, tensors: [] };
    await current.writer.begin(model);
  };
  const finishShard = async () => {
    const { sink, writer, file, tensors: shardTensors } = current!;
    const { bytes, trailerChecksum } = await writer.finish();
    await sink.commit();
    current = undefined;
    shards.push({ file, bytes, trailer_crc32c: trailerChecksum, tensors: shardTensors, path: sink.path });
  };

  try {
    for await (const tensor of tensors) {
      checkTensorData(tensor, names.size);
      if (names.has(tensor.name)) throw new QansError("DUPLICATE_NAME", `pack: tensor "${tensor.name}" was already added`);
      if (names.size >= LIMITS.maxSetTensors) throw new QansError("LIMIT_EXCEEDED", `a set holds at most ${LIMITS.maxSetTensors} tensors`);
      metadataBytes += UTF8.encode(JSON.stringify(tensor.name)).length + 1;
      if (metadataBytes > LIMITS.maxMetadataBytes) {
        throw new QansError("LIMIT_EXCEEDED", `the set file would list more than ${LIMITS.maxMetadataBytes} bytes of metadata: too many tensors, or names too long, for one set`);
      }
      const frame = await encodeSmallestAsync(tensor, options, log2Block);
      if (current && current.tensors.length > 0 && current.writer.sizeWith(frame) > shardBytes) await finishShard();
      if (!current) await startShard();
      await current!.writer.addFrame(frame);
      current!.tensors.push(tensor.name);
      names.add(tensor.name);
      inputBytes += tensor.data.byteLength;
      options.onTensor?.(names.size, total, tensor.name);
    }
    if (current) await finishShard();
  } catch (error) {
    await current?.sink.abort().catch(() => undefined);
    throw error;
  }
  if (shards.length === 0) throw new QansError("INVALID_ARGUMENT", "a sharded model needs at least one tensor: a set has at least one shard of at least one tensor");

  const sink = await AtomicFileSink.create(setPath);
  let setBytes: number;
  try {
    const writer = new QansWriter(sink, { shards: shards.map(({ path: _, ...shard }) => shard) });
    await writer.begin(model);
    setBytes = (await writer.finish()).bytes;
    await sink.commit();
  } catch (error) {
    await sink.abort().catch(() => undefined);
    throw error;
  }
  return { bytes: setBytes + shards.reduce((sum, shard) => sum + shard.bytes, 0), tensors: names.size, inputBytes, setBytes, shards };
}

/** Packs a whole model held in memory into a sharded model: `packStreamSharded` over its tensors. */
export async function packModelSharded(model: ImportedModel, setPath: string, options: ShardedPackOptions): Promise<ShardedPackResult> {
  return packStreamSharded(model.tensors, model, setPath, { ...options, tensorCount: model.tensors.length });
}
