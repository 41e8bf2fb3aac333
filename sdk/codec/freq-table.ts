import { QansError, check } from "../errors.js";

/**
 * rANS frequency tables: normalisation (spec §10.4), the reference choice of the probability scale
 * (§15 steps 2–4) and the serialised form (§10.3).
 */

export const MIN_K = 10;
export const MAX_K = 15;

/** A validated table: frequencies of the 2^width symbols summing to 2^k, each below 2^k. */
export interface FreqTable {
  readonly k: number;
  readonly width: number;
  /** f[s] for every symbol of the alphabet; length 2^width. */
  readonly freqs: Uint32Array;
  /** c[s] = Σ_{t<s} f[t]; length 2^width + 1, the last entry is 2^k. */
  readonly cum: Uint32Array;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < MIN_K || k > MAX_K) {
    throw new QansError("INVALID_ARGUMENT", `probability scale k = ${k} is not an integer from ${MIN_K} to ${MAX_K}`);
  }
}

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > 8) {
    throw new QansError("INVALID_ARGUMENT", `symbol width ${width} is not an integer from 1 to 8`);
  }
}

/**
 * Builds a table from frequencies of all 2^width symbols. Throws INVALID_ARGUMENT unless they are
 * integers below 2^k summing to 2^k (which implies at least two present symbols), since the coder's
 * arithmetic relies on exactly that.
 */
export function makeFreqTable(k: number, width: number, freqs: ArrayLike<number>): FreqTable {
  checkK(k);
  checkWidth(width);
  const size = 1 << width;
  const M = 1 << k;
  if (freqs.length !== size) {
    throw new QansError("INVALID_ARGUMENT", `frequency table has ${freqs.length} entries, expected 2^${width} = ${size}`);
  }
  const f = new Uint32Array(size);
  const cum = new Uint32Array(size + 1);
  let sum = 0;
  for (let s = 0; s < size; s++) {
    const v = freqs[s];
    if (!Number.isInteger(v) || v < 0 || v >= M) {
      throw new QansError("INVALID_ARGUMENT", `frequency ${v} of symbol ${s} is not an integer in [0, 2^${k})`);
    }
    f[s] = v;
    cum[s] = sum;
    sum += v;
  }
  cum[size] = sum;
  if (sum !== M) throw new QansError("INVALID_ARGUMENT", `frequencies sum to ${sum}, expected 2^${k} = ${M}`);
  return { k, width, freqs: f, cum };
}

/**
 * Spec §10.4: scales exact symbol counts to frequencies summing to 2^k. Counts must be integers
 * in [0, 2^53); every product and comparison is done in BigInt because C · 2^k and C[a] · f[b]
 * exceed the 2^53 that a double holds exactly. Throws INVALID_ARGUMENT with fewer than 2 present
 * symbols.
 */
export function normalizeFrequencies(counts: ArrayLike<number>, k: number): Uint32Array {
  checkK(k);
  const n = counts.length;
  const M = 1 << k;
  const present: number[] = [];
  for (let s = 0; s < n; s++) {
    const c = counts[s];
    if (!Number.isSafeInteger(c) || c < 0) {
      throw new QansError("INVALID_ARGUMENT", `count ${c} of symbol ${s} is not an integer in [0, 2^53)`);
    }
    if (c > 0) present.push(s);
  }
  if (present.length < 2) {
    throw new QansError("INVALID_ARGUMENT", `normalisation needs at least 2 present symbols, got ${present.length}`);
  }
  // Each present symbol keeps f ≥ 1, so more of them than M could never sum to M.
  if (present.length > M) {
    throw new QansError("INVALID_ARGUMENT", `${present.length} present symbols do not fit a scale of 2^${k}`);
  }

  const C: bigint[] = new Array<bigint>(n).fill(0n);
  let T = 0n;
  for (const s of present) {
    C[s] = BigInt(counts[s]);
    T += C[s];
  }
  const Mb = BigInt(M);
  const f = new Uint32Array(n);
  const remainder: bigint[] = new Array<bigint>(n).fill(0n);
  const bumped = new Uint8Array(n);
  let sum = 0;
  for (const s of present) {
    const scaled = C[s] * Mb;
    let q = Number(scaled / T);
    remainder[s] = scaled % T;
    if (q === 0) {
      q = 1;
      bumped[s] = 1;
    }
    f[s] = q;
    sum += q;
  }
  let d = M - sum;

  if (d > 0) {
    const order = present.filter((s) => bumped[s] === 0);
    order.sort((a, b) => (remainder[a] > remainder[b] ? -1 : remainder[a] < remainder[b] ? 1 : a - b));
    // Σ remainders / T = d + (bumped count), and each bumped remainder is below T, so d is below the
    // number of non-bumped symbols; the check only guards that arithmetic.
    check(order.length >= d, "INVALID_ARGUMENT", "normalisation could not distribute the remaining frequency");
    for (let i = 0; i < d; i++) f[order[i]]++;
    d = 0;
  }

  while (d < 0) {
    let best = -1;
    for (const s of present) {
      if (f[s] <= 1) continue;
      // Scanning in ascending symbol order with a strict comparison leaves ties to the smaller symbol.
      if (best < 0 || C[s] * BigInt(f[best]) < C[best] * BigInt(f[s])) best = s;
    }
    check(best >= 0, "INVALID_ARGUMENT", "normalisation has no frequency left to decrement");
    f[best]--;
    d++;
  }
  return f;
}

/**
 * Spec §15 step 3: log2(f) in 16.16 fixed point, computed by repeated squaring so that every
 * implementation gets the same bits. Defined for 1 ≤ f ≤ 2^15.
 */
export function log2Fix(f: number): number {
  if (!Number.isInteger(f) || f < 1 || f > 1 << 15) {
    throw new QansError("INVALID_ARGUMENT", `log2Fix is defined for integers 1 to 2^15, got ${f}`);
  }
  const e = 31 - Math.clz32(f);
  let y = f << (16 - e);
  let r = e << 16;
  for (let bit = 15; bit >= 0; bit--) {
    // y·y reaches 2^34, past int32: divide in doubles (exact below 2^53) rather than shift.
    y = Math.floor((y * y) / 65536);
    if (y >= 1 << 17) {
      y >>>= 1;
      r |= 1 << bit;
    }
  }
  return r;
}

let log2Cache: Uint32Array | undefined;

/** log2Fix for every f from 1 to 2^15, built once: table choice needs it for every symbol at every k. */
function log2FixTable(): Uint32Array {
  if (!log2Cache) {
    log2Cache = new Uint32Array((1 << 15) + 1);
    for (let f = 1; f <= 1 << 15; f++) log2Cache[f] = log2Fix(f);
  }
  return log2Cache;
}

function varintLength(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
}

/** How a serialised table says which symbols are present (§10.3), and its table flag (§7.2). */
export type PresenceForm = "bitmap" | "runs";
export const TABLE_FLAGS: Record<PresenceForm, number> = { bitmap: 1, runs: 2 };

/** Maximal runs of present symbols, as [first symbol, length]. */
function presentRuns(freqs: ArrayLike<number>): [number, number][] {
  const runs: [number, number][] = [];
  for (let s = 0; s < freqs.length; s++) {
    if (freqs[s] === 0) continue;
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === s) last[1]++;
    else runs.push([s, 1]);
  }
  return runs;
}

function presenceBytes(form: PresenceForm, freqs: ArrayLike<number>, width: number): number {
  if (form === "bitmap") return Math.ceil((1 << width) / 8);
  const runs = presentRuns(freqs);
  let size = varintLength(runs.length);
  let end = 0;
  for (const [first, length] of runs) {
    size += varintLength(first - end) + varintLength(length - 1);
    end = first + length;
  }
  return size;
}

/** Spec §15 step 3: runs when strictly smaller than the bitmap, else the bitmap. */
export function presenceForm(freqs: ArrayLike<number>, width: number): PresenceForm {
  return presenceBytes("runs", freqs, width) < presenceBytes("bitmap", freqs, width) ? "runs" : "bitmap";
}

/** Size in bytes of the §10.3 serialisation of these frequencies, in the presence form §15 picks. */
export function serializedTableSize(freqs: ArrayLike<number>, width: number): number {
  checkWidth(width);
  let size = 1 + presenceBytes(presenceForm(freqs, width), freqs, width);
  for (let s = 0; s < freqs.length; s++) if (freqs[s] > 0) size += varintLength(freqs[s]);
  return size;
}

function writeVarint(out: Uint8Array, p: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}

/**
 * Spec §10.3: u8 k, presence (bitmap or runs, whichever §15 picks), then minimal LEB128
 * frequencies of the present symbols. Returns the table flag to write before it.
 */
export function serializeFreqTable(table: FreqTable): { flag: number; bytes: Uint8Array } {
  const { k, width, freqs } = table;
  const form = presenceForm(freqs, width);
  const out = new Uint8Array(serializedTableSize(freqs, width));
  out[0] = k;
  let p = 1;
  if (form === "bitmap") {
    for (let s = 0; s < freqs.length; s++) if (freqs[s] > 0) out[1 + (s >>> 3)] |= 1 << (s & 7);
    p += Math.ceil((1 << width) / 8);
  } else {
    const runs = presentRuns(freqs);
    p = writeVarint(out, p, runs.length);
    let end = 0;
    for (const [first, length] of runs) {
      p = writeVarint(out, p, first - end);
      p = writeVarint(out, p, length - 1);
      end = first + length;
    }
  }
  for (let s = 0; s < freqs.length; s++) if (freqs[s] > 0) p = writeVarint(out, p, freqs[s]);
  return { flag: TABLE_FLAGS[form], bytes: out };
}

/**
 * Parses a §10.3 table written with table flag `flag` (1 bitmap, 2 runs) occupying
 * `bytes[offset, end)` (it may end earlier; `next` is where it does) and applies every check §10.3
 * lists, throwing BAD_FREQ_TABLE with `where` in the message.
 */
export function parseFreqTable(
  bytes: Uint8Array,
  offset: number,
  end: number,
  width: number,
  flag: number,
  where: string,
): { table: FreqTable; next: number } {
  checkWidth(width);
  if (!Number.isInteger(offset) || !Number.isInteger(end) || offset < 0 || offset > end || end > bytes.length) {
    throw new QansError("INVALID_ARGUMENT", `${where}: table range [${offset}, ${end}) is not within ${bytes.length} bytes`);
  }
  if (flag !== TABLE_FLAGS.bitmap && flag !== TABLE_FLAGS.runs) {
    throw new QansError("INVALID_ARGUMENT", `${where}: table flag ${flag} is not ${TABLE_FLAGS.bitmap} or ${TABLE_FLAGS.runs}`);
  }
  const bad = (msg: string): QansError => new QansError("BAD_FREQ_TABLE", `${where}: frequency table ${msg}`);
  let p = offset;
  const varint = (what: string): number => {
    const start = p;
    let v = 0;
    let shift = 0;
    for (;;) {
      if (p - start === 3) throw bad(`has a varint longer than 3 bytes for ${what} at offset ${start}`);
      if (p >= end) throw bad(`is truncated: varint of ${what} at offset ${start} runs past the end`);
      const b = bytes[p++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) {
        if (b === 0 && p - start > 1) throw bad(`has a non-minimal varint for ${what} at offset ${start}`);
        return v;
      }
    }
  };

  if (p >= end) throw bad(`is truncated: no byte for k at offset ${p}`);
  const k = bytes[p++];
  if (k < MIN_K || k > MAX_K) throw bad(`has k = ${k}, outside ${MIN_K} to ${MAX_K}`);
  const M = 1 << k;

  const size = 1 << width;
  const present = new Uint8Array(size);
  if (flag === TABLE_FLAGS.bitmap) {
    const bitmapBytes = Math.ceil(size / 8);
    if (end - p < bitmapBytes) throw bad(`is truncated: presence bitmap needs ${bitmapBytes} bytes, ${end - p} remain`);
    if (size < 8 && bytes[p] >>> size !== 0) throw bad(`sets presence bits beyond the ${size} symbols of width ${width}`);
    for (let s = 0; s < size; s++) present[s] = (bytes[p + (s >>> 3)] >>> (s & 7)) & 1;
    p += bitmapBytes;
  } else {
    const runsAt = p;
    const runs = varint("the run count");
    if (runs === 0) throw bad(`has no runs of present symbols (at offset ${runsAt})`);
    // Runs of at least one symbol with gaps between them: at most half the alphabet, rounded up.
    if (runs > size / 2) throw bad(`has ${runs} runs, more than the ${size / 2} that ${size} symbols allow (at offset ${runsAt})`);
    let next = 0;
    for (let r = 0; r < runs; r++) {
      const gap = varint(`the gap of run ${r}`);
      if (r > 0 && gap === 0) throw bad(`run ${r} follows run ${r - 1} without a gap, so the runs are not maximal (at offset ${p - 1})`);
      const length = varint(`the length of run ${r}`) + 1;
      const first = next + gap;
      if (first + length > size) throw bad(`run ${r} covers symbols ${first} to ${first + length - 1}, past the ${size} symbols of width ${width}`);
      present.fill(1, first, first + length);
      next = first + length;
    }
  }
  let count = 0;
  for (let s = 0; s < size; s++) count += present[s];
  if (count < 2) throw bad(`has ${count} present symbol${count === 1 ? "" : "s"}; at least 2 are required`);

  const freqs = new Uint32Array(size);
  let sum = 0;
  for (let s = 0; s < size; s++) {
    if (present[s] === 0) continue;
    const v = varint(`symbol ${s}`);
    if (v === 0) throw bad(`gives present symbol ${s} frequency 0`);
    if (v >= M) throw bad(`gives symbol ${s} frequency ${v}, not below 2^${k} = ${M}`);
    freqs[s] = v;
    sum += v;
  }
  if (sum !== M) throw bad(`frequencies sum to ${sum}, expected 2^${k} = ${M}`);
  return { table: makeFreqTable(k, width, freqs), next: p };
}

/**
 * Spec §15 steps 2–3: normalises the counts at every k from 10 to 15 and keeps the cheapest by
 * estimated coded size (data plus table, in units of 2^-16 bits), ties to the smaller k. Returns
 * null when fewer than 2 symbols occur, since such a stream has no table.
 */
export function chooseFreqTable(
  counts: ArrayLike<number>,
  width: number,
): { table: FreqTable; costBits2e16: bigint } | null {
  checkWidth(width);
  const size = 1 << width;
  const padded = new Float64Array(size);
  let distinct = 0;
  for (let s = 0; s < counts.length; s++) {
    const c = counts[s];
    if (c === 0) continue;
    if (s >= size) throw new QansError("INVALID_ARGUMENT", `symbol ${s} has a count but width ${width} allows ${size} symbols`);
    padded[s] = c;
    distinct++;
  }
  if (distinct < 2) return null;

  let total = 0;
  for (let s = 0; s < size; s++) total += padded[s];
  // Each term is at most count · 15 · 2^16 < count · 2^20: below 2^53 in total, doubles sum exactly.
  const exactInDoubles = total * 2 ** 20 + 2 ** 40 < Number.MAX_SAFE_INTEGER;
  const log2Table = log2FixTable();
  let bestK = 0;
  let bestFreqs: Uint32Array | null = null;
  let bestCost = 0n;
  for (let k = MIN_K; k <= MAX_K; k++) {
    const f = normalizeFrequencies(padded, k);
    const full = k * 65536;
    const tableCost = 8 * 65536 * serializedTableSize(f, width);
    let cost: bigint;
    if (exactInDoubles) {
      let sum = tableCost;
      for (let s = 0; s < size; s++) if (padded[s] > 0) sum += padded[s] * (full - log2Table[f[s]]);
      cost = BigInt(sum);
    } else {
      cost = BigInt(tableCost);
      for (let s = 0; s < size; s++) if (padded[s] > 0) cost += BigInt(padded[s]) * BigInt(full - log2Table[f[s]]);
    }
    if (bestFreqs === null || cost < bestCost) {
      bestK = k;
      bestFreqs = f;
      bestCost = cost;
    }
  }
  return { table: makeFreqTable(bestK, width, bestFreqs!), costBits2e16: bestCost };
}

/**
 * Spec §15 step 5: a table pays when the estimated coded size in bytes, plus the blocks' final
 * states (`stateBytes`), is below the bit-packed size `rawBytes`.
 */
export function tablePays(cost: bigint, stateBytes: number, rawBytes: number): boolean {
  const codedBytes = (cost + (1n << 19n) - 1n) >> 19n;
  return codedBytes + BigInt(stateBytes) < BigInt(rawBytes);
}
