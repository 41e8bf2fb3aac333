import { constants as bufferConstants } from "node:buffer";
import { QansError } from "./errors.js";
import { align64, bytesEqual, concatBytes } from "./format/bytes.js";
import { BLOCK_HEADER_SIZE, FILE_HEADER_SIZE, INDEX_FRAME_OVERHEAD, LIMITS, TAG_INDEX, TAG_TENSOR, TRAILER_SIZE } from "./format/constants.js";
import { decodeFileHeader, type FormatVersion } from "./format/file-header.js";
import { decodeIndexFrame, type FileIndex } from "./format/index-frame.js";
import { blockHeaderOffset, streamSymbolCount } from "./format/layout.js";
import { decodeMetadataFrame, metadataFrameLength, type FileMetadata } from "./format/metadata-frame.js";
import { sameDescriptor, type TensorDescriptor } from "./format/tensor-descriptor.js";
import type { TensorHeader } from "./format/tensor-header.js";
import { decodeTrailer, type IndexPlacement, type Trailer } from "./format/trailer.js";
import { ChunkForwardReader, type ChunkSource } from "./io/chunk-reader.js";
import type { ForwardReader } from "./io/forward-reader.js";
import { decodeTensorFrame, type DecodedBlock } from "./tensor/frame-decode.js";
import { reconstructTensor } from "./tensor/reconstruct.js";
import type { TensorData } from "./tensor/tensor.js";

/** What a `tensor` event carries: the decoded symbol streams, the reconstructed tensor, or both. */
export type StreamOutput = "streams" | "tensor" | "both";

export interface StreamDecodeOptions {
  /** For `tensor` events; default "streams". Ignored with `blocks`. */
  output?: StreamOutput;
  /**
   * Emit each block as it arrives (`tensor-start`, `block`…, `tensor-end`) instead of one `tensor`
   * event per tensor, so that memory holds one block rather than one tensor.
   */
  blocks?: boolean;
  /** Called with the number of input bytes consumed so far, after each tensor (or block). */
  onProgress?: (bytesRead: number) => void;
}

/** The file header and metadata frame have been read and checked. */
export interface StreamStartEvent {
  type: "start";
  version: FormatVersion;
  /** The file is a set file (flag `SET`, spec §16): it holds no tensors, its metadata lists the shards. */
  set: boolean;
  metadata: FileMetadata;
  /** Length of the metadata frame in bytes. */
  metadataLength: number;
}

/** Where a tensor frame lay, as the streaming reader measured it (the index must say the same). */
export interface StreamFramePlacement {
  frameOffset: number;
  headerLength: number;
  frameLength: number;
  /** Payload length of every block, block-major (spec §7.3). */
  payloadLengths: Uint32Array;
}

/** A whole tensor frame has been read and decoded (without `blocks`). */
export interface StreamTensorEvent extends StreamFramePlacement {
  type: "tensor";
  header: TensorHeader;
  /** One symbol buffer per stream; with output "streams" or "both". */
  streams?: Uint8Array[];
  /** The tensor in its original dtype (dequantised for int-quant); with output "tensor" or "both". */
  tensor?: TensorData;
}

/** A tensor header has been read and checked (with `blocks`); its blocks follow. */
export interface StreamTensorStartEvent {
  type: "tensor-start";
  header: TensorHeader;
  frameOffset: number;
}

/** One decoded block (with `blocks`); `block.symbols` is only valid until the next event is requested. */
export interface StreamBlockEvent {
  type: "block";
  header: TensorHeader;
  block: DecodedBlock;
  payloadLength: number;
}

/** The last block of a tensor has been decoded (with `blocks`). */
export interface StreamTensorEndEvent extends StreamFramePlacement {
  type: "tensor-end";
  header: TensorHeader;
}

/**
 * The index and trailer have been read, checked, and found to agree with every frame; nothing
 * follows the trailer. Until this event, the stream is not known to be a valid file.
 */
export interface StreamEndEvent {
  type: "end";
  version: FormatVersion;
  trailer: Trailer;
  index: FileIndex;
  fileBytes: number;
}

export type StreamEvent = StreamStartEvent | StreamTensorEvent | StreamTensorStartEvent | StreamBlockEvent | StreamTensorEndEvent | StreamEndEvent;

/** A frame as seen, kept until the index arrives: its descriptor fields only, not its header. */
interface SeenFrame extends StreamFramePlacement, TensorDescriptor {}

/**
 * Decodes a QANS file front to back from chunks of input of unknown total length (a pipe, stdin, a
 * `fetch` body), without the index or the file size: file header, metadata frame, each tensor frame
 * as it arrives, then the index and trailer, which are checked against every frame seen (spec §3,
 * §11, §12: a streaming reader reports errors in file order). Every check of the full verifier runs;
 * the input is closed when decoding ends or the caller stops early.
 *
 * Events are emitted as soon as their bytes have been read, so a consumer acts on a tensor before
 * the file is known valid: only the final `end` event says so. Memory holds one tensor (its streams
 * and, with output "tensor", its reconstruction) or, with `blocks`, one block, plus the input
 * reader's buffer (the largest structure read plus one chunk), the index, and the block lengths of
 * every frame seen, which the index repeats.
 */
export async function* decodeStream(
  input: ChunkSource | ReadableStream<Uint8Array> | ChunkForwardReader,
  options: StreamDecodeOptions = {},
): AsyncGenerator<StreamEvent, void, undefined> {
  const output = options.output ?? "streams";
  if (!["streams", "tensor", "both"].includes(output)) {
    throw new QansError("INVALID_ARGUMENT", `output must be "streams", "tensor" or "both", got ${JSON.stringify(output)}`);
  }
  const reader = input instanceof ChunkForwardReader ? input : new ChunkForwardReader(input);
  try {
    const { version, set } = decodeFileHeader(await reader.readAtMost(0, FILE_HEADER_SIZE, "file header"));
    // The prefix is copied: the next read may return a view of the same chunk, or a new buffer.
    const prefix = (await reader.read(FILE_HEADER_SIZE, 8, "metadata frame")).slice();
    const metadataLength = metadataFrameLength(prefix, FILE_HEADER_SIZE);
    const rest = await reader.read(FILE_HEADER_SIZE + 8, metadataLength - 8, "metadata frame");
    const metadata = decodeMetadataFrame(concatBytes([prefix, rest]), FILE_HEADER_SIZE, { set });
    yield { type: "start", version, set, metadata, metadataLength };

    const frames: SeenFrame[] = [];
    const names = new Set<string>();
    let position = FILE_HEADER_SIZE + metadataLength;
    for (;;) {
      const at = align64(position);
      const tag = await reader.peek(at, 4, "tensor frame or index");
      if (bytesEqual(tag, TAG_INDEX)) break;
      if (set && bytesEqual(tag, TAG_TENSOR)) throw new QansError("BAD_METADATA", `a set file (flag SET) holds no tensors, but a tensor frame follows its metadata, at ${at}`);
      // Anything but the index is read as a tensor frame, which reports a wrong tag (BAD_MAGIC).
      const frame = yield* decodeFrame(reader, at, names, output, options);
      frames.push(frame);
      position = frame.frameOffset + frame.frameLength;
    }

    const indexOffset = align64(position);
    const index = await readIndex(reader, indexOffset);
    checkIndexAgainstFrames(index, metadataLength, set, frames);
    const indexLength = reader.position - indexOffset;
    const fileBytes = reader.position + TRAILER_SIZE;
    const trailerBytes = await reader.read(reader.position, TRAILER_SIZE, "trailer");
    // The file header was read, so the file starts with the magic.
    const trailer = await decodeTrailer(trailerBytes, fileBytes, async () => true);
    if (trailer.indexOffset !== indexOffset || trailer.indexLength !== indexLength) {
      throw new QansError("INDEX_MISMATCH", `trailer: places the index at ${trailer.indexOffset} with ${trailer.indexLength} bytes, but it is at ${indexOffset} with ${indexLength}`);
    }
    if (trailer.major !== version.major || trailer.minor !== version.minor) {
      throw new QansError("INDEX_MISMATCH", `trailer version ${trailer.major}.${trailer.minor} differs from the header's ${version.major}.${version.minor}`);
    }
    if (!(await reader.atEnd())) {
      throw new QansError("TRAILING_DATA", `trailer: the file ends at ${fileBytes} bytes, but the input goes on`);
    }
    options.onProgress?.(fileBytes);
    yield { type: "end", version, trailer, index, fileBytes };
  } finally {
    await reader.close();
  }
}

/** Decodes one tensor frame at `frameOffset`, emitting its events; returns what the index must match. */
async function* decodeFrame(
  reader: ChunkForwardReader,
  frameOffset: number,
  names: Set<string>,
  output: StreamOutput,
  options: StreamDecodeOptions,
): AsyncGenerator<StreamEvent, SeenFrame, undefined> {
  const frame = frameItems(reader, frameOffset);
  let streams: Uint8Array[] = [];
  let header: TensorHeader | undefined;
  try {
    for (;;) {
      const next = await frame.next();
      if (next.done) {
        const placement = next.value;
        const { name, dtype, encoding, shape, log2Block, streamCount } = header!;
        const seen: SeenFrame = { name, dtype, encoding, shape, log2Block, streamCount, ...placement };
        if (options.blocks) {
          yield { type: "tensor-end", header: header!, ...placement };
        } else {
          const event: StreamTensorEvent = { type: "tensor", header: header!, ...placement };
          if (output !== "tensor") event.streams = streams;
          if (output !== "streams") event.tensor = reconstructTensor(header!, streams);
          streams = [];
          options.onProgress?.(reader.position);
          yield event;
        }
        return seen;
      }
      const item = next.value;
      if (item.kind === "header") {
        header = item.header;
        if (names.has(header.name)) {
          throw new QansError("DUPLICATE_NAME", `tensor "${header.name}" at ${frameOffset}: a tensor of that name came earlier`);
        }
        names.add(header.name);
        if (options.blocks) {
          yield { type: "tensor-start", header, frameOffset };
        } else {
          const symbols = streamSymbolCount(header.encoding, header.dtype, header.elements);
          streams = header.streams.map(() => allocate(symbols, header!.name));
        }
      } else if (options.blocks) {
        yield { type: "block", header: header!, block: item.block, payloadLength: item.payloadLength };
        options.onProgress?.(reader.position);
      } else {
        streams[item.block.stream].set(item.block.symbols, item.block.firstSymbol);
      }
    }
  } finally {
    // Stops the frame's decoder when the caller stops early or this frame fails.
    await frame.return(undefined as unknown as StreamFramePlacement);
  }
}

/** A tensor's symbol buffer; a size no buffer can hold is LIMIT_EXCEEDED rather than a crash. */
function allocate(length: number, name: string): Uint8Array {
  const tooLarge = () => new QansError("LIMIT_EXCEEDED", `tensor "${name}": a stream of ${length} symbols does not fit in memory; decode it block by block`);
  if (length > bufferConstants.MAX_LENGTH) throw tooLarge();
  try {
    return new Uint8Array(length);
  } catch (error) {
    if (error instanceof RangeError) throw tooLarge();
    throw error;
  }
}

type FrameItem =
  | { kind: "header"; header: TensorHeader }
  | { kind: "block"; block: DecodedBlock; payloadLength: number };

/**
 * Runs `decodeTensorFrame` (which reports blocks through synchronous callbacks) as an async
 * generator of its header and blocks, one at a time: the decoder's next read waits until the
 * consumer asks for the next item, so a block's symbols stay valid, and memory stays one block,
 * while the consumer works on it. The payload length of each block follows from the spec's
 * placement rule (§9) and the end of the last read before the block was reported.
 */
async function* frameItems(reader: ForwardReader, frameOffset: number): AsyncGenerator<FrameItem, StreamFramePlacement, undefined> {
  const queue: FrameItem[] = [];
  let handedOut = false;
  let cancelled = false;
  let release: (() => void) | undefined;
  let wake: (() => void) | undefined;
  let lastEnd = frameOffset;
  let previousEnd = frameOffset;
  let headerLength = 0;
  const payloadLengths: number[] = [];

  const gated: ForwardReader = {
    async read(offset, length, what) {
      while (handedOut) await new Promise<void>((resolve) => (release = resolve));
      if (cancelled) throw new QansError("INVALID_ARGUMENT", "decoding stopped by the caller");
      const bytes = await reader.read(offset, length, what);
      lastEnd = offset + length;
      return bytes;
    },
  };
  const hand = (item: FrameItem) => {
    queue.push(item);
    handedOut = true;
    wake?.();
  };

  let outcome: { ok: true; frameEnd: number } | { ok: false; error: unknown } | undefined;
  const run = decodeTensorFrame(gated, frameOffset, Number.MAX_SAFE_INTEGER, undefined, {
    onHeader(header) {
      headerLength = lastEnd - frameOffset;
      previousEnd = lastEnd;
      hand({ kind: "header", header });
    },
    onBlock(block) {
      const payloadLength = lastEnd - blockHeaderOffset(previousEnd) - BLOCK_HEADER_SIZE;
      previousEnd = lastEnd;
      payloadLengths.push(payloadLength);
      hand({ kind: "block", block, payloadLength });
    },
  }).then(
    ({ frameEnd }) => {
      outcome = { ok: true, frameEnd };
    },
    (error: unknown) => {
      outcome = { ok: false, error };
    },
  );
  // Whatever ends the decode wakes the loop below.
  void run.finally(() => wake?.());

  try {
    for (;;) {
      const item = queue.shift();
      if (item) {
        yield item;
        handedOut = false;
        release?.();
        continue;
      }
      if (outcome) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    if (!outcome) {
      // The consumer stopped: let the waiting decoder fail and finish.
      cancelled = true;
      handedOut = false;
      release?.();
      await run;
    }
  }
  if (!outcome.ok) throw outcome.error;
  return { frameOffset, headerLength, frameLength: outcome.frameEnd - frameOffset, payloadLengths: Uint32Array.from(payloadLengths) };
}

/**
 * Reads and checks the index frame at `indexOffset` (spec §11). The trailer comes after it, so the
 * index is checked against where it was found and the length its own header gives; the trailer is
 * then checked to agree.
 */
async function readIndex(reader: ChunkForwardReader, indexOffset: number): Promise<FileIndex> {
  const head = (await reader.read(indexOffset, 16, "index")).slice();
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const indexLength = view.getBigUint64(8, true) + BigInt(INDEX_FRAME_OVERHEAD);
  if (indexLength > BigInt(LIMITS.maxIndexBytes)) {
    // Only for an index too large to hold; otherwise decodeIndexFrame checks the reserved field.
    if ((view.getUint32(4, true) & ~1) !== 0) throw new QansError("RESERVED_BITS", `index at ${indexOffset}: reserved flag bits are set`);
    throw new QansError("LIMIT_EXCEEDED", `index at ${indexOffset}: length ${indexLength} exceeds ${LIMITS.maxIndexBytes}`);
  }
  const length = Number(indexLength);
  const rest = await reader.read(indexOffset + 16, length - 16, "index");
  const placement: IndexPlacement = { indexOffset, indexLength: length };
  return decodeIndexFrame(concatBytes([head, rest]), placement);
}

/** Spec §11: the index must describe exactly the frames that were read (INDEX_MISMATCH). */
function checkIndexAgainstFrames(index: FileIndex, metadataLength: number, set: boolean, frames: readonly SeenFrame[]): void {
  if (index.set !== set) {
    throw new QansError("INDEX_MISMATCH", `index flag SET is ${index.set ? "set" : "clear"}, the file header's is ${set ? "set" : "clear"}`);
  }
  if (index.metadataLength !== metadataLength) {
    throw new QansError("INDEX_MISMATCH", `index says the metadata frame has ${index.metadataLength} bytes, it has ${metadataLength}`);
  }
  if (index.entries.length !== frames.length) {
    throw new QansError("INDEX_MISMATCH", `index lists ${index.entries.length} tensors, the file holds ${frames.length} tensor frames`);
  }
  index.entries.forEach((entry, t) => {
    const frame = frames[t];
    const where = `index entry ${t} ("${entry.name}")`;
    if (!sameDescriptor(entry, frame)) {
      throw new QansError("INDEX_MISMATCH", `${where}: disagrees with the tensor header of "${frame.name}" at ${frame.frameOffset} (name, dtype, encoding, shape, block size or streams)`);
    }
    if (entry.frameOffset !== frame.frameOffset || entry.headerLength !== frame.headerLength || entry.frameLength !== frame.frameLength) {
      throw new QansError(
        "INDEX_MISMATCH",
        `${where}: frame at ${entry.frameOffset} of ${entry.frameLength} bytes with a ${entry.headerLength}-byte header, ` +
          `but it is at ${frame.frameOffset} of ${frame.frameLength} bytes with a ${frame.headerLength}-byte header`,
      );
    }
    const lengths = entry.payloadLengths;
    const block = lengths.length !== frame.payloadLengths.length ? 0 : lengths.findIndex((length, i) => length !== frame.payloadLengths[i]);
    if (block >= 0) {
      throw new QansError("INDEX_MISMATCH", `${where}: block ${block} payload of ${lengths[block]} bytes, the frame's has ${frame.payloadLengths[block]}`);
    }
  });
}
