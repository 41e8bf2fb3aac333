/** On-disk constants of QANS 1.2 (spec/qans-v1.md). */
export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 2;

/** File-header flag bit 0: the file is a set file (spec §4.1, §16). Every other flag bit is reserved. */
export const FILE_FLAG_SET = 1;

export const FILE_MAGIC = Uint8Array.of(0x51, 0x41, 0x4e, 0x53, 0x0d, 0x0a, 0x1a, 0x0a);
export const TRAILER_MAGIC = Uint8Array.of(0x51, 0x41, 0x4e, 0x53, 0x54, 0x52, 0x4c, 0x0a);
export const TAG_METADATA = Uint8Array.of(0x51, 0x4d, 0x45, 0x54); // "QMET"
export const TAG_TENSOR = Uint8Array.of(0x51, 0x54, 0x45, 0x4e); // "QTEN"
export const TAG_INDEX = Uint8Array.of(0x51, 0x49, 0x44, 0x58); // "QIDX"

export const ALIGNMENT = 64;
export const FILE_HEADER_SIZE = 64;
export const TRAILER_SIZE = 40;
export const BLOCK_HEADER_SIZE = 16;
export const METADATA_FRAME_OVERHEAD = 12;
export const INDEX_FRAME_OVERHEAD = 20;
export const MIN_FILE_SIZE = FILE_HEADER_SIZE + METADATA_FRAME_OVERHEAD + INDEX_FRAME_OVERHEAD + TRAILER_SIZE;

/** spec §13. */
export const LIMITS = {
  maxNameBytes: 4096,
  maxRank: 8,
  maxElements: 2 ** 48,
  maxTensors: 2 ** 20,
  maxMetadataBytes: 16 * 1024 * 1024,
  maxTensorHeaderBytes: 2 ** 30,
  maxIndexBytes: 2 ** 32,
  minLog2Block: 12,
  maxLog2Block: 20,
  maxGroupSize: 2 ** 24,
  minPrecision: 10,
  maxPrecision: 15,
  /** Shards per set (spec §16.1). */
  maxShards: 65535,
  /** Tensors per set, over all its shards. */
  maxSetTensors: 2 ** 20,
  /** Bytes of a shard file name. */
  maxShardFileNameBytes: 255,
} as const;

export const DEFAULT_LOG2_BLOCK = 17;

export const ENCODINGS = { raw: 0, "float-planes": 1, "int-quant": 2 } as const;
export type EncodingName = keyof typeof ENCODINGS;

export const BLOCK_MODES = { RAW: 0, CONST: 1, RANS: 2 } as const;
export type BlockMode = keyof typeof BLOCK_MODES;
/** Block modes in code order: entry c is the mode with code c. */
export const BLOCK_MODE_NAMES = Object.keys(BLOCK_MODES) as BlockMode[];

/** A count per block mode. */
export type BlockModeCounts = Record<BlockMode, number>;

export function zeroBlockModeCounts(): BlockModeCounts {
  return Object.fromEntries(BLOCK_MODE_NAMES.map((mode) => [mode, 0])) as BlockModeCounts;
}
