import { createReadStream } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { safetensorsBytes, sequenceBytes } from "../testing/safetensors-bytes.js";
import { writeSafetensors } from "../export/safetensors.js";
import { QansError } from "../errors.js";
import { STORIES_PATH, sameBytes } from "../testing/fixtures.js";
import { codeOfAsync, type Outcome } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { useTempDir } from "../testing/temp-dir.js";
import type { ImportedModel, TensorData } from "../tensor/tensor.js";
import { importModel } from "./detect.js";
import { importSafetensors, parseSafetensorsHeader } from "./safetensors.js";
import { readSafetensorsStream } from "./safetensors-stream.js";

const dir = useTempDir("qans-st-stream-");

const st = safetensorsBytes;

const seq = sequenceBytes;

const SMALL_HEADER = {
  b: { dtype: "F32", shape: [2, 2], data_offsets: [6, 22] },
  __metadata__: { format: "pt", note: "ünïcode" },
  a: { dtype: "U8", shape: [6], data_offsets: [0, 6] },
  c: { dtype: "BF16", shape: [], data_offsets: [22, 24] },
  empty: { dtype: "F64", shape: [3, 0], data_offsets: [24, 24] },
  d: { dtype: "I16", shape: [3], data_offsets: [24, 30] },
};
const SMALL = st(SMALL_HEADER, seq(30));

type ChunkSize = number | "random";

/**
 * `bytes` as chunks of `size` bytes. Every chunk is yielded from one scratch buffer that is
 * overwritten afterwards, so a reader that keeps a chunk instead of copying it sees garbage.
 */
async function* chunks(bytes: Uint8Array, size: ChunkSize, seed = 1): AsyncGenerator<Uint8Array> {
  const random = new Random(seed);
  const scratch = new Uint8Array(typeof size === "number" ? size : 100_000);
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, typeof size === "number" ? size : 1 + random.int(scratch.length));
    scratch.set(bytes.subarray(at, at + n));
    yield scratch.subarray(0, n);
    scratch.fill(0xee);
    at += n;
  }
}

async function readAll(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<ImportedModel> {
  const stream = await readSafetensorsStream(source, { name: "test stream" });
  const tensors: TensorData[] = [];
  for await (const tensor of stream) tensors.push(tensor);
  return { metadata: stream.header.metadata, tensors };
}

const streamCode = (bytes: Uint8Array, size: ChunkSize = 4096) => codeOfAsync(() => readAll(chunks(bytes, size)));

let fileCount = 0;
async function importerCode(bytes: Uint8Array): Promise<Outcome> {
  const path = join(dir(), `case-${fileCount++}.safetensors`);
  await writeFile(path, bytes);
  return codeOfAsync(() => importSafetensors(path));
}

function expectSameModel(actual: ImportedModel, expected: ImportedModel): void {
  expect(actual.metadata).toEqual(expected.metadata);
  expect(actual.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(expected.tensors.map((t) => [t.name, t.dtype, t.shape]));
  actual.tensors.forEach((tensor, i) => expect(sameBytes(tensor.data, expected.tensors[i].data), tensor.name).toBe(true));
}

describe("readSafetensorsStream on a real model", () => {
  let storiesPath: string;
  let stories: Uint8Array;
  let reference: ImportedModel;

  beforeAll(async () => {
    const model = await importModel(STORIES_PATH);
    storiesPath = join(dir(), "stories260K.safetensors");
    await writeSafetensors(storiesPath, model.tensors, model.metadata);
    stories = await readFile(storiesPath);
    reference = await importSafetensors(storiesPath);
    expect(reference.tensors.length).toBe(47);
  });

  it.each<ChunkSize>([7, 65536, "random", 1 << 22])("gives the whole-file importer's tensors byte for byte in chunks of %s bytes", async (size) => {
    expectSameModel(await readAll(chunks(stories, size)), reference);
  });

  it("reads a Node stream, with the header ready before any tensor data is read", async () => {
    const stream = await readSafetensorsStream(createReadStream(storiesPath, { highWaterMark: 4096 }));
    expect(stream.header.tensors.map((t) => t.name)).toEqual(reference.tensors.map((t) => t.name));
    expect(stream.header.dataStart).toBe(8 + stream.header.headerLength);
    const tensors: TensorData[] = [];
    for await (const tensor of stream.tensors) tensors.push(tensor);
    expectSameModel({ metadata: stream.header.metadata, tensors }, reference);
  });

  it("reads a tensor's bytes only when the consumer asks for it: one tensor and one chunk ahead at most", async () => {
    const chunkSize = 1000;
    let pulled = 0;
    async function* counted() {
      for await (const chunk of chunks(stories, chunkSize)) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    const stream = await readSafetensorsStream(counted());
    const { dataStart, tensors: entries } = stream.header;
    expect(pulled).toBeLessThan(dataStart + chunkSize);
    let i = 0;
    for await (const tensor of stream) {
      expect(pulled, tensor.name).toBeGreaterThanOrEqual(dataStart + entries[i].end);
      expect(pulled, tensor.name).toBeLessThan(dataStart + entries[i].end + chunkSize);
      i++;
    }
    expect(pulled).toBe(stories.length);
  });

  it("reports truncation at many offsets with the importer's code", async () => {
    const header = parseSafetensorsHeader(stories, stories.length, "x");
    const random = new Random(7);
    const cuts = new Set<number>([0, 1, 7, 8, 9, 100, header.dataStart - 1, header.dataStart, header.dataStart + 1, stories.length - 1]);
    for (const { begin, end } of header.tensors.slice(0, 10)) for (const at of [begin, begin + 1, end - 1]) cuts.add(header.dataStart + at);
    while (cuts.size < 60) cuts.add(random.int(stories.length));
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      const bytes = stories.subarray(0, cut);
      const expected = await importerCode(bytes);
      expect(expected).toBe("TRUNCATED");
      expect([cut, await streamCode(bytes, "random")]).toEqual([cut, expected]);
    }
  });
});

describe("readSafetensorsStream on small files", () => {
  it("reads one byte at a time, and from a plain array of chunks", async () => {
    const path = join(dir(), "small.safetensors");
    await writeFile(path, SMALL);
    const reference = await importSafetensors(path);
    expect(reference.tensors.map((t) => t.name)).toEqual(["a", "b", "c", "empty", "d"]);
    expectSameModel(await readAll(chunks(SMALL, 1)), reference);
    expectSameModel(await readAll([SMALL.subarray(0, 3), new Uint8Array(0), SMALL.subarray(3, 40), SMALL.subarray(40)]), reference);
    expectSameModel(await readAll([SMALL]), reference);
  });

  it("reports truncation at every cut point with the importer's code, one byte at a time", async () => {
    for (let cut = 0; cut < SMALL.length; cut++) {
      const bytes = SMALL.subarray(0, cut);
      expect([cut, await streamCode(bytes, 1)]).toEqual([cut, await importerCode(bytes)]);
    }
  });

  it("handles a file without tensors, and bytes after the last tensor", async () => {
    const empty = await readAll([st({ __metadata__: { k: "v" } })]);
    expect(empty).toEqual({ metadata: { k: "v" }, tensors: [] });
    for (const bytes of [st(SMALL_HEADER, seq(31)), st({}, seq(1)), st({}, seq(100_000))]) {
      expect(await importerCode(bytes)).toBe("OFFSET_OUT_OF_RANGE");
      for (const size of [1, 7, 65536] as const) expect(await streamCode(bytes, size)).toBe("OFFSET_OUT_OF_RANGE");
    }
  });

  it("rejects every malformed header with the importer's code", async () => {
    const utf8 = new TextEncoder().encode('{"__metadata__":{"k":"v?"}}');
    utf8[utf8.indexOf(0x3f)] = 0xff;
    const entry = (value: unknown) => st({ a: value });
    const withShape = (shape: unknown) => st({ a: { dtype: "U8", shape, data_offsets: [0, 0] } });
    const cases: [string, Uint8Array][] = [
      ["length over the limit", st({}, new Uint8Array(0), 100_000_001n)],
      ["length 2^64 - 1", st({}, new Uint8Array(0), 2n ** 64n - 1n)],
      ["length past the input", st({}, new Uint8Array(0), 99_999_999n)],
      ["empty header", st("")],
      ["array", st("[]")],
      ["trailing text", st("{} x")],
      ["byte order mark", st("\ufeff{}")],
      ["duplicate key", st('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', seq(1))],
      ["invalid UTF-8", st(utf8)],
      ["unknown dtype", entry({ dtype: "F4", shape: [0], data_offsets: [0, 0] })],
      ["dtype not a string", entry({ dtype: 1, shape: [0], data_offsets: [0, 0] })],
      ["extra key", entry({ dtype: "U8", shape: [0], data_offsets: [0, 0], extra: 1 })],
      ["one offset", entry({ dtype: "U8", shape: [0], data_offsets: [0] })],
      ["negative shape", withShape([-1])],
      ["rank 9", withShape([1, 1, 1, 1, 1, 1, 1, 1, 0])],
      ["too many elements", withShape([2 ** 24, 2 ** 24 + 1])],
      ["span not matching the shape", st({ a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, seq(20))],
      ["end before begin", entry({ dtype: "U8", shape: [0], data_offsets: [2, 0] })],
      ["gap", st({ a: { dtype: "U8", shape: [2], data_offsets: [0, 2] }, b: { dtype: "U8", shape: [2], data_offsets: [3, 5] } }, seq(5))],
      ["overlap", st({ a: { dtype: "U8", shape: [3], data_offsets: [0, 3] }, b: { dtype: "U8", shape: [2], data_offsets: [2, 4] } }, seq(4))],
      ["first tensor not at 0", st({ a: { dtype: "U8", shape: [2], data_offsets: [1, 3] } }, seq(3))],
      ["offsets above 2^53", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[9007199254740993,9007199254740997]}}', seq(4))],
      ["metadata not strings", st({ __metadata__: { a: 1 } })],
      ["metadata not an object", st({ __metadata__: ["a"] })],
      // Two faults: the layout is checked before the data section's length, by both readers.
      ["gap and truncated", st({ a: { dtype: "U8", shape: [4], data_offsets: [0, 4] }, b: { dtype: "U8", shape: [2], data_offsets: [5, 7] } }, seq(2))],
    ];
    for (const [name, bytes] of cases) {
      const expected = await importerCode(bytes);
      expect([name, expected]).not.toEqual([name, "no error"]);
      for (const size of [1, 5, 4096] as const) expect([name, size, await streamCode(bytes, size)]).toEqual([name, size, expected]);
    }
    await expect(readAll([st({}, new Uint8Array(0), 100_000_001n)])).rejects.toThrow(/test stream: header length 100000001/);
  });

  it("names the tensor and offsets when the input ends inside a tensor", async () => {
    await expect(readAll([SMALL.subarray(0, SMALL.length - 3)])).rejects.toThrow(/test stream: tensor "d" needs bytes \d+\.\.\d+ but the input ends at byte \d+/);
  });
});

describe("readSafetensorsStream and its input", () => {
  it("turns input errors into IO_ERROR and rejects chunks that are not bytes", async () => {
    async function* failing() {
      yield SMALL.subarray(0, 50);
      throw new Error("connection reset");
    }
    expect(await codeOfAsync(() => readAll(failing()))).toBe("IO_ERROR");
    await expect(readAll(failing())).rejects.toThrow(/test stream: reading input at byte 50: connection reset/);
    expect(await codeOfAsync(() => readAll(["text" as unknown as Uint8Array]))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => readSafetensorsStream(42 as unknown as Iterable<Uint8Array>))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(() => readSafetensorsStream(SMALL as unknown as Iterable<Uint8Array>))).toBe("INVALID_ARGUMENT");
  });

  it("passes on a QansError from the input as it is", async () => {
    async function* failing() {
      yield SMALL.subarray(0, 10);
      throw new QansError("CHECKSUM_MISMATCH", "upstream");
    }
    expect(await codeOfAsync(() => readAll(failing()))).toBe("CHECKSUM_MISMATCH");
  });

  it("releases the input when the consumer stops early, when the header fails and on close()", async () => {
    const returned: string[] = [];
    function tracked(label: string, bytes: Uint8Array): AsyncIterable<Uint8Array> {
      return {
        [Symbol.asyncIterator]() {
          const inner = chunks(bytes, 3);
          return {
            next: () => inner.next(),
            async return() {
              returned.push(label);
              return inner.return(undefined);
            },
          };
        },
      };
    }
    const early = await readSafetensorsStream(tracked("break", SMALL));
    for await (const tensor of early) {
      expect(tensor.name).toBe("a");
      break;
    }
    const unread = await readSafetensorsStream(tracked("close", SMALL));
    await unread.close();
    expect(await codeOfAsync(() => readSafetensorsStream(tracked("bad header", st("[]"))))).toBe("BAD_INPUT");
    // An input read to its end is not returned.
    await readAll(tracked("complete", SMALL));
    expect(returned).toEqual(["break", "close", "bad header"]);
  });
});
