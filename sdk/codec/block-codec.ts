import { QansError } from "../errors.js";
import { blockParamFields, type BlockHeader } from "../format/block-header.js";
import { BLOCK_MODE_NAMES } from "../format/constants.js";
import { blockSymbolCount } from "../format/layout.js";
import type { StreamDescriptor } from "../format/tensor-header.js";
import { chooseFreqTable, tablePays } from "./freq-table.js";
import { JOB_THRESHOLDS, kernels, type EncodeJob, type EncodeJobResult, type RansBlockDecoder } from "./kernels.js";
import { RANS_MAX_LANES, ransStateBytes, referenceLanes } from "./rans.js";

export interface EncodedBlock extends BlockHeader {
  payload: Uint8Array;
}

/**
 * Decides a stream's table from the histogram of all its symbols (spec §15 steps 2-5). It takes
 * counts rather than symbols so that a large stream can be planned in a first pass and encoded
 * block by block in a second.
 */
export function planStream(counts: Float64Array, width: number, symbols: number, log2Block: number): StreamDescriptor {
  const choice = chooseFreqTable(counts, width);
  if (!choice) return { width, table: null };
  const rawBytes = sumOverBlocks(symbols, log2Block, (n) => Math.ceil((n * width) / 8));
  const stateBytes = sumOverBlocks(symbols, log2Block, (n) => ransStateBytes(referenceLanes(n)));
  return tablePays(choice.costBits2e16, stateBytes, rawBytes) ? { width, table: choice.table } : { width, table: null };
}

/** Σ over a stream's blocks of `perBlock(n)`, n the block's symbol count: full blocks, then the last. */
function sumOverBlocks(symbols: number, log2Block: number, perBlock: (n: number) => number): number {
  const size = 2 ** log2Block;
  const full = Math.floor(symbols / size);
  const rest = symbols - full * size;
  return full * perBlock(size) + (rest > 0 ? perBlock(rest) : 0);
}

/** Encodes one block with the mode and lanes spec §15 steps 4 and 6 pick. */
export function encodeBlock(symbols: Uint8Array, stream: StreamDescriptor): EncodedBlock {
  const count = symbols.length;
  if (count > 0 && isConstant(symbols)) return { mode: "CONST", constSymbol: symbols[0], lanes: RANS_MAX_LANES, count, payloadLength: 0, payload: new Uint8Array(0) };
  const { packBits, ransEncode } = kernels();
  const raw = packBits(symbols, stream.width);
  if (stream.table) {
    const lanes = referenceLanes(count);
    const rans = ransEncode(symbols, stream.table, lanes);
    if (rans.length < raw.length) return { mode: "RANS", constSymbol: 0, lanes, count, payloadLength: rans.length, payload: rans };
  }
  return { mode: "RAW", constSymbol: 0, lanes: RANS_MAX_LANES, count, payloadLength: raw.length, payload: raw };
}

function isConstant(symbols: Uint8Array): boolean {
  const first = symbols[0];
  for (let i = 1; i < symbols.length; i++) if (symbols[i] !== first) return false;
  return true;
}

/**
 * Encodes every block of a tensor's streams (each holding the same number of symbols) as
 * `encodeBlock` does, block-major: block j of stream s is at j x streams + s. Large tensors go to
 * the native thread pool when the native kernels are in use; the blocks are the same either way,
 * and so is the first error, in block order.
 */
export function encodeBlocks(symbolStreams: Uint8Array[], streams: StreamDescriptor[], log2Block: number): EncodedBlock[] {
  const jobs = kernels().blockJobs;
  if (jobs && jobSymbols(symbolStreams) >= JOB_THRESHOLDS.encode.job) return jobBlocks(jobs.encode(encodeJob(symbolStreams, streams, log2Block)), symbolStreams, log2Block);
  const size = 2 ** log2Block;
  const blocks: EncodedBlock[] = [];
  for (let start = 0; start < (symbolStreams[0]?.length ?? 0); start += size) {
    for (let s = 0; s < streams.length; s++) blocks.push(encodeBlock(symbolStreams[s].subarray(start, start + size), streams[s]));
  }
  return blocks;
}

/** As `encodeBlocks`, with a large tensor encoded off this thread. */
export async function encodeBlocksAsync(symbolStreams: Uint8Array[], streams: StreamDescriptor[], log2Block: number): Promise<EncodedBlock[]> {
  const jobs = kernels().blockJobs;
  if (!jobs || jobSymbols(symbolStreams) < JOB_THRESHOLDS.encode.async) return encodeBlocks(symbolStreams, streams, log2Block);
  return jobBlocks(await jobs.encodeAsync(encodeJob(symbolStreams, streams, log2Block)), symbolStreams, log2Block);
}

function jobSymbols(symbolStreams: Uint8Array[]): number {
  return symbolStreams.length * (symbolStreams[0]?.length ?? 0);
}

function encodeJob(symbolStreams: Uint8Array[], streams: StreamDescriptor[], log2Block: number): EncodeJob {
  return { log2Block, streams: streams.map(({ width, table }, s) => ({ symbols: symbolStreams[s], width, table })) };
}

function jobBlocks({ modes, headerParams, payloads, failures }: EncodeJobResult, symbolStreams: Uint8Array[], log2Block: number): EncodedBlock[] {
  const blocks: EncodedBlock[] = new Array(payloads.length);
  for (let i = 0; i < blocks.length; i++) {
    if (failures.has(i)) throw failures.get(i);
    const payload = payloads[i];
    const count = blockSymbolCount(symbolStreams[0].length, log2Block, Math.floor(i / symbolStreams.length));
    const mode = BLOCK_MODE_NAMES[modes[i]];
    blocks[i] = { mode, ...blockParamFields(mode, headerParams[i]), count, payloadLength: payload.length, payload };
  }
  return blocks;
}

/** Encodes a whole stream held in memory: plan, then every block. */
export function encodeStream(symbols: Uint8Array, width: number, log2Block: number): { stream: StreamDescriptor; blocks: EncodedBlock[] } {
  const stream = planStream(kernels().histogram(symbols, 2 ** width), width, symbols.length, log2Block);
  const size = 2 ** log2Block;
  const blocks: EncodedBlock[] = [];
  for (let start = 0; start < symbols.length; start += size) blocks.push(encodeBlock(symbols.subarray(start, start + size), stream));
  return { stream, blocks };
}

/** Decodes block payloads of one stream; keeps the rANS lookup built once per table. */
export class StreamDecoder {
  private rans: RansBlockDecoder | null = null;

  constructor(readonly stream: StreamDescriptor) {}

  decode(block: BlockHeader, payload: Uint8Array, out: Uint8Array, where: string): void {
    switch (block.mode) {
      case "CONST":
        out.fill(block.constSymbol, 0, block.count);
        return;
      case "RAW":
        kernels().unpackBits(payload, block.count, this.stream.width, out, where);
        return;
      case "RANS":
        if (!this.stream.table) throw new QansError("BAD_BLOCK", `${where}: RANS block in a stream without a table`);
        this.rans ??= kernels().ransDecoder(this.stream.table);
        this.rans.decode(payload, block.count, block.lanes, out, where);
        return;
    }
  }
}
