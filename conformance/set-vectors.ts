/**
 * The sharded-model conformance vectors (spec §16): valid sets written as the reference writer
 * writes them, and set files with one defect each.
 */
import {
  MemorySink,
  MemorySource,
  QansError,
  QansWriter,
  encodeTensorFrameAsync,
  shardFileName,
  type ByteSource,
  type ModelMetadata,
  type QansErrorCode,
  type ShardEntry,
} from "../sdk/index.js";
import { fail } from "./file-surgery.js";
import { llamaTinyVector, unicodeMetadataVector, type VectorTensor } from "./valid-vectors.js";

/** A sharded model: its set file and shards go in a folder of their own, `<name>/`. */
export interface SetDef {
  /** The folder under vectors/valid/ (and vectors/invalid/), and the set file's base name. */
  name: string;
  spec: string[];
  exercises: string;
  log2Block: number;
  /** The maximum shard size the reference writer's rule (spec §16.3) splits at. */
  shardBytes: number;
  /** How many shards that gives; the generator checks it. */
  shardCount: number;
  metadata: ModelMetadata;
  tensors: VectorTensor[];
}

const SET_BYTES = 2400;

function llamaSetVector(): SetDef {
  const tiny = llamaTinyVector();
  return {
    name: "set-llama",
    spec: ["§16", "§16.1", "§16.2", "§16.3", "§4.1", "§6"],
    exercises:
      "a sharded model: a set file (file-header flag SET, no tensor frames, the shards member) and 3 shard files that llama-tiny.qans's " +
      `tensors are split into by the reference writer's rule (§16.3) at ${SET_BYTES} bytes per shard, named set-llama-00001.qans to ` +
      "set-llama-00003.qans; each shard repeats the model's metadata and architecture record and is a valid QANS file on its own",
    log2Block: tiny.log2Block,
    shardBytes: SET_BYTES,
    shardCount: 3,
    metadata: tiny.metadata,
    tensors: tiny.tensors,
  };
}

/** A set of one shard whose tensor names, listed in the set file's JSON, are not ASCII. */
function singleShardSetVector(): SetDef {
  const unicode = unicodeMetadataVector();
  return {
    name: "set-single",
    spec: ["§16", "§16.1", "§16.2", "§2", "§6"],
    exercises:
      "a set of one shard (set-single-00001.qans) holding unicode-metadata.qans's tensors, whose names outside ASCII appear in the set " +
      "file's shards member as JSON strings; the metadata has non-ASCII keys and no architecture record; block size 2^18",
    log2Block: 18,
    shardBytes: 1 << 20,
    shardCount: 1,
    metadata: unicode.metadata,
    tensors: unicode.tensors,
  };
}

export function setDefs(): SetDef[] {
  return [llamaSetVector(), singleShardSetVector()];
}

/**
 * Writes a set in memory as the reference writer (spec §16.3, `packStreamSharded`) does: tensors in
 * order, a new shard before a frame that would take the current shard's file past `shardBytes`.
 */
export async function writeSet(def: SetDef): Promise<{ set: Uint8Array; shards: { file: string; bytes: Uint8Array }[] }> {
  const shards: { file: string; bytes: Uint8Array }[] = [];
  const entries: ShardEntry[] = [];
  let current: { sink: MemorySink; writer: QansWriter; file: string; tensors: string[] } | undefined;
  const finish = async () => {
    const { sink, writer, file, tensors } = current!;
    const { bytes, trailerChecksum } = await writer.finish();
    shards.push({ file, bytes: sink.bytes() });
    entries.push({ file, bytes, trailer_crc32c: trailerChecksum, tensors });
    current = undefined;
  };
  for (const { tensor, encoding, log2Block } of def.tensors) {
    const frame = await encodeTensorFrameAsync(tensor, encoding, log2Block ?? def.log2Block);
    if (current && current.tensors.length > 0 && current.writer.sizeWith(frame) > def.shardBytes) await finish();
    if (!current) {
      const sink = new MemorySink();
      current = { sink, writer: new QansWriter(sink, { log2Block: def.log2Block }), file: shardFileName(`${def.name}.qans`, shards.length + 1), tensors: [] };
      await current.writer.begin(def.metadata);
    }
    await current.writer.addFrame(frame);
    current.tensors.push(tensor.name);
  }
  await finish();
  const sink = new MemorySink();
  const writer = new QansWriter(sink, { shards: entries });
  await writer.begin(def.metadata);
  await writer.finish();
  return { set: sink.bytes(), shards };
}

/** Opens the files of one folder by name, as a reader of a set opens shards beside the set file. */
export function folder(files: ReadonlyMap<string, Uint8Array>): (file: string) => Promise<ByteSource> {
  return async (file) => {
    const bytes = files.get(file);
    if (!bytes) throw new QansError("IO_ERROR", `${file}: no such file`);
    return new MemorySource(bytes, file);
  };
}

/** A set file's metadata body, as the reference writer writes it. */
export interface SetBody {
  metadata: Record<string, string>;
  architecture?: unknown;
  shards?: ShardEntry[];
}

export interface InvalidSetDef {
  file: string;
  code: QansErrorCode;
  spec: string[];
  exercises: string;
  /** Changes the valid set file's metadata body; returns whether the flag SET stays set. */
  derive(body: SetBody): boolean;
  /** Rewrites the body's JSON text after `derive`, for defects JSON.stringify cannot write. */
  rewrite?(json: string): string;
}

export function invalidSetDefs(): InvalidSetDef[] {
  const shard = (body: SetBody, s: number) => body.shards![s];
  return [
    {
      file: "shard-bytes-off-by-one.qans",
      code: "INDEX_MISMATCH",
      spec: ["§16.2"],
      exercises: "the bytes of shard 2 one more than the shard file's length (check 1)",
      derive: (body) => {
        shard(body, 1).bytes += 1;
        return true;
      },
    },
    {
      file: "trailer-crc32c-off-by-one.qans",
      code: "INDEX_MISMATCH",
      spec: ["§16.2", "§4.2"],
      exercises: "the trailer_crc32c of shard 3 one more than the shard's trailer checksum field (check 2); the length is right",
      derive: (body) => {
        shard(body, 2).trailer_crc32c = (shard(body, 2).trailer_crc32c + 1) % 2 ** 32;
        return true;
      },
    },
    {
      file: "tensor-order.qans",
      code: "INDEX_MISMATCH",
      spec: ["§16.2"],
      exercises: "the first two tensors of shard 1 listed in the opposite order to the shard's index (check 3): the same names, in the wrong order",
      derive: (body) => {
        const tensors = shard(body, 0).tensors;
        if (tensors.length < 2) fail("shard 1 of the set holds fewer than 2 tensors");
        [tensors[0], tensors[1]] = [tensors[1], tensors[0]];
        return true;
      },
    },
    {
      file: "file-name-parent.qans",
      code: "BAD_METADATA",
      spec: ["§16.1", "§6"],
      exercises: 'the file of shard 1 set to "../x.qans": a name that would leave the set\'s folder (and starts with ".")',
      derive: (body) => {
        shard(body, 0).file = "../x.qans";
        return true;
      },
    },
    {
      file: "flag-without-shards.qans",
      code: "BAD_METADATA",
      spec: ["§4.1", "§16.1"],
      exercises: "the file-header flag SET with no shards member in the metadata",
      derive: (body) => {
        delete body.shards;
        return true;
      },
    },
    {
      file: "shards-without-flag.qans",
      code: "BAD_METADATA",
      spec: ["§4.1", "§16.1"],
      exercises: "the shards member in the metadata of a file whose flag SET is clear",
      derive: () => false,
    },
    {
      file: "missing-shard.qans",
      code: "IO_ERROR",
      spec: ["§16.2"],
      exercises: 'the file of shard 2 renamed to "set-llama-00009.qans", which is not beside the set file: a missing shard',
      derive: (body) => {
        shard(body, 1).file = "set-llama-00009.qans";
        return true;
      },
    },
    {
      file: "no-shards.qans",
      code: "BAD_METADATA",
      spec: ["§16.1", "§13"],
      exercises: "the shards member an empty array: a set has 1 to 65535 shards",
      derive: (body) => {
        body.shards = [];
        return true;
      },
    },
    {
      file: "too-many-shards.qans",
      code: "LIMIT_EXCEEDED",
      spec: ["§16.1", "§13"],
      exercises:
        "the shards member an array of 65536 empty objects, one more than §13 allows; the count is checked before any object's members, " +
        "so a reader rejects it without looking at them",
      derive: (body) => {
        body.shards = Array.from({ length: 65536 }, () => ({}) as ShardEntry);
        return true;
      },
    },
    {
      file: "shard-file-name-too-long.qans",
      code: "BAD_METADATA",
      spec: ["§16.1", "§13"],
      exercises: "the file of shard 1 a name of 256 bytes (251 letters a, then .qans), one more than §13 allows",
      derive: (body) => {
        shard(body, 0).file = `${"a".repeat(251)}.qans`;
        return true;
      },
    },
    {
      file: "bytes-with-fraction.qans",
      code: "BAD_METADATA",
      spec: ["§16.1"],
      exercises: 'the bytes of shard 1 written with a fraction (e.g. 2359.0 for 2359): the right value, but not an integer as §16.1 writes integers',
      derive: () => true,
      rewrite: (json) => {
        const rewritten = json.replace(/"bytes":([0-9]+)/, '"bytes":$1.0');
        if (rewritten === json) fail("no bytes member in the set file");
        return rewritten;
      },
    },
    {
      file: "duplicate-tensor.qans",
      code: "DUPLICATE_NAME",
      spec: ["§16.1"],
      exercises: "the first tensor name of shard 2 replaced with the first tensor name of shard 1, so that one name is in two shards",
      derive: (body) => {
        shard(body, 1).tensors[0] = shard(body, 0).tensors[0];
        return true;
      },
    },
  ];
}
