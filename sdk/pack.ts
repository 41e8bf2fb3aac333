import { QansError } from "./errors.js";
import { AtomicFileSink } from "./io/atomic-file.js";
import type { ByteSink } from "./io/sink.js";
import { encodeLargeTensorFrame } from "./tensor/windowed-frame.js";
import { QansWriter } from "./writer.js";
import { dtypeSize, isFloatPlaneDType } from "./tensor/dtype.js";
import { checkTensor, encodeTensorFrame, encodeTensorFrameAsync, type EncodedFrame, type TensorEncoding } from "./tensor/frame-encode.js";
import { elementCount, isTensorReader, type ImportedModel, type ModelMetadata, type TensorData, type TensorInput, type TensorReader } from "./tensor/tensor.js";

/** `lossless`, or `int<b>` with 2 ≤ b ≤ 8 (`int8`, `int4`, ...). */
export type PackMode = "lossless" | `int${number}`;

export interface PackOptions {
  mode?: PackMode;
  /** Group size along each row for int modes; 0 or absent means one scale per row. */
  groupSize?: number;
  asymmetric?: boolean;
  log2Block?: number;
  /** After each tensor is written: tensors done, the total (0 when not known) and its name. */
  onTensor?: (done: number, total: number, name: string) => void;
  /**
   * Where whole frames are held (a sharded pack must know a frame's length before it picks the
   * frame's shard, spec §16.3), tensors of more bytes than this are encoded by
   * `encodeLargeTensorFrame`, a window of blocks at a time, which makes no whole-tensor copy of
   * their values; default 256 MiB. The bytes written are the same either way.
   */
  largeTensorBytes?: number;
  /**
   * The encodings to try for a tensor, consulted before the mode's default; undefined leaves the
   * tensor to the mode. Compression-aware quantisation (sdk/calibrate) passes its per-tensor plan here.
   */
  encodingsFor?: (tensor: TensorData) => TensorEncoding[] | undefined;
}

export interface PackStreamOptions extends PackOptions {
  /** The number of tensors expected, given to `onTensor` as its total; by default an array's length, else 0 (unknown). */
  tensorCount?: number;
}

export interface PackResult {
  /** Bytes written: the file's size. */
  bytes: number;
  tensors: number;
  /** Tensor data bytes read. */
  inputBytes: number;
}

/** Tensors above this many bytes are encoded window by window unless `largeTensorBytes` says otherwise. */
export const DEFAULT_LARGE_TENSOR_BYTES = 256 * 1024 * 1024;

export function parsePackMode(mode: string): { bits: number | null } {
  if (mode === "lossless") return { bits: null };
  const match = /^int([2-8])$/.exec(mode);
  if (!match) throw new QansError("INVALID_ARGUMENT", `mode "${mode}" is not lossless or int2..int8`);
  return { bits: Number(match[1]) };
}

/**
 * The encodings worth trying for a tensor under a pack mode: int-quant for float matrices in int
 * modes; otherwise lossless, where float-planes usually wins but a small tensor can be cheaper raw
 * (four planes cost four block headers). Vectors (norms, biases) stay lossless: they are a sliver
 * of the bytes and the model is sensitive to them.
 */
export function candidateEncodings(tensor: TensorData, options: PackOptions): TensorEncoding[] {
  const planned = options.encodingsFor?.(tensor);
  if (planned !== undefined) return planned;
  return modeEncodings(tensor, options);
}

/** The candidates of `candidateEncodings` that the pack mode gives, which depend on dtype and shape only. */
function modeEncodings(tensor: Pick<TensorData, "dtype" | "shape">, options: PackOptions): TensorEncoding[] {
  const { bits } = parsePackMode(options.mode ?? "lossless");
  if (!isFloatPlaneDType(tensor.dtype)) return [{ encoding: "raw" }];
  if (bits !== null && tensor.shape.length >= 2) {
    return [{ encoding: "int-quant", bits, groupSize: options.groupSize ?? 0, asymmetric: options.asymmetric ?? false }];
  }
  return elementCount(tensor.shape) < SMALL_TENSOR ? [{ encoding: "float-planes" }, { encoding: "raw" }] : [{ encoding: "float-planes" }];
}

/** Below this many elements, packing tries raw as well as float-planes; above it planes always win. */
const SMALL_TENSOR = 1 << 16;

/** Encodes a tensor with each candidate encoding and keeps the smallest frame (first on ties). */
export function encodeSmallest(tensor: TensorData, options: PackOptions, log2Block: number): EncodedFrame {
  let best: EncodedFrame | undefined;
  for (const encoding of candidateEncodings(tensor, options)) {
    const frame = encodeTensorFrame(tensor, encoding, log2Block);
    if (!best || frame.frameLength < best.frameLength) best = frame;
  }
  return best!;
}

/**
 * As `encodeSmallest`, with large tensors encoded off this thread, and tensors above
 * `largeTensorBytes` by `encodeLargeTensorFrame`, which gives the same frame.
 */
export async function encodeSmallestAsync(tensor: TensorData, options: PackOptions, log2Block: number): Promise<EncodedFrame> {
  const large = tensor.data.byteLength > largeTensorBytes(options);
  let best: EncodedFrame | undefined;
  for (const encoding of candidateEncodings(tensor, options)) {
    const frame = large ? await encodeLargeTensorFrame(tensor, encoding, log2Block) : await encodeTensorFrameAsync(tensor, encoding, log2Block);
    if (!best || frame.frameLength < best.frameLength) best = frame;
  }
  return best!;
}

export function largeTensorBytes(options: PackOptions): number {
  const bytes = options.largeTensorBytes ?? DEFAULT_LARGE_TENSOR_BYTES;
  if (typeof bytes !== "number" || Number.isNaN(bytes) || bytes < 0) {
    throw new QansError("INVALID_ARGUMENT", `largeTensorBytes must be a non-negative number, got ${String(bytes)}`);
  }
  return bytes;
}

export function checkTensorData(tensor: unknown, index: number): asserts tensor is TensorData {
  const candidate = tensor as Partial<TensorData> | null;
  if (typeof candidate !== "object" || candidate === null || typeof candidate.name !== "string" || !(candidate.data instanceof Uint8Array) || !Array.isArray(candidate.shape)) {
    throw new QansError("INVALID_ARGUMENT", `pack: tensor #${index} is not a { name, dtype, shape, data } tensor`);
  }
}

function checkTensorInput(tensor: unknown, index: number): asserts tensor is TensorInput {
  if (tensor !== null && typeof tensor === "object" && !("data" in tensor) && typeof (tensor as Partial<TensorReader>).readBytes === "function") {
    const { name, shape } = tensor as Partial<TensorReader>;
    if (typeof name === "string" && Array.isArray(shape)) return;
  }
  checkTensorData(tensor, index);
}

async function readWhole(tensor: TensorReader): Promise<TensorData> {
  const { name, dtype, shape } = tensor;
  checkTensor(tensor);
  return { name, dtype, shape, data: await tensor.readBytes(0, elementCount(shape) * dtypeSize(dtype)) };
}

/**
 * Packs tensors as they arrive, from an array or from an (async) iterable such as
 * `readSafetensorsStream`: each is encoded as `packModel` encodes it (the same candidate
 * encodings, the smallest frame kept) and written before the next is asked for, so two ways of
 * packing the same tensors give the same bytes. The metadata frame is written first, the index
 * and trailer after the last tensor; the sink gets its bytes strictly in order, so a pipe works.
 *
 * Memory: the tensor being encoded, which the iterable supplies (holding the others is up to it),
 * plus a constant of tens of MiB: a tensor with one candidate encoding (every tensor of more than
 * 2^16 elements) is written by `QansWriter.addTensor` a window of blocks at a time, its frame never
 * held whole (int-quant: plus one byte per element for its symbols). Only small tensors, whose
 * candidates are compared as whole frames, are encoded in full first. Nothing is kept per tensor but
 * its index entry. The caller commits or ends the sink afterwards.
 */
export async function packStream(
  tensors: AsyncIterable<TensorInput> | Iterable<TensorInput>,
  metadata: ModelMetadata,
  sink: ByteSink,
  options: PackStreamOptions = {},
): Promise<PackResult> {
  largeTensorBytes(options);
  const total = options.tensorCount ?? (Array.isArray(tensors) ? tensors.length : 0);
  const writer = new QansWriter(sink, { log2Block: options.log2Block });
  await writer.begin({ metadata: metadata.metadata, architecture: metadata.architecture });
  let inputBytes = 0;
  for await (const input of tensors) {
    checkTensorInput(input, writer.tensorCount);
    // A tensor read on demand stays unread when it has one candidate encoding from the mode;
    // otherwise it is read whole, to compare candidates or to give encodingsFor its values.
    const tensor = isTensorReader(input) && (options.encodingsFor || modeEncodings(input, options).length > 1) ? await readWhole(input) : input;
    const candidates = isTensorReader(tensor) ? modeEncodings(tensor, options) : candidateEncodings(tensor, options);
    // One candidate needs no comparison of whole frames, so it streams out window by window.
    if (candidates.length === 1) await writer.addTensor(tensor, candidates[0]);
    else await writer.addFrame(await encodeSmallestAsync(tensor as TensorData, options, writer.log2Block));
    inputBytes += elementCount(tensor.shape) * dtypeSize(tensor.dtype);
    options.onTensor?.(writer.tensorCount, total, tensor.name);
  }
  const { bytes, tensors: count } = await writer.finish();
  return { bytes, tensors: count, inputBytes };
}

/** Packs a whole model held in memory: `packStream` over its tensors. */
export async function packModel(model: ImportedModel, sink: ByteSink, options: PackOptions = {}): Promise<PackResult> {
  return packStream(model.tensors, model, sink, { ...options, tensorCount: model.tensors.length });
}

/**
 * As `packStream`, to a file written atomically: the destination is either the old file or the
 * complete new one, also when the tensors' source fails midway.
 */
export async function packStreamToFile(
  tensors: AsyncIterable<TensorInput> | Iterable<TensorInput>,
  metadata: ModelMetadata,
  path: string,
  options: PackStreamOptions = {},
): Promise<PackResult> {
  const sink = await AtomicFileSink.create(path);
  try {
    const result = await packStream(tensors, metadata, sink, options);
    await sink.commit();
    return result;
  } catch (error) {
    await sink.abort();
    throw error;
  }
}

/** Packs to a file atomically: the destination is either the old file or the complete new one. */
export async function packToFile(model: ImportedModel, path: string, options: PackOptions = {}): Promise<PackResult> {
  return packStreamToFile(model.tensors, model, path, { ...options, tensorCount: model.tensors.length });
}
