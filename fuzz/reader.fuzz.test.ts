/**
 * Robustness of every reader entry point against hostile input: whatever the bytes, a read either
 * succeeds or throws a QansError, within a time bound and without allocating much more than the
 * input. Runs per property: QANS_FUZZ_RUNS (default 200).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { crc32c, MemorySource, QansError, QansReader, verifySource, type TensorData } from "../sdk/index.js";
import { encodeFileHeader } from "../sdk/format/file-header.js";
import { encodeMetadataFrame } from "../sdk/format/metadata-frame.js";
import { encodeTrailer } from "../sdk/format/trailer.js";
import { gaussianTensor, specialFloatTensor, writeToMemory } from "../sdk/testing/fixtures.js";
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
} from "../sdk/testing/patch.js";
import { Random } from "../sdk/testing/random.js";

const RUNS = Number(process.env.QANS_FUZZ_RUNS ?? 200);
/** Wall-clock bound for all entry points on one input. */
const TIME_LIMIT_MS = 2000;
/** Growth of ArrayBuffer memory allowed per input: a constant plus a multiple of the input size. */
const MEMORY_BASE = 64 * 1024 * 1024;
const MEMORY_FACTOR = 50;

// ---------------------------------------------------------------------------------------------
// Running every entry point on one input

interface Outcome {
  /** QansReader.open, metadata() and readTensor of every entry all succeeded. */
  randomAccess: boolean;
  verified: boolean;
  /** Decoded results, kept alive until memory has been measured. */
  kept: unknown[];
}

class NotQansError extends Error {}

async function exercise(bytes: Uint8Array): Promise<Outcome> {
  const kept: unknown[] = [];
  const attempt = async (what: string, action: () => Promise<unknown>): Promise<boolean> => {
    try {
      kept.push(await action());
      return true;
    } catch (error) {
      if (error instanceof QansError) return false;
      throw new NotQansError(`${what} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, { cause: error });
    }
  };
  let reader: QansReader | undefined;
  let randomAccess = await attempt("QansReader.open", async () => (reader = await QansReader.open(new MemorySource(bytes))));
  if (reader) {
    const opened = reader;
    randomAccess = (await attempt("metadata()", () => opened.metadata())) && randomAccess;
    for (const entry of opened.entries) {
      randomAccess = (await attempt(`readTensor("${entry.name}")`, () => opened.readTensor(entry.name))) && randomAccess;
    }
  }
  const verified = await attempt("verifySource", () => verifySource(new MemorySource(bytes)));
  return { randomAccess, verified, kept };
}

/** The property every input must satisfy. */
async function readsSafely(bytes: Uint8Array): Promise<void> {
  const before = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${TIME_LIMIT_MS} ms`)), TIME_LIMIT_MS);
  });
  let outcome: Outcome;
  try {
    outcome = await Promise.race([exercise(bytes), timeout]);
  } finally {
    clearTimeout(timer);
  }
  const elapsed = performance.now() - start;
  const grown = process.memoryUsage().arrayBuffers - before;
  // A synchronous loop would starve the timer, so the elapsed time is checked as well.
  if (elapsed > TIME_LIMIT_MS) throw new Error(`reading took ${elapsed.toFixed(0)} ms, over ${TIME_LIMIT_MS} ms`);
  const allowed = MEMORY_BASE + MEMORY_FACTOR * bytes.length;
  if (grown > allowed) throw new Error(`reading a ${bytes.length}-byte input grew ArrayBuffer memory by ${grown} bytes, over ${allowed}`);
  // The verifier checks everything a random-access reader checks, and more.
  if (outcome.verified && !outcome.randomAccess) throw new Error("verifySource accepted a file that the random-access reader rejects");
  outcome.kept.length = 0;
}

const options = { numRuns: RUNS };

// ---------------------------------------------------------------------------------------------
// Seed files

function skewedBytes(name: string, count: number, seed: number): TensorData {
  const random = new Random(seed);
  const data = new Uint8Array(count);
  for (let i = 0; i < count; i++) data[i] = random.int(16) & random.int(16);
  return { name, dtype: "U8", shape: [count], data };
}

async function seedFiles(): Promise<Uint8Array[]> {
  const scale = new Float32Array(40);
  for (let j = 0; j < 40; j++) scale[j] = 0.5 + j / 40;
  return [
    await writeToMemory(
      [
        { tensor: gaussianTensor("w.q4", [64, 64], 1), encoding: { encoding: "int-quant", bits: 4 } },
        { tensor: gaussianTensor("w.bf16", [300], 2, "BF16"), encoding: { encoding: "float-planes" } },
        { tensor: { name: "c.i32", dtype: "I32", shape: [10], data: new Uint8Array(40).fill(7) }, encoding: { encoding: "raw" } },
        { tensor: specialFloatTensor("s.f16", "F16", 40, 3), encoding: { encoding: "float-planes" } },
      ],
      { log2Block: 12, metadata: { metadata: { origin: "fuzz", "clé": "é" }, architecture: { family: "llama", dim: 64 } } },
    ),
    await writeToMemory(
      [
        {
          tensor: gaussianTensor("q2.asym", [8, 40], 4, "F16"),
          encoding: { encoding: "int-quant", bits: 2, asymmetric: true, groupSize: 16, scaleType: "F32", inputScale: scale },
        },
        { tensor: skewedBytes("u8", 5000, 5), encoding: { encoding: "raw" } },
        { tensor: gaussianTensor("scalar", [], 6), encoding: { encoding: "raw" } },
        { tensor: gaussianTensor("empty", [0, 3], 7), encoding: { encoding: "int-quant", bits: 8 } },
      ],
      { log2Block: 12, metadata: { metadata: {} } },
    ),
    await writeToMemory([], { log2Block: 12, metadata: { metadata: {} } }),
  ];
}

// ---------------------------------------------------------------------------------------------
// Structure-aware fields: every fixed field of every structure, with how to re-seal it

interface Field {
  offset: number;
  width: 1 | 2 | 4 | 8;
}

interface Structure {
  name: string;
  fields: Field[];
  reseal(bytes: Uint8Array): void;
}

function u8s(from: number, to: number): Field[] {
  const fields: Field[] = [];
  for (let p = from; p < to; p++) fields.push({ offset: p, width: 1 });
  return fields;
}

/** 1-, 2- and 4-byte windows at every offset of a region whose fields are not fixed. */
function windows(from: number, to: number): Field[] {
  const fields: Field[] = [];
  for (let p = from; p < to; p++) {
    fields.push({ offset: p, width: 1 });
    if (p + 2 <= to) fields.push({ offset: p, width: 2 });
    if (p + 4 <= to) fields.push({ offset: p, width: 4 });
  }
  return fields;
}

/** The descriptor fields shared by tensor headers and index entries (spec §7.1, §11), from the name length on. */
function descriptorFields(bytes: Uint8Array, at: number): { fields: Field[]; end: number } {
  const nameLength = bytes[at] | (bytes[at + 1] << 8);
  let p = at + 2 + nameLength;
  const rank = bytes[p + 2];
  const fields: Field[] = [{ offset: at, width: 2 }, ...u8s(at + 2, p), ...u8s(p, p + 4)];
  p += 4;
  for (let d = 0; d < rank; d++, p += 8) fields.push({ offset: p, width: 8 });
  fields.push(...u8s(p, p + 4));
  return { fields, end: p + 4 };
}

function structures(bytes: Uint8Array, layout: FileLayout): Structure[] {
  const list: Structure[] = [
    {
      name: "file header",
      fields: [...u8s(0, 8), { offset: 8, width: 2 }, { offset: 10, width: 2 }, { offset: 12, width: 4 }, ...u8s(16, 60)],
      reseal: resealFileHeader,
    },
    {
      name: "metadata frame",
      fields: [{ offset: 64, width: 4 }, { offset: 68, width: 4 }, ...u8s(72, 64 + layout.metadata.length - 4)],
      reseal: (b) => resealMetadata(b, layout),
    },
  ];
  for (const [t, tensor] of layout.tensors.entries()) {
    const at = tensor.headerOffset;
    const descriptor = descriptorFields(bytes, at + 8);
    list.push({
      name: `tensor header ${t}`,
      fields: [{ offset: at, width: 4 }, { offset: at + 4, width: 4 }, ...descriptor.fields, ...windows(descriptor.end, at + tensor.headerLength - 4)],
      reseal: (b) => resealTensorHeader(b, layout, t),
    });
    for (const [i, blockAt] of tensor.blockHeaders.entries()) {
      const payload = tensor.entry.payloadLengths[i];
      const payloadFields: Field[] = [];
      for (let p = 0; p + 4 <= Math.min(payload, 128); p += 4) payloadFields.push({ offset: blockAt + 16 + p, width: 4 });
      payloadFields.push(...u8s(blockAt + 16 + Math.min(payload, 128), blockAt + 16 + Math.min(payload, 160)));
      list.push({
        name: `block ${i} of tensor ${t}`,
        fields: [...u8s(blockAt, blockAt + 2), { offset: blockAt + 2, width: 2 }, { offset: blockAt + 4, width: 4 }, { offset: blockAt + 8, width: 4 }, ...payloadFields],
        reseal: (b) => resealBlock(b, blockAt),
      });
    }
  }
  const index = layout.index.offset;
  const indexFields: Field[] = [
    { offset: index, width: 4 },
    { offset: index + 4, width: 4 },
    { offset: index + 8, width: 8 },
    { offset: index + 16, width: 8 },
    { offset: index + 24, width: 8 },
    { offset: index + 32, width: 8 },
  ];
  for (const [t, tensor] of layout.tensors.entries()) {
    const descriptor = descriptorFields(bytes, indexEntryOffset(layout, t));
    const p = descriptor.end;
    indexFields.push(...descriptor.fields, { offset: p, width: 8 }, { offset: p + 8, width: 4 }, { offset: p + 12, width: 8 });
    for (let i = 0; i < tensor.entry.payloadLengths.length; i++) indexFields.push({ offset: p + 20 + 4 * i, width: 4 });
  }
  list.push({ name: "index", fields: indexFields, reseal: (b) => resealIndex(b, layout) });
  const trailer = layout.trailerOffset;
  list.push({
    name: "trailer",
    fields: [{ offset: trailer, width: 8 }, { offset: trailer + 8, width: 8 }, { offset: trailer + 16, width: 8 }, { offset: trailer + 24, width: 2 }, { offset: trailer + 26, width: 2 }, ...u8s(trailer + 32, trailer + 40)],
    reseal: (b) => resealTrailer(b, trailer),
  });
  return list;
}

/** A descriptor field of a tensor (name, dtype, encoding, rank, β, a dimension, S, reserved) in its header and its index entry. */
interface PairedField {
  header: Field;
  entry: Field;
  reseal(bytes: Uint8Array): void;
}

function pairedFields(bytes: Uint8Array, layout: FileLayout): PairedField[] {
  const pairs: PairedField[] = [];
  for (const [t, tensor] of layout.tensors.entries()) {
    const inHeader = descriptorFields(bytes, tensor.headerOffset + 8).fields;
    const inEntry = descriptorFields(bytes, indexEntryOffset(layout, t)).fields;
    const reseal = (b: Uint8Array) => {
      resealTensorHeader(b, layout, t);
      resealIndex(b, layout);
    };
    inHeader.forEach((header, i) => pairs.push({ header, entry: inEntry[i], reseal }));
  }
  return pairs;
}

function readField(bytes: Uint8Array, field: Field): bigint {
  let value = 0n;
  for (let i = field.width - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[field.offset + i]);
  return value;
}

function writeField(bytes: Uint8Array, field: Field, value: bigint): void {
  let v = BigInt.asUintN(8 * field.width, value);
  for (let i = 0; i < field.width; i++, v >>= 8n) bytes[field.offset + i] = Number(v & 0xffn);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const INTERESTING = [
  0n, 1n, 2n, 3n, 7n, 8n, 9n, 10n, 11n, 12n, 15n, 16n, 20n, 21n, 24n, 25n, 31n, 32n, 33n, 63n, 64n, 65n, 127n, 128n, 255n, 256n,
  4095n, 4096n, 4097n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 2n ** 24n, 2n ** 24n + 1n, 2n ** 30n, 2n ** 31n - 1n, 2n ** 31n,
  2n ** 32n - 1n, 2n ** 32n, 2n ** 48n, 2n ** 48n + 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 64n, 2n ** 64n - 1n,
];

type Rewrite = { structure: number; field: number; value: { kind: "set"; value: bigint } | { kind: "add"; delta: number } };

const rewriteArb: fc.Arbitrary<Rewrite> = fc.record({
  structure: fc.nat(),
  field: fc.nat(),
  value: fc.oneof(
    fc.record({ kind: fc.constant("set" as const), value: fc.constantFrom(...INTERESTING) }),
    fc.record({ kind: fc.constant("set" as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    fc.record({ kind: fc.constant("add" as const), delta: fc.integer({ min: -70, max: 70 }).filter((d) => d !== 0) }),
  ),
});

/** A file whose header, metadata, index frame and trailer are well formed, around arbitrary bytes. */
const synthesizedArb = fc
  .record({
    middle: fc.oneof(fc.uint8Array({ maxLength: 512, size: "max" }), fc.nat({ max: 2048 }).map((n) => new Uint8Array(n))),
    metadataLengthDelta: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.integer({ min: -20, max: 20 })),
    /** null: the number of entries generated. */
    tensorCount: fc.oneof({ arbitrary: fc.constant(null), weight: 4 }, fc.nat({ max: 3 }), fc.constantFrom(2 ** 20, 2 ** 20 + 1, 2 ** 40)),
    entries: fc.array(
      fc.record({
        name: fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.uint8Array({ minLength: 0, maxLength: 8 })),
        dtype: fc.nat({ max: 16 }),
        encoding: fc.nat({ max: 3 }),
        log2Block: fc.oneof({ arbitrary: fc.integer({ min: 12, max: 20 }), weight: 4 }, fc.constantFrom(0, 11, 21, 255)),
        dims: fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 300n }), fc.constantFrom(...INTERESTING)), { maxLength: 3 }),
        streams: fc.nat({ max: 5 }),
        /** null: where the first frame must start. */
        frameOffset: fc.oneof({ arbitrary: fc.constant(null), weight: 2 }, fc.nat({ max: 64 }).map((n) => BigInt(n) * 64n), fc.constantFrom(...INTERESTING)),
        headerLength: fc.oneof(fc.integer({ min: 20, max: 400 }), fc.constantFrom(0, 25, 2 ** 30, 2 ** 32 - 1)),
        frameLength: fc.oneof(fc.bigInt({ min: 0n, max: 5000n }), fc.constantFrom(...INTERESTING)),
        payloadLengths: fc.array(fc.oneof(fc.nat({ max: 300 }), fc.constantFrom(0, 128, 2 ** 31, 2 ** 32 - 1)), { maxLength: 6 }),
      }),
      { maxLength: 3 },
    ),
    tail: fc.uint8Array({ maxLength: 16 }),
  })
  .map((spec) => {
    const header = encodeFileHeader();
    const metadata = encodeMetadataFrame({ metadata: {} });
    const framesStart = Math.ceil((64 + metadata.length) / 64) * 64;
    const indexOffset = Math.ceil((framesStart + spec.middle.length) / 64) * 64;
    const body: number[] = [];
    const u = (value: bigint | number, width: number) => {
      let v = BigInt.asUintN(8 * width, BigInt(value));
      for (let i = 0; i < width; i++, v >>= 8n) body.push(Number(v & 0xffn));
    };
    u(64, 8);
    u(metadata.length + spec.metadataLengthDelta, 8);
    u(spec.tensorCount ?? spec.entries.length, 8);
    for (const e of spec.entries) {
      const name = typeof e.name === "string" ? new TextEncoder().encode(e.name) : e.name;
      u(name.length, 2);
      body.push(...name, e.dtype, e.encoding, e.dims.length, e.log2Block);
      for (const d of e.dims) u(d, 8);
      body.push(e.streams, 0, 0, 0);
      u(e.frameOffset ?? framesStart, 8);
      u(e.headerLength, 4);
      u(e.frameLength, 8);
      for (const p of e.payloadLengths) u(p, 4);
    }
    body.push(...spec.tail);
    const index = new Uint8Array(20 + body.length);
    index.set([0x51, 0x49, 0x44, 0x58]);
    new DataView(index.buffer).setBigUint64(8, BigInt(body.length), true);
    index.set(body, 16);
    new DataView(index.buffer).setUint32(16 + body.length, crc32c(index.subarray(0, 16 + body.length)), true);
    const file = new Uint8Array(indexOffset + index.length + 40);
    file.set(header);
    file.set(metadata, 64);
    file.set(spec.middle, framesStart);
    file.set(index, indexOffset);
    file.set(encodeTrailer(indexOffset, index.length), indexOffset + index.length);
    return file;
  });

// ---------------------------------------------------------------------------------------------

let seeds: Uint8Array[];
let seedStructures: Structure[][];
let seedPairs: PairedField[][];

beforeAll(async () => {
  seeds = await seedFiles();
  const layouts = await Promise.all(seeds.map((bytes) => fileLayout(bytes)));
  seedStructures = seeds.map((bytes, i) => structures(bytes, layouts[i]));
  seedPairs = seeds.map((bytes, i) => pairedFields(bytes, layouts[i]));
  for (const bytes of seeds) await readsSafely(bytes);
});

const seedArb = fc.nat();
const pickSeed = (n: number) => seeds[n % seeds.length].slice();

describe("reader entry points never throw anything but QansError, never hang, never over-allocate", () => {
  it("on arbitrary bytes", async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 4096, size: "max" })), readsSafely), options);
  });

  it("on arbitrary bytes framed by the file magic and a trailer magic", async () => {
    const magic = [0x51, 0x41, 0x4e, 0x53, 0x0d, 0x0a, 0x1a, 0x0a];
    const endMagic = [0x51, 0x41, 0x4e, 0x53, 0x54, 0x52, 0x4c, 0x0a];
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048, size: "max" }), (middle) => readsSafely(Uint8Array.from([...magic, ...middle, ...endMagic]))),
      options,
    );
  });

  it("on synthesized files with an arbitrary index behind a well-formed trailer", async () => {
    await fc.assert(fc.asyncProperty(synthesizedArb, readsSafely), options);
  });

  it("on valid files with random bytes flipped", async () => {
    const flips = fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(seedArb, flips, (seed, list) => {
        const bytes = pickSeed(seed);
        for (const { at, xor } of list) bytes[at % bytes.length] ^= xor;
        return readsSafely(bytes);
      }),
      options,
    );
  });

  it("on valid files truncated at any length", async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, fc.nat(), (seed, length) => {
        const bytes = pickSeed(seed);
        return readsSafely(bytes.subarray(0, length % (bytes.length + 1)));
      }),
      options,
    );
  });

  it("on valid files with random bytes spliced in or cut out", async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, fc.nat(), fc.nat({ max: 64 }), fc.uint8Array({ maxLength: 64 }), (seed, at, remove, insert) => {
        const bytes = pickSeed(seed);
        const cut = at % (bytes.length + 1);
        const spliced = new Uint8Array(bytes.length - Math.min(remove, bytes.length - cut) + insert.length);
        spliced.set(bytes.subarray(0, cut));
        spliced.set(insert, cut);
        spliced.set(bytes.subarray(cut + remove), cut + insert.length);
        return readsSafely(spliced);
      }),
      options,
    );
  });

  it("on valid files with fields rewritten and their structure's checksum re-sealed", async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, fc.array(rewriteArb, { minLength: 1, maxLength: 3 }), (seed, rewrites) => {
        const bytes = pickSeed(seed);
        const list = seedStructures[seed % seeds.length];
        const touched = new Set<Structure>();
        for (const rewrite of rewrites) {
          const structure = list[rewrite.structure % list.length];
          const field = structure.fields[rewrite.field % structure.fields.length];
          const value = rewrite.value.kind === "set" ? rewrite.value.value : readField(bytes, field) + BigInt(rewrite.value.delta);
          writeField(bytes, field, value);
          touched.add(structure);
        }
        for (const structure of touched) structure.reseal(bytes);
        return readsSafely(bytes);
      }),
      options,
    );
  });

  it("on valid files with a descriptor field rewritten alike in a tensor header and its index entry", async () => {
    // Header and index then agree, so the mutation gets past their comparison to the frame's decoding.
    const withTensors = () => seeds.map((_, i) => i).filter((i) => seedPairs[i].length > 0);
    await fc.assert(
      fc.asyncProperty(seedArb, fc.array(rewriteArb, { minLength: 1, maxLength: 2 }), (seed, rewrites) => {
        const which = withTensors()[seed % withTensors().length];
        const bytes = seeds[which].slice();
        const pairs = seedPairs[which];
        const touched = new Set<PairedField>();
        for (const rewrite of rewrites) {
          const pair = pairs[(rewrite.structure + rewrite.field) % pairs.length];
          const value = rewrite.value.kind === "set" ? rewrite.value.value : readField(bytes, pair.header) + BigInt(rewrite.value.delta);
          writeField(bytes, pair.header, value);
          writeField(bytes, pair.entry, value);
          touched.add(pair);
        }
        for (const pair of touched) pair.reseal(bytes);
        return readsSafely(bytes);
      }),
      options,
    );
  });

  it("accepts the unmodified seed files", async () => {
    for (const bytes of seeds) {
      const outcome = await exercise(bytes);
      expect(outcome.verified && outcome.randomAccess).toBe(true);
    }
  });
});
