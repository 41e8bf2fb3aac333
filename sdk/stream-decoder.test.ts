import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../conformance/vectors.js";
import { QansError } from "./errors.js";
import { importModel } from "./import/detect.js";
import { ChunkForwardReader, type ChunkSource } from "./io/chunk-reader.js";
import { MemorySink } from "./io/sink.js";
import { MemorySource } from "./io/source.js";
import { packModel, type PackMode } from "./pack.js";
import { QansReader } from "./reader.js";
import { decodeStream, type StreamDecodeOptions, type StreamEndEvent, type StreamEvent, type StreamStartEvent, type StreamTensorEvent } from "./stream-decoder.js";
import { DEMO_MODEL_PATH, STORIES_PATH, gaussianTensor, sameBytes, sha256, writeToMemory } from "./testing/fixtures.js";
import { codeOfAsync } from "./testing/outcome.js";
import { fileLayout, indexEntryOffset, resealIndex, resealTensorHeader, resealTrailer } from "./testing/patch.js";
import { Random } from "./testing/random.js";
import { verifySource, verifyStream } from "./verify.js";

/** `bytes` cut into chunks whose sizes `size()` picks, as an async source. */
async function* chunked(bytes: Uint8Array, size: () => number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; ) {
    const end = Math.min(bytes.length, at + Math.max(1, size()));
    yield bytes.subarray(at, end);
    at = end;
  }
}

const fixed = (n: number) => () => n;
function randomSizes(seed: number, max: number): () => number {
  const random = new Random(seed);
  return () => 1 + random.int(max);
}

async function events(input: ChunkSource | ChunkForwardReader | ReadableStream<Uint8Array>, options?: StreamDecodeOptions): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of decodeStream(input, options)) out.push(event);
  return out;
}

/** Decodes a stream and checks every tensor against the random-access reader, byte for byte. */
async function expectSameAsRandomAccess(bytes: Uint8Array, size: () => number): Promise<void> {
  const reader = await QansReader.open(new MemorySource(bytes));
  const seen = await events(chunked(bytes, size), { output: "both" });
  expect(seen[0]).toMatchObject({ type: "start", metadata: await reader.metadata() });
  const tensors = seen.filter((e): e is StreamTensorEvent => e.type === "tensor");
  expect(tensors.map((t) => t.header.name)).toEqual(reader.entries.map((e) => e.name));
  for (const [i, event] of tensors.entries()) {
    const entry = reader.entries[i];
    expect({ offset: event.frameOffset, length: event.frameLength, header: event.headerLength }).toEqual({
      offset: entry.frameOffset,
      length: entry.frameLength,
      header: entry.headerLength,
    });
    expect([...event.payloadLengths]).toEqual([...entry.payloadLengths]);
    const { streams } = await reader.readStreams(entry.name);
    expect(event.streams!.length).toBe(streams.length);
    event.streams!.forEach((s, k) => expect(sameBytes(s, streams[k]), `${entry.name} stream ${k}`).toBe(true));
    const tensor = await reader.readTensor(entry.name);
    expect({ name: event.tensor!.name, dtype: event.tensor!.dtype, shape: event.tensor!.shape }).toEqual({ name: tensor.name, dtype: tensor.dtype, shape: tensor.shape });
    expect(sameBytes(event.tensor!.data, tensor.data), `${entry.name} data`).toBe(true);
  }
  const end = seen[seen.length - 1] as StreamEndEvent;
  expect(end).toMatchObject({ type: "end", fileBytes: bytes.length, trailer: reader.trailer });
  expect(end.index).toEqual(reader.index);
  await reader.close();
}

async function pack(path: string, mode: PackMode): Promise<Uint8Array> {
  const sink = new MemorySink();
  await packModel(await importModel(path), sink, { mode });
  return sink.bytes();
}

describe("streaming decode of real models equals random-access decode", () => {
  const files = new Map<string, Uint8Array>();
  beforeAll(async () => {
    for (const mode of ["lossless", "int8", "int4"] as const) files.set(`stories260K ${mode}`, await pack(STORIES_PATH, mode));
    files.set("demo model int8", await pack(DEMO_MODEL_PATH, "int8"));
  });

  const cases = ["stories260K lossless", "stories260K int8", "stories260K int4", "demo model int8"];
  const chunkings: [string, () => () => number][] = [
    ["7-byte", () => fixed(7)],
    ["64 KiB", () => fixed(65536)],
    ["random-size", () => randomSizes(42, 20_000)],
  ];
  describe.each(cases)("%s", (name) => {
    it.each(chunkings)("in %s chunks: symbols and tensors", async (_, size) => {
      await expectSameAsRandomAccess(files.get(name)!, size());
    });

    it("block by block: every block's symbols are those of the random-access streams at its place", async () => {
      const bytes = files.get(name)!;
      const reader = await QansReader.open(new MemorySource(bytes));
      let streams: Uint8Array[] = [];
      let blocks = 0;
      let tensors = 0;
      for await (const event of decodeStream(chunked(bytes, randomSizes(5, 100_000)), { blocks: true })) {
        if (event.type === "tensor-start") streams = (await reader.readStreams(event.header.name)).streams;
        if (event.type === "block") {
          const { stream, firstSymbol, symbols } = event.block;
          expect(sameBytes(symbols, streams[stream].subarray(firstSymbol, firstSymbol + symbols.length))).toBe(true);
          blocks++;
        }
        if (event.type === "tensor-end") {
          expect([...event.payloadLengths]).toEqual([...reader.entry(event.header.name).payloadLengths]);
          tensors++;
        }
      }
      expect(tensors).toBe(reader.entries.length);
      expect(blocks).toBe(reader.entries.reduce((sum, e) => sum + e.payloadLengths.length, 0));
    });

    it("verifyStream reports exactly what verifySource reports", async () => {
      const bytes = files.get(name)!;
      expect(await verifyStream(chunked(bytes, fixed(65536)))).toEqual(await verifySource(new MemorySource(bytes)));
    });
  });

  it("holds no more input than the largest structure plus one chunk", async () => {
    const bytes = files.get("stories260K lossless")!;
    const reader = await QansReader.open(new MemorySource(bytes));
    const largest = Math.max(
      reader.index.metadataLength,
      reader.trailer.indexLength,
      ...reader.entries.flatMap((e) => [e.headerLength, ...e.payloadLengths]),
    );
    for (const chunk of [7, 4096, 65536]) {
      const input = new ChunkForwardReader(chunked(bytes, fixed(chunk)));
      await events(input, { blocks: true });
      expect(input.peakRetainedBytes).toBeLessThanOrEqual(largest + chunk);
      expect(input.peakRetainedBytes).toBeLessThan(bytes.length / 4);
    }
  });

  it("decodes the first bytes in 1-byte chunks, from a Node Readable and from a ReadableStream", async () => {
    const bytes = await writeToMemory([
      { tensor: gaussianTensor("a", [40, 100], 1, "BF16"), encoding: { encoding: "float-planes" } },
      { tensor: gaussianTensor("b", [64, 64], 2), encoding: { encoding: "int-quant", bits: 4, groupSize: 32, asymmetric: true } },
      { tensor: gaussianTensor("c", [300], 3, "F16"), encoding: { encoding: "raw" } },
    ]);
    await expectSameAsRandomAccess(bytes, fixed(1));
    const node = Readable.from(chunked(bytes, fixed(1000)), { objectMode: true });
    const web = new Blob([bytes]).stream();
    for (const input of [node, web, [bytes]]) {
      const seen = await events(input as ChunkSource);
      expect(seen.map((e) => e.type)).toEqual(["start", "tensor", "tensor", "tensor", "end"]);
    }
  });
});

describe("output options", () => {
  it("gives streams, the tensor, or both, and refuses anything else", async () => {
    const bytes = await writeToMemory([{ tensor: gaussianTensor("w", [8, 8], 1), encoding: { encoding: "float-planes" } }]);
    const [streams] = (await events([bytes])).filter((e): e is StreamTensorEvent => e.type === "tensor");
    expect(streams.streams).toHaveLength(4);
    expect(streams.tensor).toBeUndefined();
    const [tensor] = (await events([bytes], { output: "tensor" })).filter((e): e is StreamTensorEvent => e.type === "tensor");
    expect(tensor.streams).toBeUndefined();
    expect(tensor.tensor!.data.length).toBe(256);
    expect(await codeOfAsync(events([bytes], { output: "bytes" as never }))).toBe("INVALID_ARGUMENT");
  });
});

describe("conformance vectors, streamed", () => {
  const here = new URL("../conformance/", import.meta.url);
  const manifest = JSON.parse(readFileSync(new URL("manifest.json", here), "utf8")) as Manifest;
  const load = (kind: string, file: string) => new Uint8Array(readFileSync(new URL(`vectors/${kind}/${file}`, here)));

  it.each(manifest.valid)("$file decodes to the manifest's hashes, in any chunking", async (vector) => {
    // A set file streams as the QANS file it is, with no tensors; its shards hold them (spec §16.2).
    const files = vector.shards ? [vector.file, ...vector.shards] : [vector.file];
    for (const size of [fixed(1), fixed(7), randomSizes(9, 5000)]) {
      const tensors: StreamTensorEvent[] = [];
      for (const [f, file] of files.entries()) {
        const all = await events(chunked(load("valid", file), size), { output: "both" });
        expect((all[0] as StreamStartEvent).set).toBe(vector.shards !== undefined && f === 0);
        tensors.push(...all.filter((e): e is StreamTensorEvent => e.type === "tensor"));
      }
      expect(tensors.map((t) => t.header.name)).toEqual(vector.tensors.map((t) => t.name));
      tensors.forEach((event, i) => {
        expect(sha256(event.tensor!.data)).toBe(vector.tensors[i].sha256);
        expect(event.streams!.map(sha256)).toEqual(vector.tensors[i].symbols_sha256);
      });
    }
    for (const file of files) {
      const bytes = load("valid", file);
      await expectSameAsRandomAccess(bytes, randomSizes(1, 300));
      expect(await verifyStream(chunked(bytes, fixed(13)))).toEqual(await verifySource(new MemorySource(bytes)));
    }
  });

  /**
   * Vectors that a streaming reader rejects with another code than the full verifier, as spec §12
   * allows: an index body whose length disagrees with the trailer's is met before the trailer, so
   * the streaming reader finds the index checksum wrong first.
   */
  const STREAMING_CODES: Record<string, string> = { "index-body-length-mismatch.qans": "CHECKSUM_MISMATCH" };

  it.each(manifest.invalid)("$file is rejected with $code", async (vector) => {
    const bytes = load("invalid", vector.file);
    if (vector.shards && (vector.code === "INDEX_MISMATCH" || vector.code === "IO_ERROR")) {
      // The set file is valid on its own: these defects are found opening its shards or comparing
      // it with them (§16.2), which a stream of the set file alone never does.
      expect((await events(chunked(bytes, fixed(64)))).at(-1)?.type).toBe("end");
      return;
    }
    for (const size of [fixed(1), fixed(64), randomSizes(4, 3000)]) {
      const error = await events(chunked(bytes, size)).catch((e: unknown) => e);
      expect(error, "the streaming decoder must reject").toBeInstanceOf(QansError);
      expect((error as QansError).code, (error as Error).message).toBe(STREAMING_CODES[vector.file] ?? vector.code);
    }
  });
});

describe("damaged streams", () => {
  let file: Uint8Array;
  beforeAll(async () => {
    file = await writeToMemory(
      [
        { tensor: gaussianTensor("layer.0.wq", [48, 100], 1), encoding: { encoding: "int-quant", bits: 4, groupSize: 0, asymmetric: false } },
        { tensor: gaussianTensor("layer.0.wk", [100, 48], 2, "BF16"), encoding: { encoding: "float-planes" } },
        { tensor: gaussianTensor("layer.0.no", [64], 3), encoding: { encoding: "raw" } },
      ],
      { log2Block: 12, metadata: { metadata: { model: "test" } } },
    );
  });

  it("is TRUNCATED when cut at any offset, in any chunking, and never hangs", async () => {
    const random = new Random(17);
    for (let cut = 0; cut < file.length; cut++) {
      const prefix = file.subarray(0, cut);
      const size = cut % 97 === 0 ? fixed(1) : randomSizes(cut, 200);
      const error = await events(chunked(prefix, size), { blocks: random.next() < 0.5 }).catch((e: unknown) => e);
      expect(error, `cut at ${cut}`).toBeInstanceOf(QansError);
      expect((error as QansError).code, `cut at ${cut}: ${(error as Error).message}`).toBe("TRUNCATED");
    }
    expect((await events([file])).at(-1)?.type).toBe("end");
    // Small, yet several blocks per stream.
    expect(file.length).toBeLessThan(16_384);
    expect((await fileLayout(file)).tensors[1].blockHeaders.length).toBeGreaterThanOrEqual(4);
  });

  async function tampered(patch: (bytes: Uint8Array, view: DataView, layout: Awaited<ReturnType<typeof fileLayout>>) => void): Promise<Uint8Array> {
    const bytes = file.slice();
    const layout = await fileLayout(bytes);
    patch(bytes, new DataView(bytes.buffer), layout);
    return bytes;
  }

  /** The streaming decoder's code; the index alone must still be acceptable to a random-access reader. */
  async function streamCode(bytes: Uint8Array): Promise<string> {
    await QansReader.open(new MemorySource(bytes));
    return codeOfAsync(events(chunked(bytes, fixed(100))));
  }

  it("is INDEX_MISMATCH when a self-consistent index disagrees with the frames", async () => {
    // A name of the same length, still unique.
    const renamed = await tampered((bytes, _, layout) => {
      bytes[indexEntryOffset(layout, 1) + 2 + "layer.0.".length] = "v".charCodeAt(0);
      resealIndex(bytes, layout);
    });
    expect(await streamCode(renamed)).toBe("INDEX_MISMATCH");

    // The same element count and block count in another shape.
    const reshaped = await tampered((bytes, view, layout) => {
      const dims = indexEntryOffset(layout, 0) + 2 + "layer.0.wq".length + 4;
      view.setBigUint64(dims, 100n, true);
      view.setBigUint64(dims + 8, 48n, true);
      resealIndex(bytes, layout);
    });
    expect(await streamCode(reshaped)).toBe("INDEX_MISMATCH");

    // One payload one byte shorter: the next block header stays where it was, so the frame length
    // and every placement check of the index still hold; only the block-by-block check sees it.
    const shortened = await tampered((bytes, view, layout) => {
      const { entry } = layout.tensors[1];
      const lengths = indexEntryOffset(layout, 1) + 2 + entry.name.length + 4 + 8 * entry.shape.length + 4 + 8 + 4 + 8;
      const { headerOffsets } = { headerOffsets: layout.tensors[1].blockHeaders };
      const block = headerOffsets.findIndex((at, i) => i + 1 < headerOffsets.length && entry.payloadLengths[i] > 0 && (at + 16 + entry.payloadLengths[i]) % 64 !== 49);
      expect(block).toBeGreaterThanOrEqual(0);
      view.setUint32(lengths + 4 * block, entry.payloadLengths[block] - 1, true);
      resealIndex(bytes, layout);
    });
    expect(await streamCode(shortened)).toBe("INDEX_MISMATCH");
  });

  it("is INDEX_MISMATCH when the trailer's version differs from the file header's", async () => {
    const bytes = await tampered((bytes, view, layout) => {
      view.setUint16(layout.trailerOffset + 26, 0, true);
      resealTrailer(bytes);
    });
    expect(await codeOfAsync(events([bytes]))).toBe("INDEX_MISMATCH");
  });

  it("is DUPLICATE_NAME at the second frame of a name, before the index is read", async () => {
    const bytes = await tampered((bytes, _, layout) => {
      // "layer.0.wk" becomes "layer.0.wq" in its tensor header.
      bytes[layout.tensors[1].headerOffset + 10 + "layer.0.w".length] = "q".charCodeAt(0);
      resealTensorHeader(bytes, layout, 1);
    });
    const layout = await fileLayout(file);
    expect(await codeOfAsync(events([bytes]))).toBe("DUPLICATE_NAME");
    // In file order: cut the stream after that frame, and the duplicate still comes first.
    expect(await codeOfAsync(events([bytes.subarray(0, layout.tensors[2].headerOffset)]))).toBe("DUPLICATE_NAME");
  });

  it("is TRAILING_DATA when anything follows the trailer", async () => {
    for (const extra of [Uint8Array.of(0), file.subarray(file.length - 40), new Uint8Array(100_000)]) {
      const bytes = new Uint8Array(file.length + extra.length);
      bytes.set(file);
      bytes.set(extra, file.length);
      expect(await codeOfAsync(events(chunked(bytes, fixed(333))))).toBe("TRAILING_DATA");
    }
  });

  it("is BAD_MAGIC when a frame is neither a tensor nor the index", async () => {
    const bytes = await tampered((bytes, _, layout) => {
      bytes[layout.tensors[1].headerOffset] = 0x58;
    });
    expect(await codeOfAsync(events([bytes]))).toBe("BAD_MAGIC");
  });

  it("closes the input when the caller stops early, in either mode", async () => {
    for (const blocks of [false, true]) {
      let closed = false;
      async function* source(): AsyncGenerator<Uint8Array> {
        try {
          yield* chunked(file, fixed(50));
        } finally {
          closed = true;
        }
      }
      let count = 0;
      for await (const event of decodeStream(source(), { blocks })) {
        if (event.type === "tensor" || event.type === "block") count++;
        if (count === 2) break;
      }
      expect(closed).toBe(true);
    }
  });
});
