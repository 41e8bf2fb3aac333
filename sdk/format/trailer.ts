import { crc32c } from "../codec/crc32c.js";
import { QansError } from "../errors.js";
import { ByteWriter, bytesEqual } from "./bytes.js";
import { FORMAT_MAJOR, FORMAT_MINOR, LIMITS, MIN_FILE_SIZE, TRAILER_MAGIC, TRAILER_SIZE } from "./constants.js";
import { checkStoredCrc } from "./checksum.js";
import { readVersion, type FormatVersion } from "./file-header.js";

export interface Trailer extends FormatVersion {
  indexOffset: number;
  indexLength: number;
  fileLength: number;
  /** The stored trailer checksum (offset 28): what a set file pins a shard with (spec §16.1). */
  checksum: number;
}

/** Where the index lies: all that decoding the index needs of the trailer. */
export type IndexPlacement = Pick<Trailer, "indexOffset" | "indexLength">;

export function encodeTrailer(indexOffset: number, indexLength: number): Uint8Array {
  const fileLength = indexOffset + indexLength + TRAILER_SIZE;
  const writer = new ByteWriter(TRAILER_SIZE).u64(indexOffset).u64(indexLength).u64(fileLength).u16(FORMAT_MAJOR).u16(FORMAT_MINOR);
  const body = writer.finish();
  return new ByteWriter(TRAILER_SIZE).bytes(body).u32(crc32c(body)).bytes(TRAILER_MAGIC).finish();
}

/**
 * Checks the trailer (the last 40 bytes of a file of `fileSize` bytes) in the order of spec §4.2.
 * `startsWithMagic` (do the file's first bytes, up to 8, match the magic?) is asked only when the
 * trailer is missing, to tell a cut-short file from a file that is not QANS at all.
 */
export async function decodeTrailer(
  bytes: Uint8Array,
  fileSize: number,
  startsWithMagic: () => Promise<boolean>,
): Promise<Trailer> {
  const where = "trailer";
  if (fileSize < MIN_FILE_SIZE) {
    if (!(await startsWithMagic())) throw new QansError("BAD_MAGIC", `${where}: not a QANS file`);
    throw new QansError("TRUNCATED", `${where}: file has ${fileSize} bytes, a QANS file has at least ${MIN_FILE_SIZE}`);
  }
  if (!bytesEqual(bytes.subarray(32, 40), TRAILER_MAGIC)) {
    if (await startsWithMagic()) {
      throw new QansError("TRUNCATED", `${where}: the file starts like QANS but has no trailer at byte ${fileSize - TRAILER_SIZE}; it was cut short or is still being written`);
    }
    throw new QansError("BAD_MAGIC", `${where}: not a QANS file (no QANS magic at the start or the end)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, TRAILER_SIZE);
  const { major, minor } = readVersion(view, 24, where);
  checkStoredCrc(bytes, 28, fileSize - TRAILER_SIZE, where);
  const indexOffset = view.getBigUint64(0, true);
  const indexLength = view.getBigUint64(8, true);
  const fileLength = view.getBigUint64(16, true);
  const size = BigInt(fileSize);
  if (fileLength > size) {
    throw new QansError("TRUNCATED", `${where}: the file declares ${fileLength} bytes but has ${fileSize}`);
  }
  if (fileLength < size) {
    throw new QansError("TRAILING_DATA", `${where}: the file declares ${fileLength} bytes but has ${fileSize}; ${size - fileLength} bytes follow the trailer`);
  }
  // BigInt sums cannot overflow, which is the point: a u64 near 2^64 must not wrap into range.
  if (indexOffset + indexLength + BigInt(TRAILER_SIZE) !== fileLength) {
    throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: index at ${indexOffset} of ${indexLength} bytes does not end where the trailer starts (${fileLength - BigInt(TRAILER_SIZE)})`);
  }
  if (indexOffset % 64n !== 0n) {
    throw new QansError("MISALIGNED", `${where}: index offset ${indexOffset} is not a multiple of 64`);
  }
  if (indexLength > BigInt(LIMITS.maxIndexBytes)) {
    throw new QansError("LIMIT_EXCEEDED", `${where}: index length ${indexLength} exceeds ${LIMITS.maxIndexBytes}`);
  }
  return { major, minor, indexOffset: Number(indexOffset), indexLength: Number(indexLength), fileLength: fileSize, checksum: view.getUint32(28, true) };
}
