import { crc32c } from "../codec/crc32c.js";
import { BLOCK_HEADER_SIZE, FILE_HEADER_SIZE, TRAILER_SIZE } from "../format/constants.js";
import type { IndexEntry } from "../format/index-frame.js";
import { placeBlocks } from "../format/layout.js";
import { MemorySource } from "../io/source.js";
import { QansReader } from "../reader.js";

/** Where every structure of a valid file lies, so a test can change one field and re-seal it. */
export interface FileLayout {
  size: number;
  metadata: { offset: number; length: number };
  index: { offset: number; length: number };
  trailerOffset: number;
  tensors: { entry: IndexEntry; headerOffset: number; headerLength: number; blockHeaders: number[] }[];
}

export async function fileLayout(bytes: Uint8Array): Promise<FileLayout> {
  const reader = await QansReader.open(new MemorySource(bytes));
  return {
    size: bytes.length,
    metadata: { offset: FILE_HEADER_SIZE, length: reader.index.metadataLength },
    index: { offset: reader.trailer.indexOffset, length: reader.trailer.indexLength },
    trailerOffset: bytes.length - TRAILER_SIZE,
    tensors: reader.entries.map((entry) => ({
      entry,
      headerOffset: entry.frameOffset,
      headerLength: entry.headerLength,
      blockHeaders: placeBlocks(entry.frameOffset, entry.headerLength, entry.payloadLengths).headerOffsets,
    })),
  };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Recomputes the CRC32C stored at `crcAt` over bytes [start, crcAt). */
export function resealRange(bytes: Uint8Array, start: number, crcAt: number): void {
  view(bytes).setUint32(crcAt, crc32c(bytes.subarray(start, crcAt)), true);
}

export function resealFileHeader(bytes: Uint8Array): void {
  resealRange(bytes, 0, 60);
}

export function resealMetadata(bytes: Uint8Array, layout: FileLayout): void {
  const { offset, length } = layout.metadata;
  resealRange(bytes, offset, offset + length - 4);
}

export function resealTensorHeader(bytes: Uint8Array, layout: FileLayout, tensor: number): void {
  const { headerOffset, headerLength } = layout.tensors[tensor];
  resealRange(bytes, headerOffset, headerOffset + headerLength - 4);
}

/** Re-seals a block whose header starts at `headerAt`, using the payload length it now declares. */
export function resealBlock(bytes: Uint8Array, headerAt: number): void {
  const payloadLength = view(bytes).getUint32(headerAt + 8, true);
  const payloadAt = headerAt + BLOCK_HEADER_SIZE;
  const crc = crc32c(bytes.subarray(payloadAt, payloadAt + payloadLength), crc32c(bytes.subarray(headerAt, headerAt + 12)));
  view(bytes).setUint32(headerAt + 12, crc, true);
}

export function resealIndex(bytes: Uint8Array, layout: FileLayout): void {
  const { offset, length } = layout.index;
  resealRange(bytes, offset, offset + length - 4);
}

export function resealTrailer(bytes: Uint8Array, trailerOffset = bytes.length - TRAILER_SIZE): void {
  resealRange(bytes, trailerOffset, trailerOffset + 28);
}

/** Offset of the first byte of tensor `tensor`'s entry in the index body. */
export function indexEntryOffset(layout: FileLayout, tensor: number): number {
  let at = layout.index.offset + 16 + 24;
  for (let t = 0; t < tensor; t++) {
    const e = layout.tensors[t].entry;
    at += 2 + new TextEncoder().encode(e.name).length + 4 + 8 * e.shape.length + 4 + 8 + 4 + 8 + 4 * e.payloadLengths.length;
  }
  return at;
}
