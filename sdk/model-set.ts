import { QansError } from "./errors.js";
import { FILE_HEADER_SIZE } from "./format/constants.js";
import { decodeFileHeader } from "./format/file-header.js";
import type { IndexEntry } from "./format/index-frame.js";
import { decodeMetadataFrame, type FileMetadata } from "./format/metadata-frame.js";
import type { ShardEntry } from "./format/set-metadata.js";
import { openSource } from "./io/open-source.js";
import { shardOpener, type ShardOpener } from "./io/shard-location.js";
import { describe, type ByteSource } from "./io/source.js";
import { QansReader, batchBytesOf, nameMatcher, type DecodedStreams, type ModelReader, type TensorFrameBytes, type TensorSelector } from "./reader.js";
import type { TensorData } from "./tensor/tensor.js";

/**
 * Opens a model at a path or an http(s) URL, whether it is one QANS file or the set file of a
 * sharded model (spec §16): a `QansReader` for a plain file, a `QansModelSet` for a set. The index
 * is read as `QansReader.open` reads it; only a file without tensors, which a set file is, has its
 * file header and metadata frame read too, to tell a set from an empty model.
 */
export async function openModel(location: string): Promise<ModelReader> {
  const source = await openSource(location);
  try {
    return await openModelSource(source, shardOpener(location));
  } catch (error) {
    await source.close().catch(() => undefined);
    throw error;
  }
}

/**
 * As `openModel`, for a source that is already open. A set's shards are opened with `openShard`,
 * which must find each file name beside the set file and nowhere else (spec §16.1); without it a
 * set file is refused (INVALID_ARGUMENT). The model owns `source` once this returns.
 */
export async function openModelSource(source: ByteSource, openShard?: ShardOpener): Promise<ModelReader> {
  const reader = await QansReader.open(source);
  // The index repeats the file header's SET flag (spec §11); a file with tensors is never a set,
  // and costs no further read. An empty one is checked against its header and metadata.
  if (!reader.index.set && reader.entries.length > 0) return reader;
  const header = decodeFileHeader(await source.read(0, Math.min(source.size, FILE_HEADER_SIZE), "file header"));
  const frame = await source.read(FILE_HEADER_SIZE, reader.index.metadataLength, "metadata frame");
  // The metadata first, as the verifier orders it: a shards member against the header's flag.
  const metadata = decodeMetadataFrame(frame, FILE_HEADER_SIZE, { set: header.set });
  if (header.set !== reader.index.set) {
    throw new QansError("INDEX_MISMATCH", `${describe(source)}: the index's flag SET is ${reader.index.set ? "set" : "clear"}, the file header's is not`);
  }
  if (!header.set) return reader;
  if (reader.entries.length > 0) {
    throw new QansError("BAD_METADATA", `${describe(source)}: a set file holds no tensors (spec §16.1), but its index lists ${reader.entries.length}`);
  }
  if (!openShard) {
    throw new QansError("INVALID_ARGUMENT", `${describe(source)} is a set file: its shards are found from its location, so open it with openModel(location)`);
  }
  return new QansModelSet(reader, metadata, openShard);
}

/**
 * A sharded model (spec §16) read as one: the set file's metadata and tensor names, and each
 * tensor read from the shard that holds it. Opening reads only the set file; a shard is opened
 * when one of its tensors is first wanted, and checked then, before any of its tensors is read:
 * its length and trailer checksum are the ones the set file recorded and its index lists exactly
 * the set's names for it, in order (INDEX_MISMATCH; a missing shard is IO_ERROR). So tensors of
 * two different writes are never mixed.
 */
export class QansModelSet implements ModelReader {
  /** The shards, as the set file lists them. */
  readonly shards: readonly ShardEntry[];
  readonly names: readonly string[];
  private readonly shardOf = new Map<string, number>();
  private readonly readers: (Promise<QansReader> | undefined)[];
  private closed = false;

  /** @internal Use `openModel`, `openModelSource` or `QansModelSet.open`. */
  constructor(
    /** The set file, read as the QANS file it is (no tensors). */
    readonly setFile: QansReader,
    private readonly setMetadata: FileMetadata,
    private readonly openShard: ShardOpener,
  ) {
    if (!setMetadata.shards || setFile.entries.length > 0) throw new QansError("INVALID_ARGUMENT", "not a set file");
    this.shards = setMetadata.shards;
    this.readers = this.shards.map(() => undefined);
    this.shards.forEach((shard, s) => shard.tensors.forEach((name) => this.shardOf.set(name, s)));
    this.names = this.shards.flatMap((shard) => shard.tensors);
  }

  /** Opens the set file at a path or an http(s) URL; a plain QANS file is refused (INVALID_ARGUMENT). */
  static async open(location: string): Promise<QansModelSet> {
    const model = await openModel(location);
    if (model instanceof QansModelSet) return model;
    await model.close();
    throw new QansError("INVALID_ARGUMENT", `${location} is a QANS file, not a set file`);
  }

  async tensorEntry(name: string): Promise<IndexEntry> {
    return (await this.readerFor(name)).entry(name);
  }

  async tensorEntries(): Promise<IndexEntry[]> {
    const entries: IndexEntry[] = [];
    for (let s = 0; s < this.shards.length; s++) entries.push(...(await this.shard(s)).entries);
    return entries;
  }

  /** The set file's metadata: the model's metadata and architecture, and the shards (a copy). */
  async metadata(): Promise<FileMetadata> {
    return structuredClone(this.setMetadata);
  }

  async readStreams(name: string, into?: Uint8Array[]): Promise<DecodedStreams> {
    return (await this.readerFor(name)).readStreams(name, into);
  }

  async readFrame(name: string): Promise<TensorFrameBytes> {
    return (await this.readerFor(name)).readFrame(name);
  }

  async readTensor(name: string): Promise<TensorData> {
    return (await this.readerFor(name)).readTensor(name);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return (await this.readerFor(name)).readFloat32(name);
  }

  /**
   * As `QansReader.readMatching`, over the whole set in model order: names are matched against the
   * set file's lists, so only the shards that hold a match are opened, and each is read in batches
   * as one file is.
   */
  async *readMatching(selector: TensorSelector, options: { batchBytes?: number } = {}): AsyncGenerator<TensorData> {
    const matches = nameMatcher(selector);
    batchBytesOf(options);
    for (const [s, shard] of this.shards.entries()) {
      const wanted = new Set(shard.tensors.filter((name) => matches(name)));
      if (wanted.size === 0) continue;
      yield* (await this.shard(s)).readMatching((name) => wanted.has(name), options);
    }
  }

  async *tensors(): AsyncGenerator<TensorData> {
    for (const name of this.names) yield await this.readTensor(name);
  }

  /** Closes the set file and every shard opened. */
  async close(): Promise<void> {
    this.closed = true;
    const opened = await Promise.allSettled(this.readers.filter((reader) => reader !== undefined));
    const closing = opened.flatMap((result) => (result.status === "fulfilled" ? [result.value.close()] : []));
    const results = await Promise.allSettled([...closing, this.setFile.close()]);
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  private readerFor(name: string): Promise<QansReader> {
    const s = this.shardOf.get(name);
    if (s === undefined) throw new QansError("NOT_FOUND", `no tensor named "${name}" in the set ${describe(this.setFile.source)}`);
    return this.shard(s);
  }

  /** Shard `s`'s reader, opened and checked on first use; a failed open is tried again next time. */
  private shard(s: number): Promise<QansReader> {
    if (this.closed) return Promise.reject(new QansError("IO_ERROR", `the set ${describe(this.setFile.source)} was closed`));
    const pending = this.readers[s];
    if (pending) return pending;
    const opening = openShardChecked(this.shards[s], s, this.openShard);
    this.readers[s] = opening;
    opening.catch(() => {
      if (this.readers[s] === opening) this.readers[s] = undefined;
    });
    return opening;
  }
}

/**
 * Opens shard `s` and makes the checks of spec §16.2 in their order, before any tensor is read:
 * its length, its trailer checksum (once the trailer's own checks passed), then its index's names.
 */
export async function openShardChecked(shard: ShardEntry, s: number, openShard: ShardOpener): Promise<QansReader> {
  const where = `shard ${s + 1} (${shard.file})`;
  const source = await openShard(shard.file);
  try {
    if (source.size !== shard.bytes) {
      throw new QansError("INDEX_MISMATCH", `${where}: the file has ${source.size} bytes, the set file says ${shard.bytes}; it is not the shard this set was written with`);
    }
    const reader = await QansReader.open(source, {
      onTrailer: (trailer) => {
        if (trailer.checksum !== shard.trailer_crc32c) {
          throw new QansError("INDEX_MISMATCH", `${where}: trailer checksum ${hex(trailer.checksum)}, the set file says ${hex(shard.trailer_crc32c)}; it is not the shard this set was written with`);
        }
      },
    });
    checkShardNames(reader.entries, shard, where);
    return reader;
  } catch (error) {
    await source.close().catch(() => undefined);
    throw error;
  }
}

/** Spec §16.2 check 3: the shard's index lists exactly the set's names for it, in order. */
export function checkShardNames(entries: readonly Pick<IndexEntry, "name">[], shard: ShardEntry, where: string): void {
  const expected = shard.tensors;
  const differs = entries.length !== expected.length ? Math.min(entries.length, expected.length) : entries.findIndex((entry, t) => entry.name !== expected[t]);
  if (differs < 0) return;
  const found = differs < entries.length ? `"${entries[differs].name}"` : "nothing";
  const wanted = differs < expected.length ? `"${expected[differs]}"` : "nothing";
  throw new QansError(
    "INDEX_MISMATCH",
    `${where}: its index lists ${entries.length} tensors and ${found} at position ${differs}, the set file lists ${expected.length} and ${wanted} there`,
  );
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}
