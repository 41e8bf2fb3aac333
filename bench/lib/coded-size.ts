import type { encodeStream, FreqTable } from "../../sdk/index.js";

/** Bytes of a block header (spec §9). */
export const BLOCK_HEADER_BYTES = 16;

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

/** Serialised size of a frequency table (spec §10.3): k, the presence bitmap and one varint per present symbol. */
export function freqTableBytes(table: FreqTable): number {
  let bytes = 1 + Math.ceil(2 ** table.width / 8);
  for (const f of table.freqs) if (f > 0) bytes += varintBytes(f);
  return bytes;
}

/**
 * Everything a reader needs to decode one stream: its descriptor (width and table flag), the
 * table, and every block's header and payload. Container framing that exists whatever the coder
 * (tensor name and shape, quantisation scales, 64-byte alignment, the index) is left out, just as
 * the zstd figures do not include them.
 */
export function codedStreamBytes(encoded: ReturnType<typeof encodeStream>): number {
  let bytes = 2 + (encoded.stream.table ? freqTableBytes(encoded.stream.table) : 0);
  for (const block of encoded.blocks) bytes += BLOCK_HEADER_BYTES + block.payload.length;
  return bytes;
}
