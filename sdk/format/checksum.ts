import { crc32c } from "../codec/crc32c.js";
import { QansError } from "../errors.js";

export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * Checks the little-endian CRC32C stored at `crcAt` against bytes [0, crcAt); `fileOffset` is where
 * `bytes` starts in the file, so that the message gives the checksum's file offset.
 */
export function checkStoredCrc(bytes: Uint8Array, crcAt: number, fileOffset: number, where: string): void {
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(crcAt, true);
  const actual = crc32c(bytes.subarray(0, crcAt));
  if (stored !== actual) {
    throw new QansError("CHECKSUM_MISMATCH", `${where}: checksum ${hex(stored)} does not match contents ${hex(actual)} (at byte ${fileOffset + crcAt})`);
  }
}
