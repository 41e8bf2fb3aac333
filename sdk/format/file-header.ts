import { crc32c } from "../codec/crc32c.js";
import { QansError } from "../errors.js";
import { ByteWriter, bytesEqual, isAllZero } from "./bytes.js";
import { checkStoredCrc } from "./checksum.js";
import { FILE_FLAG_SET, FILE_HEADER_SIZE, FILE_MAGIC, FORMAT_MAJOR, FORMAT_MINOR } from "./constants.js";

export interface FormatVersion {
  major: number;
  minor: number;
}

/** What the file header says besides the magic: the version and whether the file is a set file. */
export interface FileHeader {
  version: FormatVersion;
  /** Flag `SET` (bit 0): the file describes a sharded model and holds no tensors (spec §16). */
  set: boolean;
}

/** The 64-byte file header; `set` raises flag bit 0 for a set file (spec §16.1). */
export function encodeFileHeader(options: { set?: boolean } = {}): Uint8Array {
  const writer = new ByteWriter(FILE_HEADER_SIZE)
    .bytes(FILE_MAGIC)
    .u16(FORMAT_MAJOR)
    .u16(FORMAT_MINOR)
    .u32(options.set ? FILE_FLAG_SET : 0)
    .zeros(44);
  const bytes = writer.finish();
  return new ByteWriter(FILE_HEADER_SIZE).bytes(bytes).u32(crc32c(bytes)).finish();
}

/** Checks the 64-byte file header in the order spec §4.1 gives. Flag bit 0 (`SET`) is the only flag. */
export function decodeFileHeader(bytes: Uint8Array): FileHeader {
  const where = "file header";
  if (bytes.length < FILE_HEADER_SIZE) {
    if (!isMagicPrefix(bytes)) throw new QansError("BAD_MAGIC", `${where}: not a QANS file`);
    throw new QansError("TRUNCATED", `${where}: file has ${bytes.length} bytes, the header needs ${FILE_HEADER_SIZE}`);
  }
  if (!bytesEqual(bytes.subarray(0, 8), FILE_MAGIC)) {
    throw new QansError("BAD_MAGIC", `${where}: not a QANS file (bytes 0..7 are not the QANS magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, FILE_HEADER_SIZE);
  const version = readVersion(view, 8, where);
  checkStoredCrc(bytes, 60, 0, where);
  const flags = view.getUint32(12, true);
  if ((flags & ~FILE_FLAG_SET) !== 0 || !isAllZero(bytes, 16, 60)) {
    throw new QansError("RESERVED_BITS", `${where}: reserved flag bits (1..31) or reserved bytes 16..59 are not zero`);
  }
  return { version, set: (flags & FILE_FLAG_SET) !== 0 };
}

/** Reads the u16 major and minor versions at `at`, refusing a major version this reader does not implement. */
export function readVersion(view: DataView, at: number, where: string): FormatVersion {
  const major = view.getUint16(at, true);
  const minor = view.getUint16(at + 2, true);
  if (major !== FORMAT_MAJOR) {
    throw new QansError("UNSUPPORTED_VERSION", `${where}: major version ${major} is not supported (this reader implements ${FORMAT_MAJOR}.x)`);
  }
  return { major, minor };
}

/** Whether `head` (the file's first bytes, at most 8 of them are looked at) could begin a QANS file. */
export function isMagicPrefix(head: Uint8Array): boolean {
  const length = Math.min(head.length, FILE_MAGIC.length);
  return bytesEqual(head.subarray(0, length), FILE_MAGIC.subarray(0, length));
}
