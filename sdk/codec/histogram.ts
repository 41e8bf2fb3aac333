import { QansError } from "../errors.js";

/**
 * Symbol histograms. Counts are kept in a Float64Array so that they stay exact up to 2^53, far
 * beyond the 2^48 elements a tensor may have (spec §7.1), whatever the number of symbols.
 */

// Counting into four interleaved int32 tables breaks the store-to-load dependency between equal
// consecutive symbols, which is the common case for skewed weight planes. Chunks stay below 2^31
// symbols so no int32 counter can overflow before it is flushed into the float totals.
const CHUNK = 1 << 30;

function countInto(into: Float64Array, symbols: Uint8Array): void {
  const n = symbols.length;
  const sub = new Int32Array(4 * 256);
  for (let start = 0; start < n; start += CHUNK) {
    const stop = Math.min(n, start + CHUNK);
    let i = start;
    for (; i + 4 <= stop; i += 4) {
      sub[symbols[i]]++;
      sub[256 + symbols[i + 1]]++;
      sub[512 + symbols[i + 2]]++;
      sub[768 + symbols[i + 3]]++;
    }
    for (; i < stop; i++) sub[symbols[i]]++;
    for (let s = 0; s < 256; s++) {
      const c = sub[s] + sub[256 + s] + sub[512 + s] + sub[768 + s];
      if (c === 0) continue;
      if (s >= into.length) {
        throw new QansError("INVALID_ARGUMENT", `symbol ${s} is outside the alphabet of ${into.length} symbols`);
      }
      into[s] += c;
    }
    sub.fill(0);
  }
}

/** Exact counts of each symbol in `symbols`; every symbol must be below `alphabetSize` (1 to 256). */
export function histogram(symbols: Uint8Array, alphabetSize = 256): Float64Array {
  if (!Number.isInteger(alphabetSize) || alphabetSize < 1 || alphabetSize > 256) {
    throw new QansError("INVALID_ARGUMENT", `alphabet size ${alphabetSize} is not an integer from 1 to 256`);
  }
  const counts = new Float64Array(alphabetSize);
  countInto(counts, symbols);
  return counts;
}

/** Adds the counts of `symbols` to `into`, whose length is the alphabet size. */
export function addHistogram(into: Float64Array, symbols: Uint8Array): void {
  countInto(into, symbols);
}

/** Total order-0 information content in bits: Σ c · log2(T / c) over the non-zero counts. */
export function entropyBits(counts: ArrayLike<number>): number {
  let total = 0;
  for (let s = 0; s < counts.length; s++) total += counts[s];
  if (total === 0) return 0;
  let bits = 0;
  for (let s = 0; s < counts.length; s++) {
    const c = counts[s];
    if (c > 0) bits += c * Math.log2(total / c);
  }
  return bits;
}

/** Number of symbols with a non-zero count. */
export function distinctSymbols(counts: ArrayLike<number>): number {
  let d = 0;
  for (let s = 0; s < counts.length; s++) if (counts[s] > 0) d++;
  return d;
}
