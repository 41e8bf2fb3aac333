import { beforeAll, describe, expect, it } from "vitest";
import { JOB_THRESHOLDS } from "./codec/kernels.js";
import { QansError, type QansErrorCode } from "./errors.js";
import { BLOCK_HEADER_SIZE, FILE_HEADER_SIZE, TRAILER_SIZE } from "./format/constants.js";
import { MemorySource } from "./io/source.js";
import { MemorySink } from "./io/sink.js";
import { QansReader } from "./reader.js";
import { verifySource } from "./verify.js";
import { QansWriter } from "./writer.js";
import { gaussianTensor, writeToMemory } from "./testing/fixtures.js";
import {
  fileLayout,
  indexEntryOffset,
  resealBlock,
  resealFileHeader,
  resealIndex,
  resealMetadata,
  resealTensorHeader,
  resealTrailer,
  type FileLayout,
} from "./testing/patch.js";

async function expectCode(action: Promise<unknown>, code: QansErrorCode): Promise<QansError> {
  const error = await action.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(QansError);
  expect((error as QansError).code, (error as Error).message).toBe(code);
  return error as QansError;
}

const verify = (bytes: Uint8Array) => verifySource(new MemorySource(bytes));
const open = (bytes: Uint8Array) => QansReader.open(new MemorySource(bytes));
const readAll = async (bytes: Uint8Array) => {
  const reader = await open(bytes);
  for (const entry of reader.entries) await reader.readTensor(entry.name);
};

let file: Uint8Array;
let layout: FileLayout;
const copy = () => file.slice();
const dv = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

beforeAll(async () => {
  file = await writeToMemory(
    [
      { tensor: gaussianTensor("a", [64, 128], 1), encoding: { encoding: "int-quant", bits: 4 } },
      { tensor: gaussianTensor("b", [300], 2, "BF16"), encoding: { encoding: "float-planes" } },
      { tensor: { name: "c", dtype: "I32", shape: [10], data: new Uint8Array(40).fill(7) }, encoding: { encoding: "raw" } },
    ],
    { log2Block: 12, metadata: { metadata: { origin: "test", aa: "x", ab: "y" }, architecture: { family: "llama", dim: 64 } } },
  );
  layout = await fileLayout(file);
});

describe("readStreams into the caller's buffers", () => {
  it("fills and returns them, with the bytes of a plain read, on every decode path", async () => {
    const reader = await open(file);
    const paths = [
      { job: Infinity, async: Infinity },
      { job: 0, async: Infinity },
      { job: 0, async: 0 },
    ];
    const saved = { ...JOB_THRESHOLDS.decode };
    try {
      for (const path of paths) {
        Object.assign(JOB_THRESHOLDS.decode, path);
        for (const { name } of reader.entries) {
          const plain = await reader.readStreams(name);
          const into = plain.streams.map((stream) => new Uint8Array(stream.length).fill(0xa5));
          const read = await reader.readStreams(name, into);
          expect(read.streams).toHaveLength(into.length);
          read.streams.forEach((stream, s) => {
            expect(stream).toBe(into[s]);
            expect(Buffer.from(stream).equals(Buffer.from(plain.streams[s])), `${name} stream ${s}`).toBe(true);
          });
        }
      }
    } finally {
      Object.assign(JOB_THRESHOLDS.decode, saved);
    }
  });

  it("rejects buffers of the wrong count or length as INVALID_ARGUMENT", async () => {
    const reader = await open(file);
    // "b" is BF16 float-planes: two streams of 300 symbols.
    const error = await expectCode(reader.readStreams("b", [new Uint8Array(300)]), "INVALID_ARGUMENT");
    expect(error.message).toContain('tensor "b"');
    await expectCode(reader.readStreams("b", [new Uint8Array(300), new Uint8Array(299)]), "INVALID_ARGUMENT");
    await expectCode(reader.readStreams("b", [new Uint8Array(300), new Uint8Array(301)]), "INVALID_ARGUMENT");
    await expectCode(reader.readStreams("b", [new Uint8Array(300), new Uint16Array(300) as unknown as Uint8Array]), "INVALID_ARGUMENT");
    await expectCode(reader.readStreams("b", []), "INVALID_ARGUMENT");
  });
});

describe("a valid file", () => {
  it("verifies and reads back its metadata", async () => {
    const report = await verify(file);
    expect(report.tensors.map((t) => t.name)).toEqual(["a", "b", "c"]);
    const reader = await open(file);
    expect(await reader.metadata()).toEqual({ metadata: { origin: "test", aa: "x", ab: "y" }, architecture: { family: "llama", dim: 64 } });
    expect(layout.tensors[0].blockHeaders.length).toBe(2);
  });

  it("places every block payload at a 64-byte aligned offset and every frame at one too", () => {
    for (const tensor of layout.tensors) {
      expect(tensor.headerOffset % 64).toBe(0);
      for (const at of tensor.blockHeaders) expect((at + BLOCK_HEADER_SIZE) % 64).toBe(0);
    }
    expect(layout.index.offset % 64).toBe(0);
  });

  it("reports NOT_FOUND for an unknown tensor name", async () => {
    const reader = await open(file);
    await expectCode(reader.readTensor("missing"), "NOT_FOUND");
  });
});

describe("file header", () => {
  it("BAD_MAGIC", async () => {
    const bytes = copy();
    bytes[0] ^= 0xff;
    await expectCode(verify(bytes), "BAD_MAGIC");
  });
  it("UNSUPPORTED_VERSION is checked before the checksum", async () => {
    const bytes = copy();
    dv(bytes).setUint16(8, 2, true);
    await expectCode(verify(bytes), "UNSUPPORTED_VERSION");
  });
  it("CHECKSUM_MISMATCH", async () => {
    const bytes = copy();
    bytes[20] = 1;
    await expectCode(verify(bytes), "CHECKSUM_MISMATCH");
  });
  it("RESERVED_BITS in flags and in reserved bytes", async () => {
    for (const at of [12, 15, 16, 59]) {
      const bytes = copy();
      bytes[at] = 0x10;
      resealFileHeader(bytes);
      await expectCode(verify(bytes), "RESERVED_BITS");
    }
  });
  it("a minor version above ours is accepted", async () => {
    const bytes = copy();
    dv(bytes).setUint16(10, 7, true);
    resealFileHeader(bytes);
    dv(bytes).setUint16(layout.trailerOffset + 26, 7, true);
    resealTrailer(bytes);
    const report = await verify(bytes);
    expect(report.version).toEqual({ major: 1, minor: 7 });
  });
  it("INDEX_MISMATCH when header and trailer versions differ", async () => {
    const bytes = copy();
    dv(bytes).setUint16(10, 3, true);
    resealFileHeader(bytes);
    await expectCode(verify(bytes), "INDEX_MISMATCH");
  });
});

describe("trailer", () => {
  it("TRUNCATED when the file is cut anywhere after the magic", async () => {
    for (const cut of [8, 63, 64, 100, layout.tensors[0].headerOffset + 3, layout.index.offset, file.length - 1]) {
      await expectCode(open(file.subarray(0, cut)), "TRUNCATED");
      await expectCode(verify(file.subarray(0, cut)), "TRUNCATED");
    }
  });
  it("TRUNCATED for an empty file and BAD_MAGIC for a short or long non-QANS file", async () => {
    await expectCode(open(new Uint8Array(0)), "TRUNCATED");
    await expectCode(open(new TextEncoder().encode("hello")), "BAD_MAGIC");
    await expectCode(open(new Uint8Array(5000).fill(0x41)), "BAD_MAGIC");
  });
  it("TRAILING_DATA when bytes follow the trailer, with the trailer still last", async () => {
    const bytes = new Uint8Array(file.length + 64);
    bytes.set(file.subarray(0, layout.trailerOffset));
    bytes.set(file.subarray(layout.trailerOffset), bytes.length - TRAILER_SIZE);
    await expectCode(open(bytes), "TRAILING_DATA");
  });
  it("UNSUPPORTED_VERSION, CHECKSUM_MISMATCH", async () => {
    let bytes = copy();
    dv(bytes).setUint16(layout.trailerOffset + 24, 9, true);
    await expectCode(open(bytes), "UNSUPPORTED_VERSION");
    bytes = copy();
    bytes[layout.trailerOffset + 3] ^= 1;
    await expectCode(open(bytes), "CHECKSUM_MISMATCH");
  });
  it("OFFSET_OUT_OF_RANGE when the index does not end at the trailer, even near 2^64", async () => {
    for (const value of [BigInt(layout.index.offset - 64), 2n ** 64n - 64n]) {
      const bytes = copy();
      dv(bytes).setBigUint64(layout.trailerOffset, value, true);
      resealTrailer(bytes);
      await expectCode(open(bytes), "OFFSET_OUT_OF_RANGE");
    }
  });
  it("MISALIGNED index offset", async () => {
    const bytes = copy();
    dv(bytes).setBigUint64(layout.trailerOffset, BigInt(layout.index.offset - 1), true);
    dv(bytes).setBigUint64(layout.trailerOffset + 8, BigInt(layout.index.length + 1), true);
    resealTrailer(bytes);
    await expectCode(open(bytes), "MISALIGNED");
  });
  it("TRUNCATED when the declared file length exceeds the real one", async () => {
    const bytes = copy();
    dv(bytes).setBigUint64(layout.trailerOffset + 16, BigInt(file.length + 1), true);
    resealTrailer(bytes);
    await expectCode(open(bytes), "TRUNCATED");
  });
});

describe("metadata frame", () => {
  it("BAD_MAGIC, CHECKSUM_MISMATCH, LIMIT_EXCEEDED", async () => {
    let bytes = copy();
    bytes[FILE_HEADER_SIZE] = 0;
    await expectCode(verify(bytes), "BAD_MAGIC");
    bytes = copy();
    bytes[FILE_HEADER_SIZE + 10] ^= 1;
    await expectCode(verify(bytes), "CHECKSUM_MISMATCH");
    bytes = copy();
    dv(bytes).setUint32(FILE_HEADER_SIZE + 4, 16 * 1024 * 1024 + 1, true);
    await expectCode(verify(bytes), "LIMIT_EXCEEDED");
  });
  it("BAD_METADATA for duplicate keys and non-string values; BAD_UTF8 for invalid text", async () => {
    const body = layout.metadata.offset + 8;
    const text = new TextDecoder().decode(file.subarray(body, body + layout.metadata.length - 12));
    const replace = (from: string, to: string, code: QansErrorCode) => {
      const bytes = copy();
      const replaced = new TextEncoder().encode(text.replace(from, to));
      expect(replaced.length).toBe(text.length);
      bytes.set(replaced, body);
      resealMetadata(bytes, layout);
      return expectCode(verify(bytes), code);
    };
    await replace('"ab"', '"aa"', "BAD_METADATA");
    await replace('"test"', "123456", "BAD_METADATA");
    await replace('{"metadata"', '["metadata"', "BAD_METADATA");
    await replace('"family":"llama"', '"family":1234567', "BAD_METADATA");
    const bytes = copy();
    bytes[body + text.indexOf("test")] = 0xff;
    resealMetadata(bytes, layout);
    await expectCode(verify(bytes), "BAD_UTF8");
  });
});

describe("index", () => {
  const patchEntry = async (
    tensor: number,
    offsetInEntry: number,
    write: (d: DataView, at: number) => void,
    code: QansErrorCode,
    action: (bytes: Uint8Array) => Promise<unknown> = open,
  ) => {
    const bytes = copy();
    write(dv(bytes), indexEntryOffset(layout, tensor) + offsetInEntry);
    resealIndex(bytes, layout);
    return expectCode(action(bytes), code);
  };
  it("BAD_MAGIC, RESERVED_BITS, CHECKSUM_MISMATCH, INDEX_MISMATCH", async () => {
    let bytes = copy();
    bytes[layout.index.offset] = 0;
    await expectCode(open(bytes), "BAD_MAGIC");
    bytes = copy();
    bytes[layout.index.offset + 5] = 1;
    await expectCode(open(bytes), "RESERVED_BITS");
    bytes = copy();
    bytes[layout.index.offset + 30] ^= 1;
    await expectCode(open(bytes), "CHECKSUM_MISMATCH");
    bytes = copy();
    dv(bytes).setBigUint64(layout.index.offset + 8, 5n, true);
    await expectCode(open(bytes), "INDEX_MISMATCH");
  });
  it("DUPLICATE_NAME, BAD_UTF8, BAD_DTYPE, BAD_ENCODING, LIMIT_EXCEEDED, BAD_HEADER, BAD_SHAPE", async () => {
    // Entry layout: u16 name length, name, dtype, encoding, rank, log2 block, dims, streams, reserved.
    await patchEntry(1, 2, (d, at) => d.setUint8(at, "a".charCodeAt(0)), "DUPLICATE_NAME");
    await patchEntry(1, 2, (d, at) => d.setUint8(at, 0xff), "BAD_UTF8");
    await patchEntry(0, 3, (d, at) => d.setUint8(at, 99), "BAD_DTYPE");
    await patchEntry(0, 4, (d, at) => d.setUint8(at, 9), "BAD_ENCODING");
    await patchEntry(0, 5, (d, at) => d.setUint8(at, 9), "LIMIT_EXCEEDED");
    await patchEntry(0, 6, (d, at) => d.setUint8(at, 11), "BAD_HEADER");
    await patchEntry(0, 7, (d, at) => d.setBigUint64(at, 2n ** 48n + 1n, true), "BAD_SHAPE");
    await patchEntry(0, 7, (d, at) => d.setBigUint64(at, 2n ** 42n, true), "BAD_SHAPE");
    await patchEntry(0, 7, (d, at) => d.setBigUint64(at, 2n ** 40n, true), "BAD_HEADER");
    await patchEntry(0, 0, (d, at) => d.setUint16(at, 0, true), "BAD_HEADER");
    await patchEntry(0, 0, (d, at) => d.setUint16(at, 5000, true), "LIMIT_EXCEEDED");
  });
  it("RESERVED_BITS after the stream count, and a wrong stream count", async () => {
    await patchEntry(0, 3 + 4 + 16 + 1, (d, at) => d.setUint8(at, 1), "RESERVED_BITS");
    await patchEntry(0, 3 + 4 + 16, (d, at) => d.setUint8(at, 2), "BAD_HEADER");
  });
  it("MISALIGNED, OFFSET_OUT_OF_RANGE and INDEX_MISMATCH for frame placement", async () => {
    const framesAt = 3 + 4 + 16 + 4;
    const first = layout.tensors[0].headerOffset;
    await patchEntry(0, framesAt, (d, at) => d.setBigUint64(at, BigInt(first + 1), true), "MISALIGNED");
    await patchEntry(0, framesAt, (d, at) => d.setBigUint64(at, BigInt(first + 64), true), "OFFSET_OUT_OF_RANGE");
    await patchEntry(0, framesAt, (d, at) => d.setBigUint64(at, 2n ** 63n, true), "OFFSET_OUT_OF_RANGE");
    await patchEntry(0, framesAt + 12, (d, at) => d.setBigUint64(at, d.getBigUint64(at, true) + 1n, true), "INDEX_MISMATCH");
    // A payload two bytes longer can leave the frame length unchanged (alignment absorbs it); the
    // tensor read still catches the disagreement with the block header.
    await patchEntry(0, framesAt + 20, (d, at) => d.setUint32(at, d.getUint32(at, true) + 2, true), "INDEX_MISMATCH", readAll);
    await patchEntry(0, framesAt + 20, (d, at) => d.setUint32(at, 0xffffffff, true), "OFFSET_OUT_OF_RANGE");
  });
  it("LIMIT_EXCEEDED for a tensor count the index cannot hold", async () => {
    const bytes = copy();
    dv(bytes).setBigUint64(layout.index.offset + 16 + 16, 1000n, true);
    resealIndex(bytes, layout);
    await expectCode(open(bytes), "LIMIT_EXCEEDED");
  });
});

describe("tensor frames", () => {
  const patchHeader = async (tensor: number, at: number, value: number, code: QansErrorCode, action = readAll) => {
    const bytes = copy();
    bytes[layout.tensors[tensor].headerOffset + at] = value;
    resealTensorHeader(bytes, layout, tensor);
    return expectCode(action(bytes), code);
  };
  it("BAD_MAGIC, CHECKSUM_MISMATCH and TRUNCATED header", async () => {
    let bytes = copy();
    bytes[layout.tensors[0].headerOffset] = 0;
    await expectCode(readAll(bytes), "BAD_MAGIC");
    bytes = copy();
    bytes[layout.tensors[0].headerOffset + 12] ^= 1;
    await expectCode(readAll(bytes), "CHECKSUM_MISMATCH");
    bytes = copy();
    dv(bytes).setUint32(layout.tensors[2].headerOffset + 4, 1 << 24, true);
    await expectCode(verify(bytes), "TRUNCATED");
  });
  it("INDEX_MISMATCH when the header names another tensor", async () => {
    await patchHeader(0, 10, "z".charCodeAt(0), "INDEX_MISMATCH");
  });
  it("BAD_HEADER for widths and for fields that run past the header; RESERVED_BITS for the table flag", async () => {
    // Tensor "a": name "a" (1 byte), rank 2: stream descriptor at 10 + 1 + 4 + 16 + 4 = 35.
    await patchHeader(0, 35, 9, "BAD_HEADER");
    // A width the encoding allows but the parameters contradict: the table is read with it first.
    await patchHeader(0, 35, 7, "BAD_FREQ_TABLE");
    await patchHeader(0, 36, 3, "RESERVED_BITS");
    const bytes = copy();
    const at = layout.tensors[0].headerOffset;
    dv(bytes).setUint32(at + 4, layout.tensors[0].headerLength - 1, true);
    resealTensorHeader(bytes, { ...layout, tensors: [{ ...layout.tensors[0], headerLength: layout.tensors[0].headerLength - 1 }] }, 0);
    await expectCode(readAll(bytes), "BAD_HEADER");
  });
  it("BAD_FREQ_TABLE for a frequency table that does not sum to 2^k", async () => {
    const bytes = copy();
    const tableAt = layout.tensors[0].headerOffset + 37;
    const k = bytes[tableAt];
    expect(k).toBeGreaterThanOrEqual(10);
    bytes[tableAt] = k === 15 ? 14 : k + 1;
    resealTensorHeader(bytes, layout, 0);
    await expectCode(readAll(bytes), "BAD_FREQ_TABLE");
  });
});

describe("blocks", () => {
  const firstBlock = () => layout.tensors[0].blockHeaders[0];
  const patchBlock = async (change: (bytes: Uint8Array, at: number) => void, code: QansErrorCode, reseal = true) => {
    const bytes = copy();
    const at = firstBlock();
    change(bytes, at);
    if (reseal) resealBlock(bytes, at);
    return expectCode(readAll(bytes), code);
  };
  it("is a RANS block in the fixture", () => {
    expect(file[firstBlock()]).toBe(2);
  });
  it("CHECKSUM_MISMATCH for a flipped payload byte", async () => {
    await patchBlock((b, at) => (b[at + 100] ^= 1), "CHECKSUM_MISMATCH", false);
  });
  it("BAD_BLOCK for an unknown mode, a wrong count, and RAW/CONST length rules", async () => {
    await patchBlock((b, at) => (b[at] = 3), "BAD_BLOCK");
    await patchBlock((b, at) => dv(b).setUint32(at + 4, 4095, true), "BAD_BLOCK");
    await patchBlock((b, at) => ((b[at] = 0), (b[at + 1] = 0)), "BAD_BLOCK");
    await patchBlock((b, at) => (b[at] = 1), "BAD_BLOCK");
  });
  it("BAD_BLOCK for a lane code above 5; another valid lane code fails the rANS checks", async () => {
    await patchBlock((b, at) => (b[at + 1] = 6), "BAD_BLOCK");
    await patchBlock((b, at) => (b[at + 1] = 255), "BAD_BLOCK");
    // The fixture's block of 4096 symbols has 4 lanes (code 3); read as 32 lanes, the words are states.
    expect(file[firstBlock() + 1]).toBe(3);
    expect(dv(file).getUint32(firstBlock() + 8, true)).toBeLessThan(128 + 4096);
    await patchBlock((b, at) => (b[at + 1] = 0), "BAD_FINAL_STATE");
  });
  it("RESERVED_BITS in the block header", async () => {
    await patchBlock((b, at) => ((b[at] = 0), (b[at + 1] = 5)), "RESERVED_BITS");
    await patchBlock((b, at) => (b[at + 2] = 1), "RESERVED_BITS");
  });
  it("BAD_FINAL_STATE for a stored state below L or at 2^31", async () => {
    await patchBlock((b, at) => dv(b).setUint32(at + BLOCK_HEADER_SIZE, 100, true), "BAD_FINAL_STATE");
    await patchBlock((b, at) => dv(b).setUint32(at + BLOCK_HEADER_SIZE + 4, 2 ** 31, true), "BAD_FINAL_STATE");
  });
  it("a corrupt but re-sealed payload fails with a rANS check, never silently", async () => {
    for (let offset = 128; offset < 400; offset += 7) {
      const bytes = copy();
      const at = firstBlock();
      bytes[at + BLOCK_HEADER_SIZE + offset] ^= 0x5a;
      resealBlock(bytes, at);
      const error = await readAll(bytes).then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(QansError);
      expect(["BAD_FINAL_STATE", "BLOCK_OVERRUN", "TRAILING_DATA"]).toContain((error as QansError).code);
    }
  });
  it("NONZERO_PADDING between structures", async () => {
    const at = firstBlock();
    const bytes = copy();
    bytes[at - 1] = 1;
    const paddingBefore = layout.tensors[0].headerOffset + layout.tensors[0].headerLength < at;
    expect(paddingBefore).toBe(true);
    await expectCode(readAll(bytes), "NONZERO_PADDING");
    await expectCode(verify(bytes), "NONZERO_PADDING");
    const afterMetadata = copy();
    afterMetadata[layout.metadata.offset + layout.metadata.length] = 1;
    await expectCode(verify(afterMetadata), "NONZERO_PADDING");
    const b = layout.tensors[1];
    const endOfB = b.blockHeaders[b.blockHeaders.length - 1] + BLOCK_HEADER_SIZE + b.entry.payloadLengths[b.entry.payloadLengths.length - 1];
    expect(endOfB).toBeLessThan(layout.tensors[2].headerOffset);
    const betweenFrames = copy();
    betweenFrames[endOfB] = 1;
    await expectCode(verify(betweenFrames), "NONZERO_PADDING");
  });
});

describe("writer", () => {
  it("rejects duplicate names, calls out of order, and inconsistent tensors", async () => {
    const writer = new QansWriter(new MemorySink());
    await expectCode(writer.addTensor(gaussianTensor("x", [4], 1), { encoding: "raw" }), "INVALID_ARGUMENT");
    await writer.begin({ metadata: {} });
    await writer.addTensor(gaussianTensor("x", [4], 1), { encoding: "raw" });
    await expectCode(writer.addTensor(gaussianTensor("x", [4], 1), { encoding: "raw" }), "DUPLICATE_NAME");
    await expectCode(writer.addTensor({ name: "y", dtype: "F32", shape: [3], data: new Uint8Array(8) }, { encoding: "raw" }), "INVALID_ARGUMENT");
    await expectCode(writer.addTensor({ name: "", dtype: "F32", shape: [0], data: new Uint8Array(0) }, { encoding: "raw" }), "INVALID_ARGUMENT");
    await expectCode(writer.addTensor(gaussianTensor("z", [4], 1, "F32"), { encoding: "int-quant", bits: 9 }), "INVALID_ARGUMENT");
    await expectCode(writer.addTensor({ name: "w", dtype: "I32", shape: [1], data: new Uint8Array(4) }, { encoding: "float-planes" }), "BAD_DTYPE");
    await writer.finish();
    await expectCode(writer.finish(), "INVALID_ARGUMENT");
  });
});
