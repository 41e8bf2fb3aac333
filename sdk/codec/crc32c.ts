/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), spec §2. Every checksum in a QANS file
 * uses it.
 */

const POLY = 0x82f63b78;

// Eight 256-entry tables for slicing-by-8: table t maps a byte to the CRC contribution it makes when
// followed by t more zero bytes, so eight input bytes are folded with eight independent lookups
// instead of eight dependent ones. Int32Array keeps every entry an int32 so the XORs stay in
// the engine's small-integer fast path.
const TABLES = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let b = 0; b < 8; b++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let s = 1; s < 8; s++) {
      c = (c >>> 8) ^ t[c & 0xff];
      t[s * 256 + n] = c;
    }
  }
  return t;
}

/**
 * CRC32C of `data`. Pass the result of an earlier call as `previous` to continue it:
 * `crc32c(b, crc32c(a))` equals `crc32c(a ‖ b)`. Returns an unsigned 32-bit value.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  const t = TABLES;
  const n = data.length;
  let c = ~previous | 0;
  let i = 0;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + data[i + 4]] ^
      t[512 + data[i + 5]] ^
      t[256 + data[i + 6]] ^
      t[data[i + 7]];
    i += 8;
  }
  while (i < n) {
    c = (c >>> 8) ^ t[(c ^ data[i]) & 0xff];
    i++;
  }
  return ~c >>> 0;
}
