import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Loads the native codec addon, native/build/Release/qans_native.node (built by the package's
 * install script from native/). `QANS_NATIVE=0` keeps the SDK on its TypeScript codec;
 * `QANS_NATIVE_PATH` names another addon file; `QANS_SIMD=scalar|sse41|avx2|avx512` caps the
 * instruction set the addon dispatches to; `QANS_THREADS=n` (1 to 64) sets how many threads a
 * whole-tensor decode or encode uses (default: the hardware's, at most 8). When the addon is missing
 * or does not load, the SDK uses the TypeScript codec and says so once with `process.emitWarning`.
 */

/** The addon's version of the functions below; native/src/binding.cc has the same number. */
const ABI_VERSION = 5;

/** The decode lookups of one frequency table, built in native memory. */
export interface NativeDecodeTable {
  readonly __nativeDecodeTable: never;
}

/**
 * One tensor frame's blocks to check and decode (native/src/block_jobs.h). `blocks` holds
 * {@link DECODE_JOB_FIELDS} numbers per block: stream, offset of its 16-byte header and of its
 * payload within `frame`, payload length, action (0 RAW, 1 CONST, 2 RANS, 3 checksum only), byte 1
 * of the header (CONST symbol or RANS lane code, spec §9), symbol count, offset of its symbols in
 * the stream's `out`.
 */
export interface NativeDecodeJob {
  frame: Uint8Array;
  streams: { table: NativeDecodeTable | null; width: number; out: Uint8Array }[];
  blocks: Float64Array;
}

export const DECODE_JOB_FIELDS = 8;

/**
 * Per block the CRC32C of header bytes 0..11 and payload; the blocks whose checksum matched but
 * whose decode failed, in block order, each with the error `ransDecode` or `unpackBits` throws.
 */
export interface NativeDecodeResult {
  crcs: Uint32Array;
  failures: { block: number; error: Error }[];
}

/** Every block of one tensor's streams (all of one length) to encode, block-major. */
export interface NativeEncodeJob {
  log2Block: number;
  streams: { symbols: Uint8Array; width: number; freqs: Uint32Array | null; k: number }[];
}

/**
 * Block-major: mode code (spec §9), header byte 1 (CONST symbol or RANS lane code) and payload per
 * block; failures as in decoding.
 */
export interface NativeEncodeResult {
  modes: Uint8Array;
  headerParams: Uint8Array;
  payloads: Uint8Array[];
  failures: { block: number; error: Error }[];
}

/** A weight matrix held in native memory for products (native/src/weight_matrix.h). */
export interface NativeWeightMatrix {
  readonly __nativeWeightMatrix: never;
}

/**
 * What `newWeightMatrix` holds: `kind` 0 keeps `values` (binary32), 1 int-quant `symbols`, 2 a
 * tensor frame's encoded blocks. Kinds 1 and 2 take the int-quant parameters (spec §8.3); kind 2
 * takes the frame, {@link WEIGHT_BLOCK_FIELDS} numbers per block in `blocks` (payload offset and
 * length within the frame, mode 0 RAW / 1 CONST / 2 RANS, header byte 1, symbol count) and the
 * stream's frequency table when a block is RANS. The arrays are kept, not copied.
 */
export interface NativeWeightSpec {
  kind: 0 | 1 | 2;
  rows: number;
  cols: number;
  values?: Float32Array;
  symbols?: Uint8Array;
  bits?: number;
  groupSize?: number;
  deltas?: Float32Array;
  zeroPoints?: Uint8Array | null;
  inputScale?: Float32Array | null;
  frame?: Uint8Array;
  log2Block?: number;
  blocks?: Float64Array;
  freqs?: Uint32Array | null;
  k?: number;
}

export const WEIGHT_BLOCK_FIELDS = 5;

type Callback<T> = (error: Error | null, result?: T) => void;

/** The functions the addon exports (native/src/binding.cc). Failures throw an Error with a QANS `code`. */
export interface NativeAddon {
  readonly abiVersion: number;
  readonly simdEnvironmentIgnored: boolean;
  readonly threadEnvironmentIgnored: boolean;
  makeDecodeTable(freqs: Uint32Array, k: number): NativeDecodeTable;
  /** `lanes` is 32, 16, 8, 4, 2 or 1 (spec §10.1). */
  ransDecode(table: NativeDecodeTable, payload: Uint8Array, count: number, lanes: number, out: Uint8Array): void;
  ransEncode(symbols: Uint8Array, freqs: Uint32Array, k: number, lanes: number): Uint8Array;
  crc32c(data: Uint8Array, previous: number): number;
  histogram(symbols: Uint8Array, alphabet: number): Float64Array;
  packBits(symbols: Uint8Array, width: number): Uint8Array;
  unpackBits(payload: Uint8Array, count: number, width: number, out: Uint8Array): void;
  splitFloatPlanes(dtype: "F32" | "F16" | "BF16", bytes: Uint8Array): Uint8Array[];
  mergeFloatPlanes(dtype: "F32" | "F16" | "BF16", planes: Uint8Array[], out: Uint8Array): void;
  dequantize(
    symbols: Uint8Array,
    rows: number,
    cols: number,
    firstElement: number,
    bits: number,
    groupSize: number,
    deltas: Float32Array,
    zeroPoints: Uint8Array | null,
    inputScale: Float32Array | null,
    out: Float32Array,
  ): void;
  /** Caps the dispatch level; returns the level now in use, min(level, the CPU's best). */
  setSimdLevel(level: SimdLevelName): SimdLevelName;
  simdInfo(): { level: SimdLevelName; available: SimdLevelName[]; compiled: SimdLevelName[] };
  /** Runs on this thread and the pool's; the frame and outputs must not be written meanwhile. */
  decodeBlocks(job: NativeDecodeJob): NativeDecodeResult;
  /** As decodeBlocks, on the pool; calls back on this thread. */
  decodeBlocksAsync(job: NativeDecodeJob, callback: Callback<NativeDecodeResult>): void;
  encodeBlocks(job: NativeEncodeJob): NativeEncodeResult;
  encodeBlocksAsync(job: NativeEncodeJob, callback: Callback<NativeEncodeResult>): void;
  /**
   * A buffer for a decode job's output, of memory that threads fill quickly (native/src/memory.h);
   * its contents are unspecified until the job writes them.
   */
  newSymbolBuffer(length: number): Uint8Array;
  /** Threads a block job uses, counting the one that runs it. */
  threadCount(): number;
  /** Sets it (clamped to 1..64); returns the count now in use. */
  setThreadCount(count: number): number;
  /** Fixes the C library's mmap threshold (glibc's M_MMAP_THRESHOLD); false where that is not possible. */
  setMmapThreshold(bytes: number): boolean;
  newWeightMatrix(spec: NativeWeightSpec): NativeWeightMatrix;
  /**
   * out[i * rows + r] = row r . input i for the n inputs back to back in `xs`, in the order of
   * native/src/dot_rows.h; on this thread and the pool's. A block that fails to decode throws with
   * its code.
   */
  weightProduct(matrix: NativeWeightMatrix, xs: Float32Array, n: number, out: Float32Array): void;
}

export type SimdLevelName = "scalar" | "sse41" | "avx2" | "avx512";

/** Dispatch levels, lowest first. */
export const SIMD_LEVELS: readonly SimdLevelName[] = ["scalar", "sse41", "avx2", "avx512"];

export interface NativeStatus {
  /** True when the SDK's hot paths run on the native addon. */
  active: boolean;
  /** Why the addon is not in use. */
  reason?: string;
  /** The addon file, when it was found. */
  path?: string;
  /** Dispatch level in use. */
  level?: SimdLevelName;
  /** Levels this CPU supports (of those compiled in). */
  available?: SimdLevelName[];
  /** Levels compiled into the addon. */
  compiled?: SimdLevelName[];
  /** Threads a whole-tensor decode or encode uses. */
  threads?: number;
}

interface LoadResult {
  addon?: NativeAddon;
  reason?: string;
  path?: string;
}

let loaded: LoadResult | undefined;

/** The directory of the package.json named "qans" at or above `start`. */
export function packageRoot(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "qans") return dir;
      } catch {
        // Not a readable manifest; keep walking up.
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Where the addon is expected: QANS_NATIVE_PATH, else native/build/Release in the package. */
export function nativeAddonPath(): string | undefined {
  const override = process.env.QANS_NATIVE_PATH;
  if (override) return override;
  const here = fileURLToPath(import.meta.url);
  const root = packageRoot(dirname(here));
  return root === undefined ? undefined : join(root, "native", "build", "Release", "qans_native.node");
}

function load(): LoadResult {
  if (process.env.QANS_NATIVE === "0") return { reason: "disabled by QANS_NATIVE=0" };
  const path = nativeAddonPath();
  if (path === undefined) return { reason: "the qans package root was not found above the SDK's own files" };
  if (!existsSync(path)) return { path, reason: `${path} does not exist (build it with "npm run build:native")` };
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    return { path, reason: `${path} failed to load: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}` };
  }
  if (addon.abiVersion !== ABI_VERSION) {
    return { path, reason: `${path} is version ${String(addon.abiVersion)}, this SDK needs ${ABI_VERSION} (rebuild with "npm run build:native")` };
  }
  return { path, addon };
}

/** The loaded addon, or undefined when the TypeScript codec is in use. Loads on first call. */
export function nativeAddon(): NativeAddon | undefined {
  if (loaded === undefined) {
    loaded = load();
    if (!loaded.addon && process.env.QANS_NATIVE !== "0") {
      process.emitWarning(`native codec unavailable: ${loaded.reason}; using the TypeScript codec`, { code: "QANS_NATIVE_UNAVAILABLE" });
    }
    if (loaded.addon?.simdEnvironmentIgnored) {
      process.emitWarning(`QANS_SIMD="${process.env.QANS_SIMD}" is not one of ${SIMD_LEVELS.join(", ")}; ignored`, { code: "QANS_SIMD_IGNORED" });
    }
    if (loaded.addon?.threadEnvironmentIgnored) {
      process.emitWarning(`QANS_THREADS="${process.env.QANS_THREADS}" is not an integer from 1 to 64; ignored`, { code: "QANS_THREADS_IGNORED" });
    }
  }
  return loaded.addon;
}

/** Whether the native codec is in use, and if so at which instruction-set level. */
export function nativeStatus(): NativeStatus {
  const addon = nativeAddon();
  const { reason, path } = loaded!;
  if (!addon) return { active: false, reason, ...(path ? { path } : {}) };
  const { level, available, compiled } = addon.simdInfo();
  return { active: true, path, level, available, compiled, threads: addon.threadCount() };
}

/** Buffers of at least this many bytes get mappings of their own under `returnFreedBuffersToSystem`. */
const STREAMING_MMAP_THRESHOLD = 1 << 22;

/**
 * For a process that streams a model tensor by tensor and owns its C library's settings, such as
 * the CLI: buffers of 4 MiB and more (windows of planes, symbols, tensors) then live in mappings of
 * their own, given back to the system when freed, so the resident size follows what is in use
 * rather than what glibc kept from earlier tensors. Needs the native addon and glibc; returns whether it
 * took effect. A library user decides this for their own process (glibc's MALLOC_MMAP_THRESHOLD_).
 */
export function returnFreedBuffersToSystem(): boolean {
  return nativeAddon()?.setMmapThreshold(STREAMING_MMAP_THRESHOLD) ?? false;
}
