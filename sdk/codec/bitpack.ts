import { QansError } from "../errors.js";

/**
 * RAW block payloads, spec §9: symbol i occupies bits [i·w, (i+1)·w) of a little-endian bit string
 * (bit t is bit t mod 8 of byte floor(t / 8)); bits after the last symbol are zero.
 */

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > 8) {
    throw new QansError("INVALID_ARGUMENT", `symbol width ${width} is not an integer from 1 to 8`);
  }
}

/** Payload length in bytes of `count` packed symbols of `width` bits. */
export function packedSize(count: number, width: number): number {
  return Math.ceil((count * width) / 8);
}

/** Packs symbols of `width` bits; throws INVALID_ARGUMENT if a symbol does not fit the width. */
export function packBits(symbols: Uint8Array, width: number): Uint8Array {
  checkWidth(width);
  const n = symbols.length;
  const out = new Uint8Array(packedSize(n, width));
  if (width === 8) {
    out.set(symbols);
    return out;
  }
  // OR of all symbols: one check after the loop instead of a branch per symbol.
  let seen = 0;
  if (width === 4) {
    const pairs = n >>> 1;
    for (let j = 0; j < pairs; j++) {
      const a = symbols[2 * j];
      const b = symbols[2 * j + 1];
      seen |= a | b;
      out[j] = a | (b << 4);
    }
    if (n & 1) {
      const a = symbols[n - 1];
      seen |= a;
      out[pairs] = a;
    }
  } else {
    let acc = 0;
    let bits = 0;
    let o = 0;
    for (let i = 0; i < n; i++) {
      const s = symbols[i];
      seen |= s;
      acc |= s << bits;
      bits += width;
      if (bits >= 8) {
        out[o++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
    if (bits > 0) out[o] = acc & 0xff;
  }
  if (seen >>> width !== 0) {
    throw new QansError("INVALID_ARGUMENT", `a symbol does not fit in ${width} bits`);
  }
  return out;
}

/**
 * Unpacks `count` symbols of `width` bits into `out[0, count)`. Throws BAD_BLOCK unless the payload
 * is exactly ceil(count·width / 8) bytes and NONZERO_PADDING if a bit after the last symbol is
 * set; messages start with `where`.
 */
export function unpackBits(payload: Uint8Array, count: number, width: number, out: Uint8Array, where: string): void {
  checkWidth(width);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new QansError("INVALID_ARGUMENT", `${where}: symbol count ${count} is not a non-negative integer`);
  }
  if (out.length < count) {
    throw new QansError("INVALID_ARGUMENT", `${where}: output holds ${out.length} symbols, ${count} requested`);
  }
  const size = packedSize(count, width);
  if (payload.length !== size) {
    throw new QansError(
      "BAD_BLOCK",
      `${where}: RAW payload is ${payload.length} bytes, expected ${size} for ${count} symbols of ${width} bits`,
    );
  }
  // Checked before unpacking so that a rejected block leaves `out` untouched.
  const used = (count * width) % 8;
  if (used !== 0 && payload[size - 1] >>> used !== 0) {
    throw new QansError("NONZERO_PADDING", `${where}: unused bits after the last RAW symbol are not zero`);
  }
  if (width === 8) {
    out.set(payload);
    return;
  }
  if (width === 4) {
    const pairs = count >>> 1;
    for (let j = 0; j < pairs; j++) {
      const b = payload[j];
      out[2 * j] = b & 0x0f;
      out[2 * j + 1] = b >>> 4;
    }
    if (count & 1) out[count - 1] = payload[pairs] & 0x0f;
    return;
  }
  const mask = (1 << width) - 1;
  let acc = 0;
  let bits = 0;
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (bits < width) {
      acc |= payload[p++] << bits;
      bits += 8;
    }
    out[i] = acc & mask;
    acc >>>= width;
    bits -= width;
  }
}
