import { encodeBlocksAsync, planStream, type EncodedBlock } from "../codec/block-codec.js";
import { kernels } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import { DEFAULT_LOG2_BLOCK } from "../format/constants.js";
import { blockCount, checkLog2Block, matrixShape, streamWidths } from "../format/layout.js";
import { encodeTensorHeader, type StreamDescriptor, type TensorHeader } from "../format/tensor-header.js";
import { groupCount, quantizeRtn, type QuantizeOptions, type QuantParams } from "../quant/rtn.js";
import { toFloat32 } from "./convert.js";
import { dtypeSize, isFloatPlaneDType } from "./dtype.js";
import { checkTensor, FrameAssembler, frameHeader, type EncodedFrame, type TensorEncoding } from "./frame-encode.js";
import { elementCount, isTensorReader, type TensorInput } from "./tensor.js";

/** Symbols per stream that one window holds by default: 1 Mi, a multiple of every block size up to 2^20. */
const DEFAULT_WINDOW_SYMBOLS = 1 << 20;

export interface LargeFrameOptions {
  /**
   * Symbols per stream that are split, quantised or encoded at a time: a multiple of the block
   * size; default 2^20 (or one block, if blocks are larger).
   */
  windowSymbols?: number;
}

/**
 * A tensor frame planned from a first pass over the tensor (every stream's histogram, and for
 * int-quant the scales and symbols), whose blocks a second pass encodes one window at a time.
 */
export interface WindowedFrame {
  header: TensorHeader;
  headerBytes: Uint8Array;
  /** Blocks in the frame, over all streams. */
  blocks: number;
  /** Each window's blocks, block-major, in frame order; iterate once. */
  windows(): AsyncGenerator<EncodedBlock[]>;
}

/**
 * Plans the same frame as `encodeTensorFrameAsync` (byte for byte), for a tensor that is not to
 * be copied: the symbol streams are made and encoded one window of whole blocks at a time,
 * straight from `tensor.data`, never for the whole tensor at once. `QansWriter.addTensor` writes
 * each window's blocks as they come, so the frame is never held whole either;
 * `encodeLargeTensorFrame` collects them.
 *
 * Memory, besides `tensor.data` (which must not change until the last window is taken):
 * - `raw`: one window's blocks in flight; the data is its own symbol stream.
 * - `float-planes`: one window of planes (window × element size bytes), made twice per window: for
 *   the histogram that chooses each stream's table, then to encode. The whole-tensor encoder holds
 *   the planes of the whole tensor, one more copy of it.
 * - `int-quant`: one window of binary32 values (4 bytes × window, rounded to whole rows), and the
 *   symbols of the whole tensor, one byte per element, since the tables and the scales both need
 *   every row first. The whole-tensor encoder holds binary32 values of the whole tensor: twice the
 *   size of a BF16 tensor.
 * Plus one window's encoded blocks: a constant of tens of MiB in all (int-quant: plus one byte per
 * element).
 *
 * Quantisation runs by rows (rows are independent, spec §15 step 7) with the tensor-wide choice of
 * F16 or F32 scales: slices that chose F16 are quantised again with F32 scales when another slice
 * needs them, as the whole-tensor quantiser would have decided.
 */
export async function planWindowedFrame(
  tensor: TensorInput,
  encoding: TensorEncoding,
  log2Block = DEFAULT_LOG2_BLOCK,
  options: LargeFrameOptions = {},
): Promise<WindowedFrame> {
  const where = `tensor "${tensor.name}"`;
  checkTensor(tensor);
  checkLog2Block(log2Block, where);
  const window = windowSymbols(options.windowSymbols, log2Block, where);
  const elements = elementCount(tensor.shape);
  const source = await symbolSource(tensor, encoding, elements, window);
  const widths = streamWidths(encoding.encoding, tensor.dtype, source.quant?.bits ?? 0, where);

  // Pass 1: each stream's histogram over all its symbols decides its table (spec §15 steps 2-5).
  const counts = source.counts ?? widths.map((width) => new Float64Array(2 ** width));
  if (!source.counts) {
    for (let start = 0; start < source.symbols; start += window) {
      const windowStreams = await source.streamsAt(start, Math.min(source.symbols, start + window));
      windowStreams.forEach((symbols, s) => kernels().addHistogram(counts[s], symbols));
    }
  }
  const streams: StreamDescriptor[] = counts.map((c, s) => planStream(c, widths[s], source.symbols, log2Block));
  const header = frameHeader(tensor, encoding, elements, log2Block, streams, source.quant);

  // Pass 2: the blocks, block-major as in the whole-tensor frame, one window at a time.
  async function* windows(): AsyncGenerator<EncodedBlock[]> {
    for (let start = 0; start < source.symbols; start += window) {
      yield await encodeBlocksAsync(await source.streamsAt(start, Math.min(source.symbols, start + window)), streams, log2Block);
    }
  }
  return { header, headerBytes: encodeTensorHeader(header), blocks: blockCount(source.symbols, log2Block) * streams.length, windows };
}

/** The frame of `planWindowedFrame`, held whole: the same bytes as `encodeTensorFrameAsync`. */
export async function encodeLargeTensorFrame(
  tensor: TensorInput,
  encoding: TensorEncoding,
  log2Block = DEFAULT_LOG2_BLOCK,
  options: LargeFrameOptions = {},
): Promise<EncodedFrame> {
  const plan = await planWindowedFrame(tensor, encoding, log2Block, options);
  const frame = new FrameAssembler(plan.header, plan.headerBytes, plan.blocks);
  const chunks = [plan.headerBytes];
  for await (const blocks of plan.windows()) chunks.push(...frame.place(blocks));
  return { header: plan.header, chunks, ...frame.layout() };
}

function windowSymbols(requested: number | undefined, log2Block: number, where: string): number {
  const block = 2 ** log2Block;
  if (requested === undefined) return Math.max(block, DEFAULT_WINDOW_SYMBOLS);
  if (!Number.isSafeInteger(requested) || requested <= 0 || requested % block !== 0) {
    throw new QansError("INVALID_ARGUMENT", `${where}: windowSymbols must be a positive multiple of the block size ${block}, got ${requested}`);
  }
  return requested;
}

interface SymbolSource {
  /** Symbols per stream. */
  symbols: number;
  /** Every stream's symbols from `start` to `end`, which are block boundaries. */
  streamsAt(start: number, end: number): Promise<Uint8Array[]>;
  /** Histograms, when they come cheaper than from `streamsAt`. */
  counts?: Float64Array[];
  quant?: QuantParams;
}

/** Reads the element bytes of elements `start` to `end`: a view of a tensor in memory, or a read. */
type ElementReader = (start: number, end: number) => Promise<Uint8Array>;

function elementReader(tensor: TensorInput): ElementReader {
  const size = dtypeSize(tensor.dtype);
  if (!isTensorReader(tensor)) return async (start, end) => tensor.data.subarray(start * size, end * size);
  return async (start, end) => {
    const bytes = await tensor.readBytes(start * size, (end - start) * size);
    if (!(bytes instanceof Uint8Array) || bytes.length !== (end - start) * size) {
      throw new QansError("IO_ERROR", `tensor "${tensor.name}": a read of elements ${start} to ${end} gave ${bytes?.length} bytes, not ${(end - start) * size}`);
    }
    return bytes;
  };
}

async function symbolSource(tensor: TensorInput, encoding: TensorEncoding, elements: number, window: number): Promise<SymbolSource> {
  const { dtype } = tensor;
  const read = elementReader(tensor);
  switch (encoding.encoding) {
    case "raw": {
      const symbols = elements * dtypeSize(dtype);
      // In memory, the data is its own symbol stream, whose histogram comes in one call.
      const counts = isTensorReader(tensor) ? undefined : [kernels().histogram(tensor.data, 256)];
      const size = dtypeSize(dtype);
      return { symbols, streamsAt: async (start, end) => [await readBytesOf(read, size, start, end)], counts };
    }
    case "float-planes": {
      if (!isFloatPlaneDType(dtype)) throw new QansError("BAD_DTYPE", `tensor "${tensor.name}": float-planes does not accept ${dtype}`);
      return { symbols: elements, streamsAt: async (start, end) => kernels().splitFloatPlanes(dtype, await read(start, end)) };
    }
    case "int-quant": {
      if (!isFloatPlaneDType(dtype)) throw new QansError("BAD_DTYPE", `tensor "${tensor.name}": int-quant does not accept ${dtype}`);
      const { encoding: _, ...options } = encoding;
      const { params, symbols } = await quantizeByRows(tensor, read, elements, options, window);
      return { symbols: elements, streamsAt: async (start, end) => [symbols.subarray(start, end)], counts: [kernels().histogram(symbols, 2 ** params.bits)], quant: params };
    }
    default:
      throw new QansError("BAD_ENCODING", `tensor "${tensor.name}": unknown encoding ${JSON.stringify((encoding as { encoding: unknown }).encoding)}`);
  }
}

/** Bytes `start` to `end` of a raw stream, whose symbols are bytes: read through whole elements. */
async function readBytesOf(read: ElementReader, size: number, start: number, end: number): Promise<Uint8Array> {
  const first = Math.floor(start / size);
  const bytes = await read(first, Math.ceil(end / size));
  return bytes.subarray(start - first * size, end - first * size);
}

/**
 * `quantizeRtn` over the whole tensor, computed a slice of rows at a time so that only one slice
 * is ever converted to binary32 (or read, for a tensor read on demand).
 */
async function quantizeByRows(
  tensor: TensorInput,
  read: ElementReader,
  elements: number,
  options: QuantizeOptions,
  window: number,
): Promise<{ params: QuantParams; symbols: Uint8Array }> {
  const { rows, cols } = matrixShape(tensor.shape, elements);
  const rowsPerSlice = Math.max(1, Math.floor(window / Math.max(1, cols)));
  if (rows <= rowsPerSlice) return quantizeRtn(toFloat32(tensor.dtype, await read(0, elements)), rows, cols, options);

  const groups = groupCount(cols, options.groupSize ?? 0);
  const symbols = new Uint8Array(elements);
  const deltas = new Float32Array(rows * groups);
  const zeroPoints = options.asymmetric ? new Uint8Array(rows * groups) : undefined;
  const quantizeSlice = async (first: number, sliceOptions: QuantizeOptions): Promise<QuantParams> => {
    const last = Math.min(rows, first + rowsPerSlice);
    const values = toFloat32(tensor.dtype, await read(first * cols, last * cols));
    const { params, symbols: sliceSymbols } = quantizeRtn(values, last - first, cols, sliceOptions);
    symbols.set(sliceSymbols, first * cols);
    deltas.set(params.deltas, first * groups);
    if (zeroPoints && params.zeroPoints) zeroPoints.set(params.zeroPoints, first * groups);
    return params;
  };

  let first: QuantParams | undefined;
  const withF16: number[] = [];
  let anyF32 = false;
  for (let row = 0; row < rows; row += rowsPerSlice) {
    const params = await quantizeSlice(row, options);
    first ??= params;
    if (params.scaleType === "F32") anyF32 = true;
    else withF16.push(row);
  }
  // "auto" takes F32 scales for the whole tensor as soon as one delta needs them.
  if (anyF32 && withF16.length > 0) {
    for (const row of withF16) await quantizeSlice(row, { ...options, scaleType: "F32" });
  }
  const params: QuantParams = { ...first!, scaleType: anyF32 ? "F32" : "F16", deltas };
  if (zeroPoints) params.zeroPoints = zeroPoints;
  return { params, symbols };
}
