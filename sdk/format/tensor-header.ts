import { crc32c } from "../codec/crc32c.js";
import { parseFreqTable, serializeFreqTable, TABLE_FLAGS, type FreqTable } from "../codec/freq-table.js";
import { QansError } from "../errors.js";
import { validateQuantParams } from "../quant/dequantize.js";
import { f16BitsToF32, f32ToF16Bits } from "../quant/float16.js";
import { groupCount, type QuantParams } from "../quant/rtn.js";
import { ByteReader, ByteWriter, bytesEqual } from "./bytes.js";
import { LIMITS, TAG_TENSOR } from "./constants.js";
import { checkStoredCrc } from "./checksum.js";
import { matrixShape, streamWidths } from "./layout.js";
import { readTensorDescriptor, writeTensorDescriptor, type TensorDescriptor } from "./tensor-descriptor.js";

export interface StreamDescriptor {
  width: number;
  table: FreqTable | null;
}

export interface TensorHeader extends TensorDescriptor {
  elements: number;
  streams: StreamDescriptor[];
  /** Present exactly when encoding is int-quant. */
  quant?: QuantParams;
}

const MIN_HEADER_LENGTH = 25;
const FLAG_ASYMMETRIC = 1;
const FLAG_INPUT_SCALE = 2;
const FLAG_F32_SCALES = 4;

export function encodeTensorHeader(header: TensorHeader): Uint8Array {
  const writer = new ByteWriter(256).bytes(TAG_TENSOR).u32(0);
  writeTensorDescriptor(writer, header);
  for (const stream of header.streams) {
    writer.u8(stream.width);
    if (stream.table) {
      const { flag, bytes } = serializeFreqTable(stream.table);
      writer.u8(flag).bytes(bytes);
    } else {
      writer.u8(0);
    }
  }
  if (header.quant) writeQuantParams(writer, header.quant);
  const length = writer.length + 4;
  if (length > LIMITS.maxTensorHeaderBytes) {
    throw new QansError("LIMIT_EXCEEDED", `tensor "${header.name}": header of ${length} bytes exceeds ${LIMITS.maxTensorHeaderBytes}`);
  }
  writer.patchU32(4, length);
  const body = writer.finish();
  return new ByteWriter(length).bytes(body).u32(crc32c(body)).finish();
}

function writeQuantParams(writer: ByteWriter, quant: QuantParams): void {
  const flags =
    (quant.asymmetric ? FLAG_ASYMMETRIC : 0) | (quant.inputScale ? FLAG_INPUT_SCALE : 0) | (quant.scaleType === "F32" ? FLAG_F32_SCALES : 0);
  writer.u8(quant.bits).u8(flags).u16(0).u32(quant.groupSize);
  if (quant.scaleType === "F32") for (const delta of quant.deltas) writer.f32(delta);
  else for (const delta of quant.deltas) writer.u16(f32ToF16Bits(delta));
  if (quant.zeroPoints) writer.bytes(quant.zeroPoints);
  if (quant.inputScale) for (const scale of quant.inputScale) writer.f32(scale);
}

/** Reads the tag and length H from the first 8 bytes of a tensor frame (spec §7.1). */
export function tensorHeaderLength(prefix: Uint8Array, fileOffset: number, fileSize: number): number {
  const reader = new ByteReader(prefix, "tensor header", "TRUNCATED", 0, prefix.length, fileOffset);
  if (!bytesEqual(reader.bytesView(4, "tag"), TAG_TENSOR)) reader.fail("BAD_MAGIC", "expected the QTEN tag", 0);
  const length = reader.u32("header length");
  if (length < MIN_HEADER_LENGTH) reader.fail("BAD_HEADER", `header length ${length} is below the minimum ${MIN_HEADER_LENGTH}`, 4);
  if (length > LIMITS.maxTensorHeaderBytes) reader.fail("LIMIT_EXCEEDED", `header length ${length} exceeds ${LIMITS.maxTensorHeaderBytes}`, 4);
  if (fileOffset + length > fileSize) reader.fail("TRUNCATED", `header of ${length} bytes runs past the end of the file (${fileSize} bytes)`, 4);
  return length;
}

/** Decodes a whole tensor header (exactly H bytes) in the order of spec §7.1. */
export function decodeTensorHeader(bytes: Uint8Array, fileOffset: number): TensorHeader {
  const length = bytes.length;
  checkStoredCrc(bytes, length - 4, fileOffset, "tensor header");
  // A field that runs into the checksum means a length inside the header lied: BAD_HEADER.
  const reader = new ByteReader(bytes, "tensor header", "BAD_HEADER", 8, length - 4, fileOffset);
  const descriptor = readTensorDescriptor(reader);
  const where = `tensor "${descriptor.name}"`;
  const streams: StreamDescriptor[] = [];
  const expectedWidths = descriptor.encoding === "int-quant" ? null : streamWidths(descriptor.encoding, descriptor.dtype, 0, where);
  if (descriptor.encoding === "int-quant") streamWidths("int-quant", descriptor.dtype, 0, where);
  const expectedCount = expectedWidths ? expectedWidths.length : 1;
  if (descriptor.streamCount !== expectedCount) {
    throw new QansError("BAD_HEADER", `${where}: ${descriptor.streamCount} streams, ${descriptor.encoding} of ${descriptor.dtype} has ${expectedCount}`);
  }
  for (let s = 0; s < descriptor.streamCount; s++) {
    const width = reader.u8("symbol width");
    const valid = expectedWidths ? width === expectedWidths[s] : width >= 2 && width <= 8;
    if (!valid) throw new QansError("BAD_HEADER", `${where}: stream ${s} has symbol width ${width}, which ${descriptor.encoding} does not allow`);
    const flag = reader.u8("table flag");
    if (flag > TABLE_FLAGS.runs) reader.fail("RESERVED_BITS", `stream ${s} table flag is ${flag}`);
    let table: FreqTable | null = null;
    if (flag !== 0) {
      const parsed = parseFreqTable(bytes, reader.offset, reader.end, width, flag, `${where} stream ${s}`);
      table = parsed.table;
      reader.offset = parsed.next;
    }
    streams.push({ width, table });
  }
  const header: TensorHeader = { ...descriptor, streams };
  if (descriptor.encoding === "int-quant") header.quant = readQuantParams(reader, header, where);
  if (reader.offset !== reader.end) {
    throw new QansError("BAD_HEADER", `${where}: ${reader.end - reader.offset} unexplained bytes before the header checksum (at byte ${fileOffset + reader.offset})`);
  }
  return header;
}

function readQuantParams(reader: ByteReader, header: TensorHeader, where: string): QuantParams {
  const bits = reader.u8("bits");
  if (bits !== header.streams[0].width) throw new QansError("BAD_HEADER", `${where}: ${bits} bits but the stream is ${header.streams[0].width} bits wide`);
  const flags = reader.u8("flags");
  if (flags & ~(FLAG_ASYMMETRIC | FLAG_INPUT_SCALE | FLAG_F32_SCALES)) reader.fail("RESERVED_BITS", `int-quant flags ${flags} set reserved bits`);
  if (reader.u16("reserved") !== 0) reader.fail("RESERVED_BITS", "int-quant reserved field is not zero");
  const groupSize = reader.u32("group size");
  if (groupSize > LIMITS.maxGroupSize) throw new QansError("BAD_HEADER", `${where}: group size ${groupSize} exceeds ${LIMITS.maxGroupSize}`);
  const { rows, cols } = matrixShape(header.shape, header.elements);
  const count = rows * groupCount(cols, groupSize);
  const scaleType = flags & FLAG_F32_SCALES ? "F32" : "F16";
  // bytesView checks the declared count against the header's real length before anything is allocated.
  const deltaBytes = reader.bytesView(count * (scaleType === "F32" ? 4 : 2), "deltas");
  const deltas = new Float32Array(count);
  const deltaView = new DataView(deltaBytes.buffer, deltaBytes.byteOffset, deltaBytes.byteLength);
  for (let i = 0; i < count; i++) {
    deltas[i] = scaleType === "F32" ? deltaView.getFloat32(4 * i, true) : f16BitsToF32(deltaView.getUint16(2 * i, true));
  }
  const params: QuantParams = { bits, asymmetric: (flags & FLAG_ASYMMETRIC) !== 0, groupSize, scaleType, deltas };
  if (params.asymmetric) params.zeroPoints = reader.bytesView(count, "zero points").slice();
  if (flags & FLAG_INPUT_SCALE) {
    const scaleBytes = reader.bytesView(cols * 4, "input-channel scales");
    const view = new DataView(scaleBytes.buffer, scaleBytes.byteOffset, scaleBytes.byteLength);
    params.inputScale = new Float32Array(cols);
    for (let j = 0; j < cols; j++) params.inputScale[j] = view.getFloat32(4 * j, true);
  }
  validateQuantParams(params, rows, cols, where);
  return params;
}
