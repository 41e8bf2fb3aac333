import { asQansError, QansError } from "../errors.js";
import type { TensorData } from "../tensor/tensor.js";
import { decodeSafetensorsHeaderLength, parseSafetensorsLayout, type SafetensorsHeader, type SafetensorsLayout } from "./safetensors.js";

export interface SafetensorsStreamOptions {
  /** Names the input in error messages; default "safetensors stream". */
  name?: string;
}

/**
 * A safetensors file read front to back: the header, parsed before any tensor data is read, and
 * the tensors, yielded once each in data-offset order as their bytes arrive. Iterating the stream
 * itself iterates `tensors`; both can be iterated only once.
 */
export interface SafetensorsStream extends AsyncIterable<TensorData> {
  readonly header: SafetensorsHeader;
  readonly tensors: AsyncGenerator<TensorData, void, undefined>;
  /**
   * Stops reading and releases the input (calls its iterator's `return`), also when `tensors` was
   * never iterated. Iterating to the end or breaking out of a loop releases it too.
   */
  close(): Promise<void>;
}

/**
 * Reads a safetensors file from a sequence of byte chunks (a pipe, `process.stdin`, an HTTP body)
 * without seeking. The 8-byte header length and the JSON header are read and validated first, by
 * the rules and with the error codes of `importSafetensors` (they share `parseSafetensorsLayout`):
 * a gap, an overlap or a first tensor not at offset 0 is OFFSET_OUT_OF_RANGE before any data is
 * read. The returned promise settles once the header is parsed.
 *
 * Each tensor's bytes are then copied into a buffer of their own and yielded; the next tensor is
 * read only when the consumer asks for it. Memory: the header (N bytes, while it is parsed), then
 * one tensor buffer plus the input chunk being consumed; the reader keeps no reference to a tensor
 * once it asks for the next one. Input that ends inside a tensor is TRUNCATED; bytes after the last
 * tensor are OFFSET_OUT_OF_RANGE, found when the consumer asks for the tensor after the last, as
 * `importSafetensors` reports them. Errors of the input itself become IO_ERROR. A tensor too large
 * for one buffer on this platform is LIMIT_EXCEEDED.
 */
export async function readSafetensorsStream(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: SafetensorsStreamOptions = {},
): Promise<SafetensorsStream> {
  const where = options.name ?? "safetensors stream";
  const input = new ChunkInput(iteratorOf(chunks, where), where);
  let header: SafetensorsHeader;
  let layout: SafetensorsLayout;
  try {
    const lengthBytes = new Uint8Array(8);
    const got = await input.fill(lengthBytes);
    if (got < 8) throw new QansError("TRUNCATED", `${where}: input ended after ${got} bytes, too short for the 8-byte header length`);
    const headerLength = decodeSafetensorsHeaderLength(lengthBytes, where);
    const json = new Uint8Array(headerLength);
    const gotJson = await input.fill(json);
    if (gotJson < headerLength) {
      throw new QansError("TRUNCATED", `${where}: header of ${headerLength} bytes at offset 8 runs past the end of the input at byte ${8 + gotJson}`);
    }
    layout = parseSafetensorsLayout(json, where);
    header = { headerLength, dataStart: 8 + headerLength, tensors: layout.tensors, metadata: layout.metadata };
  } catch (error) {
    await input.close();
    throw error;
  }
  const tensors = readTensors(input, layout, header.dataStart, where);
  return {
    header,
    tensors,
    [Symbol.asyncIterator]: () => tensors,
    async close() {
      await tensors.return();
      await input.close();
    },
  };
}

function iteratorOf(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, where: string): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
  const source = chunks as Partial<AsyncIterable<Uint8Array> & Iterable<Uint8Array>> | null;
  const asyncIterator = source?.[Symbol.asyncIterator];
  if (typeof asyncIterator === "function") return asyncIterator.call(source);
  const iterator = source?.[Symbol.iterator];
  if (typeof iterator === "function" && !(chunks instanceof Uint8Array)) return iterator.call(source);
  throw new QansError("INVALID_ARGUMENT", `${where}: input must be an iterable of Uint8Array chunks`);
}

async function* readTensors(input: ChunkInput, layout: SafetensorsLayout, dataStart: number, where: string): AsyncGenerator<TensorData, void, undefined> {
  try {
    for (let i = 0; i < layout.tensors.length; i++) {
      // A helper owns the buffer, so this frame holds no tensor while the next one is read.
      yield await readTensor(input, layout, i, dataStart, where);
    }
    if (await input.hasMore()) {
      throw new QansError(
        "OFFSET_OUT_OF_RANGE",
        `${where}: tensors end at data offset ${layout.dataLength} but the input goes on past byte ${BigInt(dataStart) + layout.dataLength}`,
      );
    }
  } finally {
    await input.close();
  }
}

async function readTensor(input: ChunkInput, layout: SafetensorsLayout, i: number, dataStart: number, where: string): Promise<TensorData> {
  const { name, dtype, shape } = layout.tensors[i];
  const begin = i === 0 ? 0n : layout.ends[i - 1];
  const end = layout.ends[i];
  const data = allocate(Number(end - begin), `${where}: tensor "${name}"`);
  const got = await input.fill(data);
  if (got < data.length) {
    throw new QansError(
      "TRUNCATED",
      `${where}: tensor "${name}" needs bytes ${BigInt(dataStart) + begin}..${BigInt(dataStart) + end} but the input ends at byte ${BigInt(dataStart) + begin + BigInt(got)}`,
    );
  }
  return { name, dtype, shape: [...shape], data };
}

function allocate(length: number, where: string): Uint8Array {
  try {
    return new Uint8Array(length);
  } catch (error) {
    if (error instanceof RangeError) throw new QansError("LIMIT_EXCEEDED", `${where}: ${length} bytes do not fit in one buffer here`, { cause: error });
    throw error;
  }
}

const EMPTY = new Uint8Array(0);

/** Pulls bytes from an iterator of chunks, holding only the current chunk. */
class ChunkInput {
  private chunk: Uint8Array = EMPTY;
  private at = 0;
  private ended = false;
  /** Bytes taken from the input so far. */
  private offset = 0;

  constructor(
    private readonly iterator: AsyncIterator<Uint8Array> | Iterator<Uint8Array>,
    private readonly where: string,
  ) {}

  /** Fills `out` from the input; returns how many bytes it got, fewer only when the input ended. */
  async fill(out: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < out.length) {
      if (this.at === this.chunk.length && !(await this.nextChunk())) break;
      const n = Math.min(out.length - filled, this.chunk.length - this.at);
      out.set(this.chunk.subarray(this.at, this.at + n), filled);
      this.at += n;
      filled += n;
      this.offset += n;
    }
    return filled;
  }

  /** Whether the input holds another byte. */
  async hasMore(): Promise<boolean> {
    return this.at < this.chunk.length || this.nextChunk();
  }

  /** Releases the input early: the iterator's `return`, whose own failure no longer matters. */
  async close(): Promise<void> {
    this.chunk = EMPTY;
    this.at = 0;
    if (this.ended) return;
    this.ended = true;
    try {
      await this.iterator.return?.();
    } catch {
      // The input is being abandoned; a failure to tidy it up changes nothing for the caller.
    }
  }

  private async nextChunk(): Promise<boolean> {
    this.chunk = EMPTY;
    this.at = 0;
    while (!this.ended) {
      let result: IteratorResult<Uint8Array>;
      try {
        result = await this.iterator.next();
      } catch (error) {
        this.ended = true;
        throw asQansError(error, `${this.where}: reading input at byte ${this.offset}`);
      }
      if (result.done) {
        this.ended = true;
        break;
      }
      if (!(result.value instanceof Uint8Array)) {
        throw new QansError("INVALID_ARGUMENT", `${this.where}: input chunk at byte ${this.offset} is a ${typeof result.value}, not a Uint8Array`);
      }
      if (result.value.length > 0) {
        this.chunk = result.value;
        return true;
      }
    }
    return false;
  }
}
