import { StreamDecoder } from "../codec/block-codec.js";
import { kernels } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import { blockHeaderParam, type BlockHeader } from "../format/block-header.js";
import { BLOCK_HEADER_SIZE, BLOCK_MODES } from "../format/constants.js";
import { matrixShape, placeBlocks } from "../format/layout.js";
import type { StreamDescriptor, TensorHeader } from "../format/tensor-header.js";
import { BufferForwardReader } from "../io/forward-reader.js";
import { WEIGHT_BLOCK_FIELDS } from "../native/addon.js";
import type { QuantParams } from "../quant/rtn.js";
import type { TensorFrameBytes } from "../reader.js";
import { decodeTensorFrame } from "../tensor/frame-decode.js";
import type { LinearWeight } from "./linear.js";
import { NativeWeight, checkProduct, checkRow } from "./native-weight.js";
import { nativeQuantFields, quantParamBytes, symbolRowsProduct, type QuantMatrix } from "./symbol-rows.js";

/** One block of the matrix's stream, and where its payload lies in the frame. */
export interface CompressedBlock extends BlockHeader {
  payloadOffset: number;
}

/**
 * A matrix kept as its tensor frame exactly as the file stores it: the rANS-coded (or RAW, or
 * CONST) blocks of its int-quant symbols. A product decodes one block at a time into a small
 * scratch buffer, dequantises its rows and multiplies them, so the matrix never exists decoded as
 * a whole; its products equal the F32 and symbol holders', bit for bit. The smallest holder, and
 * the slowest: each product pays for decoding every block.
 */
export class CompressedWeight implements LinearWeight, QuantMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly params: QuantParams;
  readonly residentBytes: number;
  /** Symbols per block (the last may hold fewer). */
  readonly blockSymbols: number;
  private readonly native: NativeWeight | undefined;
  private decoder: StreamDecoder | undefined;

  private constructor(
    header: TensorHeader,
    readonly frame: Uint8Array,
    readonly blocks: readonly CompressedBlock[],
    private readonly stream: StreamDescriptor,
    private readonly where: string,
  ) {
    ({ rows: this.rows, cols: this.cols } = matrixShape(header.shape, header.elements));
    this.params = header.quant!;
    this.blockSymbols = 2 ** header.log2Block;
    this.residentBytes = frame.byteLength + quantParamBytes(this.params);
    const fields = new Float64Array(blocks.length * WEIGHT_BLOCK_FIELDS);
    blocks.forEach((block, b) => fields.set([block.payloadOffset, block.payloadLength, BLOCK_MODES[block.mode], blockHeaderParam(block), block.count], b * WEIGHT_BLOCK_FIELDS));
    this.native = NativeWeight.create(
      {
        kind: 2,
        rows: this.rows,
        cols: this.cols,
        ...nativeQuantFields(this.params),
        frame,
        log2Block: header.log2Block,
        blocks: fields,
        freqs: stream.table?.freqs ?? null,
        k: stream.table?.k ?? 0,
      },
      where,
    );
  }

  /**
   * The holder of an int-quant matrix's frame (from `ModelReader.readFrame`), checked as a reader
   * checks it (every checksum and field, every block decoded once), so that products never meet a
   * corrupt block. The frame is kept as it is, or copied when it is a view of a larger buffer, so
   * that `residentBytes` is what the holder really keeps. INVALID_ARGUMENT for another encoding.
   */
  static async fromFrame({ entry, frame, fileSize }: TensorFrameBytes, where = `tensor "${entry.name}"`): Promise<CompressedWeight> {
    if (entry.encoding !== "int-quant") {
      throw new QansError("INVALID_ARGUMENT", `${where} is stored ${entry.encoding}, not int-quant, so it cannot be held compressed`);
    }
    const own = frame.byteOffset === 0 && frame.buffer.byteLength === frame.byteLength ? frame : frame.slice();
    const placement = placeBlocks(entry.frameOffset, entry.headerLength, entry.payloadLengths);
    const blocks: CompressedBlock[] = [];
    const { header } = await decodeTensorFrame(new BufferForwardReader(own, entry.frameOffset), entry.frameOffset, fileSize, entry, {
      onBlock({ block, mode, lanes, symbols }) {
        const payloadOffset = placement.headerOffsets[block] + BLOCK_HEADER_SIZE - entry.frameOffset;
        const constSymbol = mode === "CONST" ? symbols[0] : 0;
        blocks.push({ mode, lanes, constSymbol, count: symbols.length, payloadLength: entry.payloadLengths[block], payloadOffset });
      },
    });
    return new CompressedWeight(header, own, blocks, header.streams[0], where);
  }

  matvec(x: Float32Array, out: Float32Array): void {
    this.matmul(x, 1, out);
  }

  matmul(xs: Float32Array, n: number, out: Float32Array): void {
    checkProduct(this.rows, this.cols, xs, n, out, this.where);
    if (this.native) {
      this.native.product(xs, n, out);
      return;
    }
    const { cols } = this;
    const scratch = sharedScratch(this.blockSymbols, cols);
    // Rows that cross a block boundary are assembled in scratch.row, then multiplied.
    for (let b = 0; b < this.blocks.length; b++) {
      const symbols = this.decodeBlock(b, scratch.block);
      const start = b * this.blockSymbols;
      const end = start + symbols.length;
      let i = start;
      if (i % cols !== 0) {
        const row = Math.floor(i / cols);
        const take = Math.min(end, (row + 1) * cols) - i;
        scratch.row.set(symbols.subarray(0, take), i - row * cols);
        i += take;
        if (i === (row + 1) * cols) symbolRowsProduct(this, scratch.row, 0, row, 1, xs, n, out, scratch.values);
      }
      const whole = Math.floor((end - i) / cols);
      if (whole > 0) symbolRowsProduct(this, symbols, i - start, i / cols, whole, xs, n, out, scratch.values);
      i += whole * cols;
      if (i < end) scratch.row.set(symbols.subarray(i - start), 0);
    }
  }

  /** Decodes the blocks that hold row r and dequantises it. */
  row(r: number, out: Float32Array): void {
    checkRow(this.rows, this.cols, r, out, this.where);
    const { cols, blockSymbols } = this;
    const scratch = sharedScratch(blockSymbols, cols);
    const first = r * cols;
    for (let b = Math.floor(first / blockSymbols); b * blockSymbols < first + cols; b++) {
      const symbols = this.decodeBlock(b, scratch.block);
      const start = b * blockSymbols;
      const from = Math.max(first, start);
      const to = Math.min(first + cols, start + symbols.length);
      scratch.row.set(symbols.subarray(from - start, to - start), from - first);
    }
    kernels().dequantize(this.params, scratch.row.subarray(0, cols), this.rows, cols, out.subarray(0, cols), first);
  }

  /** Block b's symbols, decoded into `into` (the returned view). */
  private decodeBlock(b: number, into: Uint8Array): Uint8Array {
    const block = this.blocks[b];
    this.decoder ??= new StreamDecoder(this.stream);
    const out = into.subarray(0, block.count);
    const payload = this.frame.subarray(block.payloadOffset, block.payloadOffset + block.payloadLength);
    this.decoder.decode(block, payload, out, `${this.where} block ${b}`);
    return out;
  }
}

interface Scratch {
  block: Uint8Array;
  row: Uint8Array;
  values: Float32Array;
}

let scratchBuffers: Scratch = { block: new Uint8Array(0), row: new Uint8Array(0), values: new Float32Array(0) };

/**
 * Buffers shared by every compressed holder's TypeScript products (JavaScript runs one at a time):
 * one block's symbols, one row's symbols and its dequantised values, grown to the largest asked for.
 */
function sharedScratch(blockSymbols: number, cols: number): Scratch {
  const current = scratchBuffers;
  if (current.block.length < blockSymbols || current.row.length < cols) {
    scratchBuffers = {
      block: current.block.length < blockSymbols ? new Uint8Array(blockSymbols) : current.block,
      row: current.row.length < cols ? new Uint8Array(cols) : current.row,
      values: current.values.length < cols ? new Float32Array(cols) : current.values,
    };
  }
  return scratchBuffers;
}
