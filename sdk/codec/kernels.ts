import { ERROR_CODES, QansError, type QansErrorCode } from "../errors.js";
import { blockHeaderParam, type BlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE, BLOCK_MODES } from "../format/constants.js";
import {
  DECODE_JOB_FIELDS,
  nativeAddon,
  type NativeAddon,
  type NativeDecodeJob,
  type NativeDecodeResult,
  type NativeDecodeTable,
  type NativeEncodeJob,
  type NativeEncodeResult,
} from "../native/addon.js";
import { dequantize } from "../quant/dequantize.js";
import type { QuantParams } from "../quant/rtn.js";
import { isFloatPlaneDType, type DType } from "../tensor/dtype.js";
import { packBits, unpackBits } from "./bitpack.js";
import { crc32c } from "./crc32c.js";
import { mergeFloatPlanes, splitFloatPlanes } from "./float-planes.js";
import type { FreqTable } from "./freq-table.js";
import { addHistogram, histogram } from "./histogram.js";
import { ransEncode, RansDecoder } from "./rans.js";

/**
 * The codec's hot kernels behind one interface, with two implementations: the TypeScript modules
 * (the reference) and the native addon (native/), which gives byte-identical results and the same
 * error codes. The SDK calls {@link kernels}, which picks the native set when the addon is loaded.
 */

export type KernelSetName = "typescript" | "native";

/** Decodes the RANS blocks of one stream; built once per frequency table. */
export interface RansBlockDecoder {
  decode(payload: Uint8Array, count: number, lanes: number, out: Uint8Array, where: string): void;
}

/**
 * Whole-tensor jobs on the addon's thread pool (native/src/block_jobs.h): every block of one frame
 * checked and decoded, or encoded, at once, on up to `QANS_THREADS` threads. Errors are already the
 * QansErrors the per-block kernels throw; the caller picks the first in block order.
 */
export interface BlockJobs {
  /** The decode lookups of a table, for {@link DecodeJob} streams. */
  decodeTable(table: FreqTable): NativeDecodeTable;
  /**
   * A buffer for a stream's symbols, of memory that the pool's threads fill quickly; its contents
   * are unspecified until a job writes them (a successful decode writes every symbol).
   */
  symbolBuffer(length: number): Uint8Array;
  /** `where(i)` names block i in error messages. A synchronous job runs on this thread and the pool's. */
  decode(job: DecodeJob, where: (block: number) => string, async: boolean): Promise<DecodeJobResult>;
  /** Runs on this thread and the pool's. */
  encode(job: EncodeJob): EncodeJobResult;
  encodeAsync(job: EncodeJob): Promise<EncodeJobResult>;
}

/** Every block of a tensor's streams, which all hold the same number of symbols. */
export interface EncodeJob {
  log2Block: number;
  streams: { symbols: Uint8Array; width: number; table: FreqTable | null }[];
}

/**
 * Sizes, in symbols of all of a tensor's streams together, from which its blocks are decoded or
 * encoded in one job on the thread pool rather than block by block on the JavaScript thread
 * (`job`), and from which an asynchronous call runs that job off the JavaScript thread (`async`;
 * below it, handing the job to another thread and back costs 15 to 70 µs, more than 5% of the
 * job). Measured on 2 cores at 1 and 2 threads, blocks of 2^12 and 2^17: a decode job is faster
 * than block by block from one block of 2^10 symbols on (fewer awaits), by 15% at 2^14; an encode
 * job, whose tensor-wide histogram and table choice are the same either way, from 2^18 (2 blocks).
 * Tests lower them to put small tensors through the jobs.
 */
export const JOB_THRESHOLDS = {
  decode: { job: 1 << 14, async: 1 << 21 },
  encode: { job: 1 << 18, async: 1 << 20 },
};

/** The blocks of one tensor frame held in memory, and where their symbols go. */
export interface DecodeJob {
  /** The frame's bytes, which start at file offset `frameOffset`. */
  frame: Uint8Array;
  frameOffset: number;
  streams: { table: NativeDecodeTable | null; width: number; out: Uint8Array }[];
  blocks: DecodeJobBlock[];
}

export interface DecodeJobBlock {
  stream: number;
  /** File offset of the block's header; the payload follows it. */
  headerAt: number;
  payloadLength: number;
  count: number;
  /** Where the block's symbols go in its stream's output. */
  outputOffset: number;
  /** The header's fields once checked, or null when they fail: the job then only computes the checksum. */
  fields: BlockHeader | null;
}

export interface DecodeJobResult {
  /** Per block: CRC32C of header bytes 0..11 then the payload. */
  crcs: Uint32Array;
  /** The decode failure of each block whose checksum matched but whose decode failed. */
  failures: Map<number, unknown>;
}

export interface EncodeJobResult extends Omit<NativeEncodeResult, "failures"> {
  failures: Map<number, unknown>;
}

export interface Kernels {
  readonly name: KernelSetName;
  /** Present on the native set only. */
  readonly blockJobs?: BlockJobs;
  crc32c(data: Uint8Array, previous?: number): number;
  histogram(symbols: Uint8Array, alphabetSize: number): Float64Array;
  addHistogram(into: Float64Array, symbols: Uint8Array): void;
  packBits(symbols: Uint8Array, width: number): Uint8Array;
  unpackBits(payload: Uint8Array, count: number, width: number, out: Uint8Array, where: string): void;
  ransEncode(symbols: Uint8Array, table: FreqTable, lanes: number): Uint8Array;
  ransDecoder(table: FreqTable): RansBlockDecoder;
  splitFloatPlanes(dtype: DType, bytes: Uint8Array): Uint8Array[];
  mergeFloatPlanes(dtype: DType, planes: Uint8Array[], out: Uint8Array): void;
  dequantize(params: QuantParams, symbols: Uint8Array, rows: number, cols: number, out?: Float32Array, firstElement?: number): Float32Array;
}

export const typescriptKernels: Kernels = {
  name: "typescript",
  crc32c,
  histogram,
  addHistogram,
  packBits,
  unpackBits,
  ransEncode,
  ransDecoder: (table) => new RansDecoder(table),
  splitFloatPlanes,
  mergeFloatPlanes,
  dequantize,
};

/** A native failure as the QansError the TypeScript kernel throws: same code, message naming `where`. */
export function fromNative(error: unknown, where?: string, codeMap?: Partial<Record<string, QansErrorCode>>): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === "string" && (ERROR_CODES as readonly string[]).includes(code)) {
    return new QansError(codeMap?.[code] ?? (code as QansErrorCode), where ? `${where}: ${error.message}` : error.message);
  }
  return error;
}

function rethrow(error: unknown, where?: string, codeMap?: Partial<Record<string, QansErrorCode>>): never {
  throw fromNative(error, where, codeMap);
}

// The TypeScript encoder and decoder reject an inconsistent table with INVALID_ARGUMENT before
// coding; the addon says BAD_FREQ_TABLE for the same tables.
const TABLE_CODES = { BAD_FREQ_TABLE: "INVALID_ARGUMENT" } as const;

function checkTableShape(table: FreqTable): void {
  const { k, width, freqs } = table;
  if (!Number.isInteger(width) || width < 1 || width > 8 || !(freqs instanceof Uint32Array) || freqs.length !== 1 << width) {
    throw new QansError("INVALID_ARGUMENT", `frequency table has k = ${k}, width = ${width} and ${freqs?.length} entries`);
  }
}

function planeDType(dtype: DType): "F32" | "F16" | "BF16" {
  if (!isFloatPlaneDType(dtype)) throw new QansError("BAD_DTYPE", `float-planes does not allow dtype ${dtype}`);
  return dtype;
}

/**
 * Below this many bytes (block headers are 12) a CRC costs less in TypeScript than a call into the
 * addon does; both give the same value.
 */
const NATIVE_CRC_MIN_BYTES = 64;

function nativeDecodeTable(addon: NativeAddon, table: FreqTable): NativeDecodeTable {
  checkTableShape(table);
  try {
    return addon.makeDecodeTable(table.freqs, table.k);
  } catch (error) {
    rethrow(error, undefined, TABLE_CODES);
  }
}

function failureMap(failures: { block: number; error: Error }[], convert: (error: Error, block: number) => unknown): Map<number, unknown> {
  return new Map(failures.map(({ block, error }) => [block, convert(error, block)]));
}

/** A native call taking a Node-style callback, as a promise; argument errors reject it too. */
function promised<T>(start: (callback: (error: Error | null, result?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, result) => (error ? reject(error) : resolve(result as T)));
  });
}

/** The job action for a block whose fields fail: compute its checksum only. */
const CHECKSUM_ONLY = 3;

function nativeBlockJobs(addon: NativeAddon): BlockJobs {
  // Encoding errors are those of packBits and ransEncode, neither of which names a block.
  const encoded = (result: NativeEncodeResult): EncodeJobResult => ({ ...result, failures: failureMap(result.failures, (e) => fromNative(e, undefined, TABLE_CODES)) });
  return {
    decodeTable: (table) => nativeDecodeTable(addon, table),
    symbolBuffer(length) {
      try {
        return addon.newSymbolBuffer(length);
      } catch (error) {
        rethrow(error);
      }
    },
    async decode({ frame, frameOffset, streams, blocks }, where, async) {
      const fields = new Float64Array(blocks.length * DECODE_JOB_FIELDS);
      for (let i = 0, f = 0; i < blocks.length; i++, f += DECODE_JOB_FIELDS) {
        const { stream, headerAt, payloadLength, count, outputOffset, fields: header } = blocks[i];
        fields[f] = stream;
        fields[f + 1] = headerAt - frameOffset;
        fields[f + 2] = headerAt - frameOffset + BLOCK_HEADER_SIZE;
        fields[f + 3] = payloadLength;
        fields[f + 4] = header ? BLOCK_MODES[header.mode] : CHECKSUM_ONLY;
        fields[f + 5] = header ? blockHeaderParam(header) : 0;
        fields[f + 6] = count;
        fields[f + 7] = outputOffset;
      }
      const job: NativeDecodeJob = { frame, streams, blocks: fields };
      let result;
      try {
        result = async ? await promised<NativeDecodeResult>((done) => addon.decodeBlocksAsync(job, done)) : addon.decodeBlocks(job);
      } catch (error) {
        rethrow(error);
      }
      return { crcs: result.crcs, failures: failureMap(result.failures, (e, block) => fromNative(e, where(block))) };
    },
    encode(job) {
      const native = nativeEncodeJob(job);
      try {
        return encoded(addon.encodeBlocks(native));
      } catch (error) {
        rethrow(error, undefined, TABLE_CODES);
      }
    },
    async encodeAsync(job) {
      const native = nativeEncodeJob(job);
      try {
        return encoded(await promised<NativeEncodeResult>((done) => addon.encodeBlocksAsync(native, done)));
      } catch (error) {
        rethrow(error, undefined, TABLE_CODES);
      }
    },
  };
}

function nativeEncodeJob({ log2Block, streams }: EncodeJob): NativeEncodeJob {
  return {
    log2Block,
    streams: streams.map(({ symbols, width, table }) => {
      if (table) checkTableShape(table);
      return { symbols, width, freqs: table?.freqs ?? null, k: table?.k ?? 0 };
    }),
  };
}

function nativeKernels(addon: NativeAddon): Kernels {
  return {
    name: "native",
    blockJobs: nativeBlockJobs(addon),
    crc32c(data, previous = 0) {
      if (data.length < NATIVE_CRC_MIN_BYTES) return crc32c(data, previous);
      try {
        return addon.crc32c(data, previous);
      } catch (error) {
        rethrow(error);
      }
    },
    histogram(symbols, alphabetSize = 256) {
      try {
        return addon.histogram(symbols, alphabetSize);
      } catch (error) {
        rethrow(error);
      }
    },
    addHistogram(into, symbols) {
      if (symbols.length === 0) return;
      let counts: Float64Array;
      try {
        counts = addon.histogram(symbols, Math.min(into.length, 256));
      } catch (error) {
        rethrow(error);
      }
      for (let s = 0; s < counts.length; s++) into[s] += counts[s];
    },
    packBits(symbols, width) {
      try {
        return addon.packBits(symbols, width);
      } catch (error) {
        rethrow(error);
      }
    },
    unpackBits(payload, count, width, out, where) {
      try {
        addon.unpackBits(payload, count, width, out);
      } catch (error) {
        rethrow(error, where);
      }
    },
    ransEncode(symbols, table, lanes) {
      checkTableShape(table);
      try {
        return addon.ransEncode(symbols, table.freqs, table.k, lanes);
      } catch (error) {
        rethrow(error, undefined, TABLE_CODES);
      }
    },
    ransDecoder(table) {
      const native = nativeDecodeTable(addon, table);
      return {
        decode(payload, count, lanes, out, where) {
          try {
            addon.ransDecode(native, payload, count, lanes, out);
          } catch (error) {
            rethrow(error, where);
          }
        },
      };
    },
    splitFloatPlanes(dtype, bytes) {
      const dt = planeDType(dtype);
      try {
        return addon.splitFloatPlanes(dt, bytes);
      } catch (error) {
        rethrow(error);
      }
    },
    mergeFloatPlanes(dtype, planes, out) {
      const dt = planeDType(dtype);
      try {
        addon.mergeFloatPlanes(dt, planes, out);
      } catch (error) {
        rethrow(error);
      }
    },
    dequantize(params, symbols, rows, cols, out, firstElement = 0) {
      const result = out ?? new Float32Array(symbols.length);
      const { bits, asymmetric, groupSize, deltas, zeroPoints, inputScale } = params;
      try {
        // Asymmetric parameters without zero points fail the addon's length check, as they fail
        // the TypeScript kernel's.
        const zeros = asymmetric ? (zeroPoints ?? new Uint8Array(0)) : null;
        addon.dequantize(symbols, rows, cols, firstElement, bits, groupSize, deltas, zeros, inputScale ?? null, result);
      } catch (error) {
        rethrow(error);
      }
      return result;
    },
  };
}

let forced: Kernels | undefined;
let native: Kernels | undefined;

/** The native kernel set, or undefined when the addon is not in use. */
export function nativeKernelSet(): Kernels | undefined {
  if (!native) {
    const addon = nativeAddon();
    if (addon) native = nativeKernels(addon);
  }
  return native;
}

/** The kernel set the SDK uses: native when the addon is loaded, else TypeScript. */
export function kernels(): Kernels {
  return forced ?? nativeKernelSet() ?? typescriptKernels;
}

/**
 * For tests and benchmarks: forces the kernel set ("auto" restores the default). Throws
 * INVALID_ARGUMENT for "native" when the addon is not in use.
 */
export function useKernels(name: KernelSetName | "auto"): void {
  if (name === "auto") {
    forced = undefined;
    return;
  }
  if (name === "typescript") {
    forced = typescriptKernels;
    return;
  }
  const set = nativeKernelSet();
  if (!set) throw new QansError("INVALID_ARGUMENT", "the native codec is not in use (see nativeStatus())");
  forced = set;
}
