/**
 * Finding and changing single fields of a valid QANS file, for the invalid conformance vectors.
 *
 * A change either keeps every structure's length (patch the bytes, then re-seal the checksums that
 * cover them with sdk/testing/patch.ts) or changes a frame's length, in which case `assembleFile`
 * lays the frames out again and writes a fresh index and trailer, as a writer would.
 */
import { crc32c } from "../sdk/codec/crc32c.js";
import { parseFreqTable, type FreqTable } from "../sdk/codec/freq-table.js";
import { align64, concatBytes } from "../sdk/format/bytes.js";
import { BLOCK_HEADER_SIZE, FILE_HEADER_SIZE } from "../sdk/format/constants.js";
import { encodeIndexFrame } from "../sdk/format/index-frame.js";
import { blockHeaderOffset } from "../sdk/format/layout.js";
import { encodeTrailer } from "../sdk/format/trailer.js";
import type { QansErrorCode } from "../sdk/errors.js";
import { indexEntryOffset, resealBlock, resealTensorHeader, resealTrailer, type FileLayout } from "../sdk/testing/patch.js";

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function fail(message: string): never {
  throw new Error(`conformance vectors: ${message}`);
}

const UTF8 = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Tensor headers (spec §7.1, §7.2, §10.3, §8.3)

export interface VarintField {
  at: number;
  length: number;
  value: number;
}

export interface TableMap {
  stream: number;
  width: number;
  /** Offset of k, the table's first byte. */
  kAt: number;
  k: number;
  /** The table flag's offset and value (§7.2): 1 presence bitmap, 2 presence runs. */
  flagAt: number;
  flag: number;
  /** Offset of the presence bitmap, or of the run count R. */
  presenceAt: number;
  /** For presence runs: each run's gap and length − 1 varints. */
  runs: { gap: VarintField; lengthMinusOne: VarintField }[];
  /** The present symbols, ascending. */
  symbols: number[];
  /** Each present symbol's frequency varint, in the same order. */
  freqs: VarintField[];
  /** Offset just past the table. */
  end: number;
}

export interface QuantMap {
  bitsAt: number;
  flagsAt: number;
  reservedAt: number;
  groupSizeAt: number;
  deltasAt: number;
  /** Bytes per delta: 2 (F16) or 4 (F32). */
  deltaBytes: number;
  /** Present when asymmetric. */
  zeroPointsAt?: number;
  /** Present when the per-input-channel scale is. */
  inputScaleAt?: number;
}

export interface HeaderMap {
  nameAt: number;
  nameLength: number;
  dtypeAt: number;
  encodingAt: number;
  rankAt: number;
  log2BlockAt: number;
  dimsAt: number;
  streamCountAt: number;
  reservedAt: number;
  /** Offset of each stream's width byte. */
  widthsAt: number[];
  tables: TableMap[];
  quant?: QuantMap;
}

/** Walks a tensor header of a valid file, recording where each field is. */
export function mapTensorHeader(bytes: Uint8Array, at: number): HeaderMap {
  const dv = view(bytes);
  const nameLength = dv.getUint16(at + 8, true);
  const nameAt = at + 10;
  let p = nameAt + nameLength;
  const dtypeAt = p;
  const encoding = bytes[p + 1];
  const rank = bytes[p + 2];
  p += 4 + 8 * rank;
  const streamCountAt = p;
  const streamCount = bytes[p];
  p += 4;
  const tables: TableMap[] = [];
  const widthsAt: number[] = [];
  const varint = (): VarintField => {
    const start = p;
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
    }
    return { at: start, length: p - start, value };
  };
  for (let s = 0; s < streamCount; s++) {
    widthsAt.push(p);
    const width = bytes[p++];
    const flagAt = p;
    const flag = bytes[p++];
    if (flag === 0) continue;
    const kAt = p;
    const k = bytes[p++];
    const presenceAt = p;
    const present = new Uint8Array(2 ** width);
    const runs: TableMap["runs"] = [];
    if (flag === 1) {
      for (let symbol = 0; symbol < 2 ** width; symbol++) present[symbol] = (bytes[p + (symbol >> 3)] >> (symbol & 7)) & 1;
      p += Math.ceil(2 ** width / 8);
    } else {
      const count = varint().value;
      for (let r = 0, next = 0; r < count; r++) {
        const gap = varint();
        const lengthMinusOne = varint();
        const first = next + gap.value;
        next = first + lengthMinusOne.value + 1;
        present.fill(1, first, next);
        runs.push({ gap, lengthMinusOne });
      }
    }
    const symbols: number[] = [];
    const freqs: VarintField[] = [];
    for (let symbol = 0; symbol < 2 ** width; symbol++) {
      if (!present[symbol]) continue;
      symbols.push(symbol);
      freqs.push(varint());
    }
    tables.push({ stream: s, width, kAt, k, flagAt, flag, presenceAt, runs, symbols, freqs, end: p });
  }
  const map: HeaderMap = {
    nameAt,
    nameLength,
    dtypeAt,
    encodingAt: dtypeAt + 1,
    rankAt: dtypeAt + 2,
    log2BlockAt: dtypeAt + 3,
    dimsAt: dtypeAt + 4,
    streamCountAt,
    reservedAt: streamCountAt + 1,
    widthsAt,
    tables,
  };
  if (encoding === 2) {
    const flags = bytes[p + 1];
    const dims = Array.from({ length: rank }, (_, i) => Number(dv.getBigUint64(dtypeAt + 4 + 8 * i, true)));
    const cols = rank === 0 ? 1 : dims[rank - 1];
    const rows = cols === 0 ? 0 : dims.reduce((a, b) => a * b, 1) / cols;
    const groupSize = dv.getUint32(p + 4, true);
    const groups = groupSize === 0 ? 1 : Math.ceil(cols / groupSize);
    const deltaBytes = flags & 4 ? 4 : 2;
    const deltasAt = p + 8;
    let end = deltasAt + rows * groups * deltaBytes;
    const quant: QuantMap = { bitsAt: p, flagsAt: p + 1, reservedAt: p + 2, groupSizeAt: p + 4, deltasAt, deltaBytes };
    if (flags & 1) {
      quant.zeroPointsAt = end;
      end += rows * groups;
    }
    if (flags & 2) quant.inputScaleAt = end;
    map.quant = quant;
  }
  return map;
}

export function varintLength(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
}

export function writeVarint(bytes: Uint8Array, at: number, value: number): void {
  let p = at;
  let v = value;
  while (v >= 0x80) {
    bytes[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  bytes[p] = v;
}

/** The first table of the file that `accept` takes, with its tensor's index. */
export function firstTable(bytes: Uint8Array, layout: FileLayout, accept: (table: TableMap) => boolean): { t: number; table: TableMap } {
  for (const [t, tensor] of layout.tensors.entries()) {
    const table = mapTensorHeader(bytes, tensor.headerOffset).tables.find(accept);
    if (table) return { t, table };
  }
  return fail("no such frequency table");
}

/** Moves one frequency of the first table by `delta`, keeping its varint length and every per-symbol rule. */
export function shiftFrequency(bytes: Uint8Array, layout: FileLayout, delta: 1 | -1): void {
  for (const [t, tensor] of layout.tensors.entries()) {
    for (const table of mapTensorHeader(bytes, tensor.headerOffset).tables) {
      for (const f of table.freqs) {
        const value = f.value + delta;
        if (value >= 1 && value < 2 ** table.k && varintLength(value) === f.length) {
          writeVarint(bytes, f.at, value);
          resealTensorHeader(bytes, layout, t);
          return;
        }
      }
    }
  }
  fail("no frequency table to change");
}

/** A tensor header's table of stream `stream`, parsed as a reader would. */
export function parsedTable(bytes: Uint8Array, layout: FileLayout, t: number, table: TableMap): FreqTable {
  const { headerOffset, headerLength } = layout.tensors[t];
  return parseFreqTable(bytes, table.kAt, headerOffset + headerLength - 4, table.width, table.flag, `tensor ${t}`).table;
}

// ---------------------------------------------------------------------------------------------
// Blocks (spec §9)

export interface BlockRef {
  tensor: number;
  /** The tensor's name. */
  name: string;
  /** Ordinal of the block in its frame, block-major (§7.3). */
  ordinal: number;
  stream: number;
  /** Offset of the block header. */
  at: number;
  payload: number;
  mode: number;
  lanes: number;
  count: number;
}

/** Every block of the file, in file order. */
export function blocksOf(bytes: Uint8Array, layout: FileLayout): BlockRef[] {
  const dv = view(bytes);
  return layout.tensors.flatMap((tensor, t) =>
    tensor.blockHeaders.map((at, ordinal) => ({
      tensor: t,
      name: tensor.entry.name,
      ordinal,
      stream: ordinal % tensor.entry.streamCount,
      at,
      payload: tensor.entry.payloadLengths[ordinal],
      mode: bytes[at],
      lanes: bytes[at] === 2 ? 32 >> bytes[at + 1] : 32,
      count: dv.getUint32(at + 4, true),
    })),
  );
}

export function firstBlock(bytes: Uint8Array, layout: FileLayout, accept: (block: BlockRef) => boolean, what: string): BlockRef {
  return blocksOf(bytes, layout).find(accept) ?? fail(`no ${what}`);
}

export const RAW = 0;
export const CONST = 1;
export const RANS = 2;

// ---------------------------------------------------------------------------------------------
// Index entries (spec §11)

export interface EntryMap {
  nameLengthAt: number;
  nameAt: number;
  dtypeAt: number;
  encodingAt: number;
  rankAt: number;
  log2BlockAt: number;
  dimsAt: number;
  streamCountAt: number;
  reservedAt: number;
  frameOffsetAt: number;
  headerLengthAt: number;
  frameLengthAt: number;
  /** Offset of the first u32 payload length. */
  payloadLengthsAt: number;
}

/** Where each field of tensor `t`'s index entry is. */
export function mapIndexEntry(layout: FileLayout, t: number): EntryMap {
  const { entry } = layout.tensors[t];
  const nameLengthAt = indexEntryOffset(layout, t);
  const nameAt = nameLengthAt + 2;
  const dtypeAt = nameAt + UTF8.encode(entry.name).length;
  const dimsAt = dtypeAt + 4;
  const streamCountAt = dimsAt + 8 * entry.shape.length;
  const frameOffsetAt = streamCountAt + 4;
  return {
    nameLengthAt,
    nameAt,
    dtypeAt,
    encodingAt: dtypeAt + 1,
    rankAt: dtypeAt + 2,
    log2BlockAt: dtypeAt + 3,
    dimsAt,
    streamCountAt,
    reservedAt: streamCountAt + 1,
    frameOffsetAt,
    headerLengthAt: frameOffsetAt + 8,
    frameLengthAt: frameOffsetAt + 12,
    payloadLengthsAt: frameOffsetAt + 20,
  };
}

export function tensorNamed(layout: FileLayout, name: string): number {
  const t = layout.tensors.findIndex((x) => x.entry.name === name);
  if (t < 0) fail(`no tensor "${name}"`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Re-laying out frames whose length changes

export interface BlockPiece {
  /** The 16-byte block header as stored: its payload length and checksum are the caller's. */
  header: Uint8Array;
  payload: Uint8Array;
}

export interface FramePieces {
  header: Uint8Array;
  blocks: BlockPiece[];
}

/** Copies of tensor `t`'s header and blocks. */
export function framePieces(bytes: Uint8Array, layout: FileLayout, t: number): FramePieces {
  const tensor = layout.tensors[t];
  return {
    header: bytes.slice(tensor.headerOffset, tensor.headerOffset + tensor.headerLength),
    blocks: tensor.blockHeaders.map((at, i) => ({
      header: bytes.slice(at, at + BLOCK_HEADER_SIZE),
      payload: bytes.slice(at + BLOCK_HEADER_SIZE, at + BLOCK_HEADER_SIZE + tensor.entry.payloadLengths[i]),
    })),
  };
}

/** A block with a new payload: its header's payload length set to it and the checksum re-sealed. */
export function withPayload(block: BlockPiece, payload: Uint8Array): BlockPiece {
  const header = block.header.slice();
  view(header).setUint32(8, payload.length, true);
  const sealed = concatBytes([header, payload]);
  resealBlock(sealed, 0);
  return { header: sealed.slice(0, BLOCK_HEADER_SIZE), payload };
}

/**
 * The file `bytes` with tensor `t`'s frame replaced by `frame`: the file header and metadata are
 * kept, every frame is placed again as spec §3 and §9 place them, and the index (with each block's
 * payload length as the new frame stores it) and trailer are written afresh. `indexBodyExtra` is
 * appended to the index body, for a vector about an index that is not consumed exactly.
 */
export function assembleFile(bytes: Uint8Array, layout: FileLayout, replace: ReadonlyMap<number, FramePieces>, indexBodyExtra = new Uint8Array(0)): Uint8Array {
  const parts: Uint8Array[] = [bytes.slice(0, FILE_HEADER_SIZE + layout.metadata.length)];
  let position = FILE_HEADER_SIZE + layout.metadata.length;
  const pad = (to: number) => {
    if (to > position) parts.push(new Uint8Array(to - position));
    position = to;
  };
  const entries = layout.tensors.map((tensor, t) => {
    const frame = replace.get(t) ?? framePieces(bytes, layout, t);
    pad(align64(position));
    const frameOffset = position;
    parts.push(frame.header);
    position += frame.header.length;
    for (const block of frame.blocks) {
      pad(blockHeaderOffset(position));
      parts.push(block.header, block.payload);
      position += BLOCK_HEADER_SIZE + block.payload.length;
    }
    return {
      ...tensor.entry,
      frameOffset,
      headerLength: frame.header.length,
      frameLength: position - frameOffset,
      payloadLengths: Uint32Array.from(frame.blocks, (block) => block.payload.length),
    };
  });
  pad(align64(position));
  let index = encodeIndexFrame({ metadataLength: layout.metadata.length, entries });
  if (indexBodyExtra.length > 0) {
    const grown = concatBytes([index.subarray(0, index.length - 4), indexBodyExtra, new Uint8Array(4)]);
    view(grown).setBigUint64(8, BigInt(grown.length - 20), true);
    view(grown).setUint32(grown.length - 4, crc32c(grown.subarray(0, grown.length - 4)), true);
    index = grown;
  }
  // The trailer keeps the version the original one has, as the file header does.
  const trailer = encodeTrailer(position, index.length);
  trailer.set(bytes.subarray(layout.trailerOffset + 24, layout.trailerOffset + 28), 24);
  resealTrailer(trailer, 0);
  parts.push(index, trailer);
  return concatBytes(parts);
}

// ---------------------------------------------------------------------------------------------
// A reference rANS encoder (spec §10.2) with a choice of initial states

/**
 * Encodes `symbols` as spec §10.2 does, except that lane l starts from `initial[l]` instead of L.
 * With every lane at L it is the spec's encoder; a decoder of its output ends each lane at the state
 * it started from, so any other start is a block whose final state is not L.
 */
export function ransEncodeFrom(symbols: Uint8Array, table: FreqTable, lanes: number, initial: readonly number[]): Uint8Array {
  const { k, freqs, cum } = table;
  const x = Array.from({ length: lanes }, (_, l) => initial[l]);
  const words: number[] = [];
  for (let i = symbols.length - 1; i >= 0; i--) {
    const l = i % lanes;
    const s = symbols[i];
    const f = freqs[s];
    if (f === 0) fail(`symbol ${s} has no frequency`);
    if (x[l] >= f * 2 ** (31 - k)) {
      words.push(x[l] & 0xffff);
      x[l] = Math.floor(x[l] / 65536);
    }
    x[l] = Math.floor(x[l] / f) * 2 ** k + (x[l] % f) + cum[s];
  }
  const out = new Uint8Array(4 * lanes + 2 * words.length);
  const dv = view(out);
  x.forEach((state, l) => dv.setUint32(4 * l, state, true));
  words.reverse().forEach((word, w) => dv.setUint16(4 * lanes + 2 * w, word, true));
  return out;
}

export const RANS_L = 2 ** 15;

// ---------------------------------------------------------------------------------------------
// Invalid vector definitions

/** An invalid vector: one targeted change to the valid vector `from`. */
export interface InvalidDef {
  file: string;
  from: string;
  code: QansErrorCode;
  spec: string[];
  exercises: string;
  /**
   * Whether a random-access reader that opens the file and reads its metadata and every tensor
   * must reject it: the damage lies in what such a reader reads (trailer, index, metadata frame,
   * tensor frames). The generator checks the SDK's random-access reader rejects exactly these.
   */
  detectedByRandomAccess: boolean;
  /** Changes a copy of the valid file (which it may return, changed, or replace). */
  derive(bytes: Uint8Array, layout: FileLayout): Uint8Array | Promise<Uint8Array>;
}

/** The valid vector most invalid vectors derive from, and names of its tensors. */
export const BASE = "llama-tiny.qans";
export const EMBED = "model.embed_tokens.weight";
export const Q_PROJ = "model.layers.0.self_attn.q_proj.weight";
export const K_PROJ = "model.layers.0.self_attn.k_proj.weight";
export const DOWN_PROJ = "model.layers.0.mlp.down_proj.weight";
export const NORM_IN = "model.layers.0.input_layernorm.weight";
export const NORM = "model.norm.weight";

export function setU64(bytes: Uint8Array, at: number, value: bigint | number): void {
  view(bytes).setBigUint64(at, BigInt(value), true);
}

export function getU64(bytes: Uint8Array, at: number): bigint {
  return view(bytes).getBigUint64(at, true);
}
