import { QansError } from "../errors.js";
import { decodeUtf8Strict } from "../json/strict-json.js";
import { dtypeCode, dtypeFromCode, type DType } from "../tensor/dtype.js";
import type { ByteReader, ByteWriter } from "./bytes.js";
import { ENCODINGS, LIMITS, type EncodingName } from "./constants.js";
import { checkedShape, checkLog2Block } from "./layout.js";

/** The fields that the tensor header and its index entry share (spec §7.1, §11). */
export interface TensorDescriptor {
  name: string;
  dtype: DType;
  encoding: EncodingName;
  shape: number[];
  log2Block: number;
  streamCount: number;
}

const ENCODING_BY_CODE = Object.keys(ENCODINGS) as EncodingName[];

export function writeTensorDescriptor(writer: ByteWriter, descriptor: TensorDescriptor): void {
  writer.name(descriptor.name);
  writer.u8(dtypeCode(descriptor.dtype)).u8(ENCODINGS[descriptor.encoding]).u8(descriptor.shape.length).u8(descriptor.log2Block);
  for (const dim of descriptor.shape) writer.u64(dim);
  writer.u8(descriptor.streamCount).zeros(3);
}

export function readTensorDescriptor(reader: ByteReader): TensorDescriptor & { elements: number } {
  const nameLength = reader.u16("name length");
  if (nameLength === 0) reader.fail("BAD_HEADER", "tensor name is empty");
  if (nameLength > LIMITS.maxNameBytes) reader.fail("LIMIT_EXCEEDED", `tensor name of ${nameLength} bytes exceeds ${LIMITS.maxNameBytes}`);
  const name = decodeUtf8Strict(reader.bytesView(nameLength, "name"), `${reader.where}: tensor name`);
  const where = `${reader.where} of tensor "${name}"`;
  const dtype = dtypeFromCode(reader.u8("dtype"), where);
  const encodingCode = reader.u8("encoding");
  const encoding = ENCODING_BY_CODE[encodingCode];
  if (encoding === undefined) throw new QansError("BAD_ENCODING", `${where}: unknown encoding code ${encodingCode}`);
  const rank = reader.u8("rank");
  if (rank > LIMITS.maxRank) reader.fail("LIMIT_EXCEEDED", `rank ${rank} exceeds ${LIMITS.maxRank}`);
  const log2Block = reader.u8("block size");
  checkLog2Block(log2Block, where);
  const dims: bigint[] = [];
  for (let i = 0; i < rank; i++) dims.push(reader.u64("dimension"));
  const { shape, elements } = checkedShape(dims, where);
  const streamCount = reader.u8("stream count");
  const reserved = reader.bytesView(3, "reserved");
  if (reserved[0] | reserved[1] | reserved[2]) reader.fail("RESERVED_BITS", "reserved bytes after the stream count are not zero");
  return { name, dtype, encoding, shape, elements, log2Block, streamCount };
}

export function sameDescriptor(a: TensorDescriptor, b: TensorDescriptor): boolean {
  return (
    a.name === b.name &&
    a.dtype === b.dtype &&
    a.encoding === b.encoding &&
    a.log2Block === b.log2Block &&
    a.streamCount === b.streamCount &&
    a.shape.length === b.shape.length &&
    a.shape.every((dim, i) => dim === b.shape[i])
  );
}
