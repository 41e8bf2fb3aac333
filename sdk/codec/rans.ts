import { QansError } from "../errors.js";
import { MAX_K, MIN_K, type FreqTable } from "./freq-table.js";

/**
 * Interleaved rANS, spec §10.2: N = 32 >> c lanes of u32 states normalised to [L, 2^31) with
 * L = 2^15, 16-bit little-endian renormalisation words, symbol i of a block on lane i mod N.
 */

/** The most lanes a block has (lane code 0). */
export const RANS_MAX_LANES = 32;
/** The largest lane code (§9): 32 >> 5 = 1 lane. */
export const RANS_MAX_LANE_CODE = 5;
export const RANS_L = 1 << 15;

/** Bytes of the stored final states that open a RANS payload of `lanes` lanes. */
export function ransStateBytes(lanes: number): number {
  return 4 * lanes;
}

/**
 * Spec §15 step 4: the lane count the reference writer gives a block of n symbols, so that every
 * lane codes at least 1024 of them (32 lanes from 2^15 symbols on).
 */
export function referenceLanes(count: number): number {
  const log2 = count < 1 ? 0 : 31 - Math.clz32(count);
  return 1 << Math.min(5, Math.max(0, log2 - 10));
}

/** The lane code c of §9 for a lane count (32 >> c lanes). */
export function laneCode(lanes: number): number {
  const code = RANS_MAX_LANE_CODE - (31 - Math.clz32(lanes));
  if (!Number.isInteger(lanes) || code < 0 || code > RANS_MAX_LANE_CODE || RANS_MAX_LANES >> code !== lanes) {
    throw new QansError("INVALID_ARGUMENT", `${lanes} lanes is not 32, 16, 8, 4, 2 or 1`);
  }
  return code;
}

/** Frequencies and cumulative frequencies as int32 arrays of 256 entries, checked for consistency. */
function tableArrays(table: FreqTable): { k: number; freq: Int32Array; cum: Int32Array } {
  const { k, width, freqs } = table;
  if (!Number.isInteger(k) || k < MIN_K || k > MAX_K || !Number.isInteger(width) || width < 1 || width > 8) {
    throw new QansError("INVALID_ARGUMENT", `frequency table has k = ${k}, width = ${width}`);
  }
  const size = 1 << width;
  const M = 1 << k;
  if (freqs.length !== size) {
    throw new QansError("INVALID_ARGUMENT", `frequency table has ${freqs.length} entries, expected ${size}`);
  }
  // 256 entries whatever the width, so that a symbol outside the alphabet reads frequency 0
  // instead of undefined.
  const freq = new Int32Array(256);
  const cum = new Int32Array(256);
  let sum = 0;
  for (let s = 0; s < size; s++) {
    const f = freqs[s];
    if (f >= M) throw new QansError("INVALID_ARGUMENT", `frequency ${f} of symbol ${s} is not below 2^${k}`);
    freq[s] = f;
    cum[s] = sum;
    sum += f;
  }
  if (sum !== M) throw new QansError("INVALID_ARGUMENT", `frequencies sum to ${sum}, expected 2^${k}`);
  return { k, freq, cum };
}

/**
 * Encodes a block on `lanes` lanes. The result is the final states (u32 LE) followed by the
 * renormalisation words in the order the decoder consumes them. Throws INVALID_ARGUMENT for a
 * symbol whose frequency is 0, since it cannot be coded.
 */
export function ransEncode(symbols: Uint8Array, table: FreqTable, lanes: number): Uint8Array {
  const { k, freq, cum } = tableArrays(table);
  const laneMask = lanes - 1;
  laneCode(lanes);
  const n = symbols.length;
  const limitShift = 31 - k;
  const x = new Int32Array(lanes).fill(RANS_L);
  // At most one word per symbol. The encoder runs backwards and the decoder reads forwards, so
  // words are stored from the end of the buffer towards its start.
  const words = new Uint8Array(2 * n);
  let w = words.length;
  for (let i = n - 1; i >= 0; i--) {
    const l = i & laneMask;
    const s = symbols[i];
    const f = freq[s];
    if (f === 0) {
      throw new QansError("INVALID_ARGUMENT", `symbol ${s} at index ${i} has frequency 0 in the table`);
    }
    let xs = x[l];
    // f < 2^k, so f << (31 - k) < 2^31 and the shift cannot overflow int32.
    if (xs >= f << limitShift) {
      words[--w] = (xs >>> 8) & 0xff;
      words[--w] = xs & 0xff;
      xs >>>= 16;
    }
    // xs < f · 2^(31-k) here, so q < 2^(31-k) and q << k < 2^31. The double division is exact enough:
    // a quotient of integers below 2^31 and 2^15 is never within an ulp of the next integer.
    const q = (xs / f) | 0;
    x[l] = (q << k) + (xs - q * f) + cum[s];
  }
  const stateBytes = ransStateBytes(lanes);
  const out = new Uint8Array(stateBytes + (words.length - w));
  for (let l = 0; l < lanes; l++) {
    const v = x[l];
    out[4 * l] = v & 0xff;
    out[4 * l + 1] = (v >>> 8) & 0xff;
    out[4 * l + 2] = (v >>> 16) & 0xff;
    out[4 * l + 3] = v >>> 24;
  }
  out.set(words.subarray(w), stateBytes);
  return out;
}

/**
 * Decodes RANS blocks of one stream. The slot lookup is built once per table, so decoding each
 * block only touches the payload.
 */
export class RansDecoder {
  readonly table: FreqTable;
  private readonly k: number;
  /** slot → symbol, M entries. */
  private readonly symbolOf: Uint8Array;
  /** slot → (f[s] << 16) | (slot − c[s]) of its symbol s: one load gives both decode operands. */
  private readonly step: Int32Array;

  constructor(table: FreqTable) {
    const { k, freq, cum } = tableArrays(table);
    this.table = table;
    this.k = k;
    const M = 1 << k;
    this.symbolOf = new Uint8Array(M);
    this.step = new Int32Array(M);
    const size = 1 << table.width;
    for (let s = 0; s < size; s++) {
      const f = freq[s];
      const c = cum[s];
      for (let j = 0; j < f; j++) {
        this.symbolOf[c + j] = s;
        this.step[c + j] = (f << 16) | j;
      }
    }
  }

  /**
   * Decodes `count` symbols on `lanes` lanes from `payload` into `out[0, count)`. Throws BAD_BLOCK
   * for a payload length outside [4·lanes, 4·lanes + 2·count] or odd, BAD_FINAL_STATE for a stored
   * state outside [L, 2^31) or a lane that does not end at L, BLOCK_OVERRUN when a word is needed
   * past the end and TRAILING_DATA when words remain; messages start with `where`.
   */
  decode(payload: Uint8Array, count: number, lanes: number, out: Uint8Array, where: string): void {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new QansError("INVALID_ARGUMENT", `${where}: symbol count ${count} is not a non-negative integer`);
    }
    if (out.length < count) {
      throw new QansError("INVALID_ARGUMENT", `${where}: output holds ${out.length} symbols, ${count} requested`);
    }
    laneCode(lanes);
    const stateBytes = ransStateBytes(lanes);
    const P = payload.length;
    if (P < stateBytes || P > stateBytes + 2 * count || (P & 1) !== 0) {
      throw new QansError(
        "BAD_BLOCK",
        `${where}: RANS payload length ${P} is not an even number from ${stateBytes} to ${stateBytes + 2 * count} for ${count} symbols on ${lanes} lanes`,
      );
    }
    const x = new Int32Array(lanes);
    for (let l = 0; l < lanes; l++) {
      const o = 4 * l;
      const v = (payload[o] | (payload[o + 1] << 8) | (payload[o + 2] << 16) | (payload[o + 3] << 24)) >>> 0;
      if (v < RANS_L || v >= 0x80000000) {
        throw new QansError("BAD_FINAL_STATE", `${where}: stored state of lane ${l} is ${v}, outside [2^15, 2^31)`);
      }
      x[l] = v;
    }

    const k = this.k;
    const mask = (1 << k) - 1;
    const symbolOf = this.symbolOf;
    const step = this.step;
    let p = stateBytes;
    let i = 0;

    // Each round codes one symbol per lane and consumes at most one word per lane, so while
    // 2·lanes bytes remain no bounds check is needed. The state stays in [L, 2^31): f·(x >> k) + bias is
    // below f·((x >> k) + 1) ≤ 2^31, at least f ≥ 1 since x >> k ≥ 1, and a renormalised
    // (x << 16) | word is at least 2^16.
    const laneMask = lanes - 1;
    const fastEnd = count - (count & laneMask);
    const roundBytes = 2 * lanes;
    while (i < fastEnd && p + roundBytes <= P) {
      for (let l = 0; l < lanes; l++) {
        let xs = x[l];
        const slot = xs & mask;
        const e = step[slot];
        xs = (e >>> 16) * (xs >>> k) + (e & 0xffff);
        if (xs < RANS_L) {
          xs = (xs << 16) | payload[p] | (payload[p + 1] << 8);
          p += 2;
        }
        x[l] = xs;
        out[i + l] = symbolOf[slot];
      }
      i += lanes;
    }

    for (; i < count; i++) {
      const l = i & laneMask;
      let xs = x[l];
      const slot = xs & mask;
      const e = step[slot];
      xs = (e >>> 16) * (xs >>> k) + (e & 0xffff);
      if (xs < RANS_L) {
        if (p + 2 > P) {
          throw new QansError("BLOCK_OVERRUN", `${where}: symbol ${i} needs a renormalisation word past the ${P}-byte payload`);
        }
        xs = (xs << 16) | payload[p] | (payload[p + 1] << 8);
        p += 2;
      }
      x[l] = xs;
      out[i] = symbolOf[slot];
    }

    if (p !== P) {
      throw new QansError("TRAILING_DATA", `${where}: ${P - p} payload bytes remain after decoding ${count} symbols`);
    }
    for (let l = 0; l < lanes; l++) {
      if (x[l] !== RANS_L) {
        throw new QansError("BAD_FINAL_STATE", `${where}: lane ${l} ends in state ${x[l]}, not 2^15`);
      }
    }
  }
}
