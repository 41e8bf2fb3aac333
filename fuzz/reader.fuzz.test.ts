/**
 * Robustness of every reader entry point against hostile input: whatever the bytes, a read either
 * succeeds or throws a QansError, within a time bound and without allocating much more than the
 * input. Cases per property: fuzz/options.ts.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { crc32c, MemorySource, QansError, QansReader, verifySource, type TensorData } from "../sdk/index.js";
import { encodeFileHeader } from "../sdk/format/file-header.js";
import { encodeMetadataFrame } from "../sdk/format/metadata-frame.js";
import { encodeTrailer } from "../sdk/format/trailer.js";
import { gaussianTensor, specialFloatTensor, writeToMemory } from "../sdk/testing/fixtures.js";
import { fileLayout } from "../sdk/testing/patch.js";
import { Random } from "../sdk/testing/random.js";
import {
  flipBytes,
  flipsArb,
  INTERESTING,
  pairedFields,
  rewriteArb,
  rewriteFields,
  rewritePairs,
  spliceArb,
  spliced,
  structures,
  truncated,
  type PairedField,
  type Structure,
} from "./mutations.js";
import { fuzzOptions as options } from "./options.js";

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
    await fc.assert(
      fc.asyncProperty(seedArb, flipsArb, (seed, flips) => {
        const bytes = pickSeed(seed);
        flipBytes(bytes, flips);
        return readsSafely(bytes);
      }),
      options,
    );
  });

  it("on valid files truncated at any length", async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, fc.nat(), (seed, length) => readsSafely(truncated(pickSeed(seed), length))),
      options,
    );
  });

  it("on valid files with random bytes spliced in or cut out", async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, spliceArb, (seed, splice) => readsSafely(spliced(pickSeed(seed), splice))),
      options,
    );
  });

  it("on valid files with fields rewritten and their structure's checksum re-sealed", async () => {
    await fc.assert(
      fc.asyncProperty(seedArb, fc.array(rewriteArb, { minLength: 1, maxLength: 3 }), (seed, rewrites) => {
        const bytes = pickSeed(seed);
        rewriteFields(bytes, seedStructures[seed % seeds.length], rewrites);
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
        rewritePairs(bytes, seedPairs[which], rewrites);
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
