/**
 * The streaming reader (decodeStream, fed in chunks of random sizes) and the random-access reader
 * (QansReader: open, metadata() and readTensor of every entry) agree on every file: arbitrary files
 * written by QansWriter, and those files mutated (bytes flipped, truncated, spliced, fields rewritten
 * and re-sealed, alone or alike in a tensor header and its index entry). Either both accept, with
 * the same metadata, the same tensors in the same order, bit for bit, and the same index and trailer;
 * or both reject with a QansError. The one allowed difference: the random-access reader never reads
 * the file header or the padding before and between frames, and does not make the three checks that
 * need the file header or the metadata frame's own length (spec §11: the index's metadata length and
 * flag SET against them, and no tensors in a set file); so the streaming reader alone may reject,
 * but then only for those: with the file header rewritten to the trailer's version, the padding
 * zeroed, and the index given the metadata frame's real length and a clear flag SET, it must accept
 * and read what the random-access reader read. Cases per property: fuzz/options.ts.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FILE_FLAG_SET, FILE_HEADER_SIZE } from "../sdk/format/constants.js";
import { encodeFileHeader } from "../sdk/format/file-header.js";
import { metadataFrameLength } from "../sdk/format/metadata-frame.js";
import type { FileIndex } from "../sdk/format/index-frame.js";
import type { Trailer } from "../sdk/format/trailer.js";
import type { FileMetadata, ModelMetadata, TensorData } from "../sdk/index.js";
import { MemorySource, QansError, QansReader, decodeStream, type ChunkSource } from "../sdk/index.js";
import { sameBytes, writeToMemory } from "../sdk/testing/fixtures.js";
import { resealFileHeader, resealRange } from "../sdk/testing/patch.js";
import { Random } from "../sdk/testing/random.js";
import { log2BlockArb, losslessCaseArb, quantCaseArb, tensorsArb } from "./arbitraries.js";
import { mutated, mutationArb, type Mutation } from "./mutations.js";
import { fuzzOptions } from "./options.js";

/** What a reader made of a file: everything it decoded, or the QansError it threw. */
type Reading =
  | { accepted: true; metadata: FileMetadata; tensors: TensorData[]; index: FileIndex; trailer: Trailer }
  | { accepted: false; error: QansError };

/** Any error but a QansError fails the property at once. */
function rejected(error: unknown, reader: string): Reading {
  if (error instanceof QansError) return { accepted: false, error };
  throw new Error(`${reader} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, { cause: error });
}

/** `bytes` in chunks of 1 to `maxChunk` bytes, their sizes drawn from `seed`. */
function* chunks(bytes: Uint8Array, maxChunk: number, seed: number): Generator<Uint8Array> {
  const random = new Random(seed);
  for (let at = 0; at < bytes.length; ) {
    const end = Math.min(bytes.length, at + 1 + random.int(maxChunk));
    yield bytes.subarray(at, end);
    at = end;
  }
}

async function readStreaming(input: ChunkSource): Promise<Reading> {
  try {
    let metadata: FileMetadata | undefined;
    const tensors: TensorData[] = [];
    for await (const event of decodeStream(input, { output: "tensor" })) {
      if (event.type === "start") metadata = event.metadata;
      else if (event.type === "tensor") tensors.push(event.tensor!);
      else if (event.type === "end") return { accepted: true, metadata: metadata!, tensors, index: event.index, trailer: event.trailer };
    }
    throw new Error("decodeStream ended without an end event");
  } catch (error) {
    return rejected(error, "decodeStream");
  }
}

async function readRandomAccess(bytes: Uint8Array): Promise<Reading> {
  let reader: QansReader | undefined;
  try {
    reader = await QansReader.open(new MemorySource(bytes));
    const metadata = await reader.metadata();
    const tensors: TensorData[] = [];
    for (const entry of reader.entries) tensors.push(await reader.readTensor(entry.name));
    return { accepted: true, metadata, tensors, index: reader.index, trailer: reader.trailer };
  } catch (error) {
    return rejected(error, "QansReader");
  } finally {
    await reader?.close();
  }
}

/**
 * `bytes` with what the random-access reader does not check made valid for what it did read: the
 * file header of the trailer's version, zero padding after the metadata frame and after each tensor
 * frame, and in the index (re-sealed) the metadata frame's real length and the flag SET clear, in the
 * file header too, since a file with tensors is no set file.
 */
function withUncheckedBytesRepaired(bytes: Uint8Array, { trailer, index }: { trailer: Trailer; index: FileIndex }): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  out.set(encodeFileHeader());
  view.setUint16(10, trailer.minor, true);
  resealFileHeader(out);
  let end = FILE_HEADER_SIZE + metadataFrameLength(out.subarray(FILE_HEADER_SIZE, FILE_HEADER_SIZE + 8), FILE_HEADER_SIZE);
  // Index flags at 4, the body from 16: metadata offset, then metadata length.
  view.setUint32(trailer.indexOffset + 4, view.getUint32(trailer.indexOffset + 4, true) & ~FILE_FLAG_SET, true);
  view.setBigUint64(trailer.indexOffset + 24, BigInt(end - FILE_HEADER_SIZE), true);
  resealRange(out, trailer.indexOffset, trailer.indexOffset + trailer.indexLength - 4);
  for (const entry of index.entries) {
    out.fill(0, end, entry.frameOffset);
    end = entry.frameOffset + entry.frameLength;
  }
  out.fill(0, end, trailer.indexOffset);
  return out;
}

/** Equal readings; of a repaired file (`withUncheckedBytesRepaired`), but for the index fields it repairs. */
function expectSameReading(random: Reading & { accepted: true }, streamed: Reading & { accepted: true }, repaired = false): void {
  expect(random.metadata).toEqual(streamed.metadata);
  expect(repaired ? { ...random.index, set: false, metadataLength: streamed.index.metadataLength } : random.index).toEqual(streamed.index);
  expect(random.trailer).toEqual(streamed.trailer);
  expect(random.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(streamed.tensors.map((t) => [t.name, t.dtype, t.shape]));
  random.tensors.forEach((tensor, i) => expect(sameBytes(tensor.data, streamed.tensors[i].data), `tensor ${tensor.name}`).toBe(true));
}

const fileArb = fc.record({
  cases: tensorsArb((i) =>
    fc.oneof(
      losslessCaseArb(i).map(({ tensor, encoding }) => ({ tensor, encoding: { encoding } })),
      quantCaseArb(i),
    ),
  ),
  log2Block: log2BlockArb,
  metadata: fc.record({ metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 }) }) as fc.Arbitrary<ModelMetadata>,
});

/** None (the file as written) or one mutation. */
const maybeMutationArb: fc.Arbitrary<Mutation | null> = fc.oneof({ arbitrary: fc.constant(null), weight: 1 }, { arbitrary: mutationArb, weight: 3 });

/** Chunk sizes up to a few bytes, up to a few blocks, or the whole file at once. */
const chunkingArb = fc.record({ maxChunk: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 17, max: 70_000 })), seed: fc.nat() });

describe("streaming and random-access decode agree", () => {
  it.each([
    ["index-flag-set.qans", "INDEX_MISMATCH"],
    ["index-metadata-length-mismatch.qans", "INDEX_MISMATCH"],
    ["nonzero-padding-between-frames.qans", "NONZERO_PADDING"],
    ["checksum-header.qans", "CHECKSUM_MISMATCH"],
  ])("except where the random-access reader does not look: conformance vector %s", async (file, code) => {
    // Invalid vectors that only a reader of the file header, the padding or both flags rejects.
    const bytes = readFileSync(new URL(`../conformance/vectors/invalid/${file}`, import.meta.url));
    const streamed = await readStreaming([bytes]);
    const random = await readRandomAccess(bytes);
    expect(streamed.accepted ? "accepted" : streamed.error.code).toBe(code);
    expect(random.accepted).toBe(true);
    const repaired = await readStreaming([withUncheckedBytesRepaired(bytes, random as Reading & { accepted: true })]);
    expect(repaired.accepted).toBe(true);
    expectSameReading(random as Reading & { accepted: true }, repaired as Reading & { accepted: true }, true);
  });

  it("on files as written and mutated: both accept with identical tensors, or both reject with a QansError", async () => {
    await fc.assert(
      fc.asyncProperty(fileArb, maybeMutationArb, chunkingArb, async ({ cases, log2Block, metadata }, mutation, { maxChunk, seed }) => {
        const original = await writeToMemory(cases, { log2Block, metadata });
        const bytes = mutation ? await mutated(original, mutation) : original;
        const streamed = await readStreaming(chunks(bytes, maxChunk, seed));
        const random = await readRandomAccess(bytes);

        if (!mutation) expect(streamed.accepted && random.accepted, "a file as written").toBe(true);
        if (streamed.accepted) {
          expect(random.accepted, `the streaming reader accepts, the random-access reader rejects: ${random.accepted ? "" : random.error.message}`).toBe(true);
          if (random.accepted) expectSameReading(random, streamed);
          return;
        }
        if (!random.accepted) return;
        // Only the streaming reader rejects: it must be for what the random-access reader does not check.
        const repaired = await readStreaming(chunks(withUncheckedBytesRepaired(bytes, random), maxChunk, seed));
        expect(
          repaired.accepted,
          `only the streaming reader rejects (${streamed.error.code}: ${streamed.error.message}), and still does with the unchecked bytes made valid${repaired.accepted ? "" : ` (${repaired.error.code}: ${repaired.error.message})`}`,
        ).toBe(true);
        if (repaired.accepted) expectSameReading(random, repaired, true);
      }),
      fuzzOptions,
    );
  });
});
