import { crc32c } from "../codec/crc32c.js";
import { RANS_MAX_LANES, ransStateBytes } from "../codec/rans.js";
import { QansError } from "../errors.js";
import { ByteReader, ByteWriter, align64, bytesEqual } from "./bytes.js";
import { FILE_HEADER_SIZE, INDEX_FRAME_OVERHEAD, LIMITS, TAG_INDEX } from "./constants.js";
import { checkStoredCrc } from "./checksum.js";
import { blockCount, blockSymbolCount, placeBlocks, streamSymbolCount, streamWidths } from "./layout.js";
import { readTensorDescriptor, writeTensorDescriptor, type TensorDescriptor } from "./tensor-descriptor.js";
import type { IndexPlacement } from "./trailer.js";

export interface IndexEntry extends TensorDescriptor {
  elements: number;
  frameOffset: number;
  headerLength: number;
  frameLength: number;
  /** Payload length of every block, block-major (spec §7.3). */
  payloadLengths: Uint32Array;
}

export interface FileIndex {
  metadataLength: number;
  entries: IndexEntry[];
  /**
   * Index flag `SET` (spec §11, §16.1): the file is a set file. It repeats the file-header flag so
   * that a random-access reader, which reads no file header, knows it too; absent means false.
   */
  set?: boolean;
}

/** The index flag bit that marks a set file (spec §11). */
const INDEX_FLAG_SET = 1;

const MIN_ENTRY_BYTES = 31;
const BODY_PREFIX_BYTES = 24;
const UTF8 = new TextEncoder();

/** Bytes of one index entry (spec §11). */
export function indexEntryLength(entry: Pick<IndexEntry, "name" | "shape" | "payloadLengths">): number {
  return 2 + UTF8.encode(entry.name).length + 4 + 8 * entry.shape.length + 4 + 8 + 4 + 8 + 4 * entry.payloadLengths.length;
}

/** Bytes of an index frame whose entries take `entryBytes` in all. */
export function indexFrameLength(entryBytes: number): number {
  return INDEX_FRAME_OVERHEAD + BODY_PREFIX_BYTES + entryBytes;
}

export function encodeIndexFrame(index: FileIndex): Uint8Array {
  const body = new ByteWriter(1024).u64(FILE_HEADER_SIZE).u64(index.metadataLength).u64(index.entries.length);
  for (const entry of index.entries) {
    writeTensorDescriptor(body, entry);
    body.u64(entry.frameOffset).u32(entry.headerLength).u64(entry.frameLength);
    for (const length of entry.payloadLengths) body.u32(length);
  }
  const bodyBytes = body.finish();
  const flags = index.set ? INDEX_FLAG_SET : 0;
  const frame = new ByteWriter(bodyBytes.length + INDEX_FRAME_OVERHEAD).bytes(TAG_INDEX).u32(flags).u64(bodyBytes.length).bytes(bodyBytes);
  return frame.u32(crc32c(frame.finish())).finish();
}

/** Checks the index frame (exactly the trailer's index length in bytes) in the order of spec §11. */
export function decodeIndexFrame(frame: Uint8Array, trailer: IndexPlacement): FileIndex {
  const base = trailer.indexOffset;
  const head = new ByteReader(frame, "index", "TRUNCATED", 0, frame.length, base);
  if (!bytesEqual(head.bytesView(4, "tag"), TAG_INDEX)) head.fail("BAD_MAGIC", "expected the QIDX tag", 0);
  const flags = head.u32("flags");
  if ((flags & ~INDEX_FLAG_SET) !== 0) head.fail("RESERVED_BITS", `reserved flag bits are set (flags ${flags})`, 4);
  const bodyLength = head.u64("body length");
  if (bodyLength + BigInt(INDEX_FRAME_OVERHEAD) !== BigInt(trailer.indexLength)) {
    head.fail("INDEX_MISMATCH", `body length ${bodyLength} does not fit the trailer's index length ${trailer.indexLength}`, 8);
  }
  checkStoredCrc(frame, frame.length - 4, base, "index");
  const body = new ByteReader(frame, "index", "BAD_HEADER", 16, frame.length - 4, base);
  const metadataOffset = body.u64("metadata offset");
  const metadataLength = body.u64("metadata length");
  if (metadataOffset !== BigInt(FILE_HEADER_SIZE) || BigInt(FILE_HEADER_SIZE) + metadataLength > BigInt(trailer.indexOffset)) {
    body.fail("OFFSET_OUT_OF_RANGE", `metadata frame at ${metadataOffset} of ${metadataLength} bytes is not at 64 before the index`, 16);
  }
  const tensorCount = body.u64("tensor count");
  const bodyBytes = frame.length - INDEX_FRAME_OVERHEAD;
  if (tensorCount > BigInt(LIMITS.maxTensors) || Number(tensorCount) * MIN_ENTRY_BYTES > bodyBytes - BODY_PREFIX_BYTES) {
    body.fail("LIMIT_EXCEEDED", `tensor count ${tensorCount} exceeds the limit or what ${bodyBytes} bytes of index can hold`, 32);
  }
  const entries: IndexEntry[] = [];
  const names = new Set<string>();
  let expectedOffset = align64(FILE_HEADER_SIZE + Number(metadataLength));
  for (let t = 0; t < Number(tensorCount); t++) {
    const entry = readEntry(body, trailer);
    if (names.has(entry.name)) throw new QansError("DUPLICATE_NAME", `index: tensor name "${entry.name}" appears twice`);
    names.add(entry.name);
    const where = `index entry of tensor "${entry.name}"`;
    if (entry.frameOffset % 64 !== 0) throw new QansError("MISALIGNED", `${where}: frame offset ${entry.frameOffset} is not a multiple of 64`);
    if (entry.frameOffset !== expectedOffset) {
      throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: frame at ${entry.frameOffset}, but the previous structure ends at ${expectedOffset} (frames must be contiguous)`);
    }
    if (entry.frameOffset + entry.frameLength > trailer.indexOffset) {
      throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: frame of ${entry.frameLength} bytes at ${entry.frameOffset} runs past the index at ${trailer.indexOffset}`);
    }
    const placement = placeBlocks(entry.frameOffset, entry.headerLength, entry.payloadLengths);
    if (placement.frameEnd - entry.frameOffset !== entry.frameLength) {
      throw new QansError("INDEX_MISMATCH", `${where}: frame length ${entry.frameLength} disagrees with its header and block lengths (${placement.frameEnd - entry.frameOffset})`);
    }
    expectedOffset = align64(placement.frameEnd);
    entries.push(entry);
  }
  if (body.offset !== body.end) body.fail("BAD_HEADER", `${body.end - body.offset} unexplained bytes at the end of the index body`);
  if (expectedOffset !== trailer.indexOffset) {
    throw new QansError("OFFSET_OUT_OF_RANGE", `index: the last frame ends at ${expectedOffset}, but the index starts at ${trailer.indexOffset}`);
  }
  return { metadataLength: Number(metadataLength), entries, set: (flags & INDEX_FLAG_SET) !== 0 };
}

function readEntry(body: ByteReader, trailer: IndexPlacement): IndexEntry {
  const descriptor = readTensorDescriptor(body);
  const where = `index entry of tensor "${descriptor.name}"`;
  const widths = streamWidths(descriptor.encoding, descriptor.dtype, 8, where);
  if (descriptor.streamCount !== widths.length) {
    throw new QansError("BAD_HEADER", `${where}: ${descriptor.streamCount} streams, ${descriptor.encoding} of ${descriptor.dtype} has ${widths.length}`);
  }
  const frameOffset = body.u64("frame offset");
  const headerLength = body.u32("header length");
  const frameLength = body.u64("frame length");
  if (frameOffset >= BigInt(trailer.indexOffset) || frameLength > BigInt(trailer.indexOffset)) {
    throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: frame at ${frameOffset} of ${frameLength} bytes lies outside the file`);
  }
  if (headerLength < 25 || BigInt(headerLength) > frameLength) {
    throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: header length ${headerLength} does not fit its frame of ${frameLength} bytes`);
  }
  const symbols = streamSymbolCount(descriptor.encoding, descriptor.dtype, descriptor.elements);
  const blocks = blockCount(symbols, descriptor.log2Block);
  const lengthCount = blocks * descriptor.streamCount;
  if (lengthCount * 4 > body.remaining) body.fail("BAD_HEADER", `${lengthCount} block lengths do not fit in the rest of the index`);
  const raw = body.bytesView(lengthCount * 4, "block lengths");
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const payloadLengths = new Uint32Array(lengthCount);
  for (let i = 0; i < lengthCount; i++) {
    const length = view.getUint32(4 * i, true);
    const count = blockSymbolCount(symbols, descriptor.log2Block, Math.floor(i / descriptor.streamCount));
    if (length > ransStateBytes(RANS_MAX_LANES) + 2 * count) {
      throw new QansError("OFFSET_OUT_OF_RANGE", `${where}: block ${i} payload of ${length} bytes exceeds the largest a ${count}-symbol block can need`);
    }
    payloadLengths[i] = length;
  }
  return { ...descriptor, frameOffset: Number(frameOffset), headerLength, frameLength: Number(frameLength), payloadLengths };
}
