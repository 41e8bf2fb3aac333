import { kernels } from "../codec/kernels.js";
import { laneCode, RANS_MAX_LANE_CODE, RANS_MAX_LANES, ransStateBytes } from "../codec/rans.js";
import { QansError } from "../errors.js";
import { BLOCK_HEADER_SIZE, BLOCK_MODE_NAMES, BLOCK_MODES, type BlockMode } from "./constants.js";
import { hex } from "./checksum.js";

export interface BlockHeader {
  mode: BlockMode;
  /** The repeated symbol of a CONST block; 0 otherwise. */
  constSymbol: number;
  /** The rANS lanes of a RANS block (32 >> its lane code); 32 for the other modes, which have none. */
  lanes: number;
  count: number;
  payloadLength: number;
}

export function encodeBlockHeader(block: BlockHeader, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(BLOCK_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, BLOCK_MODES[block.mode]);
  view.setUint8(1, blockHeaderParam(block));
  view.setUint32(4, block.count, true);
  view.setUint32(8, payload.length, true);
  view.setUint32(12, blockChecksum(bytes, payload), true);
  return bytes;
}

/** Byte 1 of a block header (§9): the CONST symbol, or the lane code of a RANS block. */
export function blockHeaderParam(block: Pick<BlockHeader, "mode" | "constSymbol" | "lanes">): number {
  switch (block.mode) {
    case "CONST":
      return block.constSymbol;
    case "RANS":
      return laneCode(block.lanes);
    case "RAW":
      return 0;
  }
}

/** The fields byte 1 of a valid block header gives (§9): the CONST symbol, or a RANS block's lanes. */
export function blockParamFields(mode: BlockMode, param: number): Pick<BlockHeader, "constSymbol" | "lanes"> {
  return { constSymbol: mode === "CONST" ? param : 0, lanes: mode === "RANS" ? RANS_MAX_LANES >> param : RANS_MAX_LANES };
}

/** The payload length field, which a reader needs before it can fetch the payload. */
export function blockPayloadLength(header: Uint8Array): number {
  return new DataView(header.buffer, header.byteOffset, BLOCK_HEADER_SIZE).getUint32(8, true);
}

/** The CRC32C a block header stores (spec §9): over header bytes 0..11, then the payload. */
export function blockChecksum(header: Uint8Array, payload: Uint8Array): number {
  const { crc32c } = kernels();
  return crc32c(payload, crc32c(header.subarray(0, 12)));
}

/** The checksum check of spec §9, given the CRC32C of the block's contents (`blockChecksum`). */
export function checkBlockChecksum(header: Uint8Array, actual: number, where: string, fileOffset: number): void {
  const stored = new DataView(header.buffer, header.byteOffset, BLOCK_HEADER_SIZE).getUint32(12, true);
  if (stored !== actual) {
    throw new QansError("CHECKSUM_MISMATCH", `${where}: checksum ${hex(stored)} does not match contents ${hex(actual)} (block header at byte ${fileOffset})`);
  }
}

/**
 * The checks of spec §9 after the checksum: mode, reserved fields, count against the layout's,
 * and the payload length by mode. Mode-specific payload rules other than lengths are the decoders'
 * (RAW padding, rANS).
 */
export function checkBlockFields(
  header: Uint8Array,
  payloadLength: number,
  expectedCount: number,
  width: number,
  hasTable: boolean,
  where: string,
  fileOffset: number,
): BlockHeader {
  const view = new DataView(header.buffer, header.byteOffset, BLOCK_HEADER_SIZE);
  const modeCode = view.getUint8(0);
  const mode = BLOCK_MODE_NAMES[modeCode];
  if (mode === undefined) throw new QansError("BAD_BLOCK", `${where}: unknown block mode ${modeCode} (at byte ${fileOffset})`);
  const byte1 = view.getUint8(1);
  if ((mode === "RAW" && byte1 !== 0) || view.getUint16(2, true) !== 0) {
    throw new QansError("RESERVED_BITS", `${where}: reserved block header bytes are not zero (at byte ${fileOffset + 1})`);
  }
  if (mode === "RANS" && byte1 > RANS_MAX_LANE_CODE) {
    throw new QansError("BAD_BLOCK", `${where}: RANS lane code ${byte1} is above ${RANS_MAX_LANE_CODE} (at byte ${fileOffset + 1})`);
  }
  const count = view.getUint32(4, true);
  if (count !== expectedCount) {
    throw new QansError("BAD_BLOCK", `${where}: block holds ${count} symbols, the layout gives ${expectedCount} (at byte ${fileOffset + 4})`);
  }
  const fields: BlockHeader = { mode, ...blockParamFields(mode, byte1), count, payloadLength };
  const broken = payloadRule(fields, width, hasTable);
  if (broken) throw new QansError("BAD_BLOCK", `${where}: ${mode} payload of ${payloadLength} bytes ${broken} (at byte ${fileOffset + 8})`);
  return fields;
}

/** The payload rule of spec §9 that a block breaks, or undefined. */
function payloadRule({ mode, constSymbol, lanes, count, payloadLength }: BlockHeader, width: number, hasTable: boolean): string | undefined {
  switch (mode) {
    case "RAW":
      return payloadLength !== Math.ceil((count * width) / 8) ? `is not ceil(${count} x ${width} / 8) bytes` : undefined;
    case "CONST":
      if (payloadLength !== 0) return "is not empty";
      return constSymbol >= 2 ** width ? `repeats symbol ${constSymbol}, which is not below 2^${width}` : undefined;
    case "RANS":
      if (!hasTable) return "belongs to a stream without a frequency table";
      const states = ransStateBytes(lanes);
      if (payloadLength < states || payloadLength > states + 2 * count || payloadLength % 2 !== 0) {
        return `is not an even length from ${states} to ${states + 2 * count} (${lanes} lanes)`;
      }
      return undefined;
  }
}

/** Checks a block header against its payload and the count the layout expects, in the order of spec §9. */
export function decodeBlockHeader(
  header: Uint8Array,
  payload: Uint8Array,
  expectedCount: number,
  width: number,
  hasTable: boolean,
  where: string,
  fileOffset: number,
): BlockHeader {
  checkBlockChecksum(header, blockChecksum(header, payload), where, fileOffset);
  return checkBlockFields(header, payload.length, expectedCount, width, hasTable, where, fileOffset);
}
