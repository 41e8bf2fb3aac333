import { QansError } from "../errors.js";
import { MAX_K, MIN_K, type FreqTable } from "./freq-table.js";

/**
 * 32-lane interleaved rANS, spec §10.2: u32 states normalised to [L, 2^31) with L = 2^15, 16-bit
 * little-endian renormalisation words, symbol i of a block on lane i mod 32.
 */

export const RANS_LANES = 32;
export const RANS_L = 1 << 15;
/** Bytes of the 32 stored final states that open every RANS payload. */
export const RANS_STATE_BYTES = 4 * RANS_LANES;

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
 * Encodes a block. The result is the 32 final states (u32 LE) followed by the renormalisation
 * words in the order the decoder consumes them. Throws INVALID_ARGUMENT for a symbol whose
 * frequency is 0, since it cannot be coded.
 */
export function ransEncode(symbols: Uint8Array, table: FreqTable): Uint8Array {
  const { k, freq, cum } = tableArrays(table);
  const n = symbols.length;
  const limitShift = 31 - k;
  const x = new Int32Array(RANS_LANES).fill(RANS_L);
  // At most one word per symbol. The encoder runs backwards and the decoder reads forwards, so
  // words are stored from the end of the buffer towards its start.
  const words = new Uint8Array(2 * n);
  let w = words.length;
  for (let i = n - 1; i >= 0; i--) {
    const l = i & 31;
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
  const out = new Uint8Array(RANS_STATE_BYTES + (words.length - w));
  for (let l = 0; l < RANS_LANES; l++) {
    const v = x[l];
    out[4 * l] = v & 0xff;
    out[4 * l + 1] = (v >>> 8) & 0xff;
    out[4 * l + 2] = (v >>> 16) & 0xff;
    out[4 * l + 3] = v >>> 24;
  }
  out.set(words.subarray(w), RANS_STATE_BYTES);
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
   * Decodes `count` symbols from `payload` into `out[0, count)`. Throws BAD_BLOCK for a payload
   * length outside [128, 128 + 2·count] or odd, BAD_FINAL_STATE for a stored state outside
   * [L, 2^31) or a lane that does not end at L, BLOCK_OVERRUN when a word is needed past the end
   * and TRAILING_DATA when words remain; messages start with `where`.
   */
  decode(payload: Uint8Array, count: number, out: Uint8Array, where: string): void {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new QansError("INVALID_ARGUMENT", `${where}: symbol count ${count} is not a non-negative integer`);
    }
    if (out.length < count) {
      throw new QansError("INVALID_ARGUMENT", `${where}: output holds ${out.length} symbols, ${count} requested`);
    }
    const P = payload.length;
    if (P < RANS_STATE_BYTES || P > RANS_STATE_BYTES + 2 * count || (P & 1) !== 0) {
      throw new QansError(
        "BAD_BLOCK",
        `${where}: RANS payload length ${P} is not an even number from ${RANS_STATE_BYTES} to ${RANS_STATE_BYTES + 2 * count} for ${count} symbols`,
      );
    }
    const x = new Int32Array(RANS_LANES);
    for (let l = 0; l < RANS_LANES; l++) {
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
    let p = RANS_STATE_BYTES;
    let i = 0;

    // Each round codes one symbol per lane and consumes at most one word per lane, so while 64
    // bytes remain no bounds check is needed. The state stays in [L, 2^31): f·(x >> k) + bias is
    // below f·((x >> k) + 1) ≤ 2^31, at least f ≥ 1 since x >> k ≥ 1, and a renormalised
    // (x << 16) | word is at least 2^16.
    const fastEnd = count - (count & 31);
    while (i < fastEnd && p + 64 <= P) {
      for (let l = 0; l < RANS_LANES; l++) {
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
      i += 32;
    }

    for (; i < count; i++) {
      const l = i & 31;
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
    for (let l = 0; l < RANS_LANES; l++) {
      if (x[l] !== RANS_L) {
        throw new QansError("BAD_FINAL_STATE", `${where}: lane ${l} ends in state ${x[l]}, not 2^15`);
      }
    }
  }
}
