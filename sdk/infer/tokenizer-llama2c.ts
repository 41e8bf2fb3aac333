import { QansError } from "../errors.js";
import { mergePairs } from "./bpe.js";
import type { Tokenizer } from "./tokenizer.js";

const UNK = 0;
const BOS = 1;
const EOS = 2;
/** Byte b's fallback token is b + 3: the first three tokens are <unk>, <s> and </s>. */
const BYTE_TOKEN_BASE = 3;
/** Limits checked before anything is allocated from the file's numbers. */
const MAX_TOKEN_BYTES = 1 << 16;
const MAX_VOCAB = 1 << 22;

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const UTF8 = new TextEncoder();

/**
 * The tokenizer of llama2.c's `tokenizer.bin` format (`tok512.bin`): SentencePiece-style BPE by
 * scores. Encoding puts a space before the text (SentencePiece's dummy prefix), starts from one
 * token per character (or per UTF-8 byte, `<0xNN>`, for characters not in the vocabulary), and
 * merges the highest-scoring pair first. Decoding drops the leading space of the token after BOS.
 * Text ends at BOS (llama2.c's rule: the model starts the next story with it) or at EOS.
 *
 * Pieces are kept as binary strings (one character per byte), so concatenation and lookup are
 * exact on bytes, as in the C code.
 */
export class Llama2cTokenizer implements Tokenizer {
  readonly bos = BOS;
  readonly stopTokens: ReadonlySet<number> = new Set([BOS, EOS]);
  readonly maxTokenLength: number;
  private readonly pieces: string[];
  private readonly scores: Float32Array;
  private readonly bytesOf: Uint8Array[];
  private readonly idOf = new Map<string, number>();

  constructor(pieces: string[], scores: Float32Array, maxTokenLength: number) {
    this.pieces = pieces;
    this.scores = scores;
    this.maxTokenLength = maxTokenLength;
    // The first occurrence wins, as a lookup in the file's order would find it.
    pieces.forEach((piece, id) => {
      if (!this.idOf.has(piece)) this.idOf.set(piece, id);
    });
    this.bytesOf = pieces.map((piece, id) => {
      if (id === UNK || id === BOS || id === EOS) return new Uint8Array(0);
      const byte = BYTE_PIECE.exec(piece);
      return byte ? Uint8Array.of(parseInt(byte[1], 16)) : binaryStringBytes(piece);
    });
  }

  /** Parses the file: an int32 max_token_length, then per token an f32 score, an int32 length and the bytes. */
  static parse(bytes: Uint8Array, where: string): Llama2cTokenizer {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 4) throw new QansError("TRUNCATED", `${where}: ${bytes.length} bytes, too short for the tokenizer header`);
    const maxTokenLength = view.getInt32(0, true);
    if (maxTokenLength < 1 || maxTokenLength > MAX_TOKEN_BYTES) {
      throw new QansError("BAD_INPUT", `${where}: max_token_length is ${maxTokenLength}, expected 1 to ${MAX_TOKEN_BYTES}`);
    }
    const pieces: string[] = [];
    const scores: number[] = [];
    let offset = 4;
    while (offset < bytes.length) {
      const id = pieces.length;
      if (offset + 8 > bytes.length) throw new QansError("TRUNCATED", `${where}: token ${id} at byte ${offset}: its score and length run past the end`);
      const score = view.getFloat32(offset, true);
      const length = view.getInt32(offset + 4, true);
      if (length < 1 || length > maxTokenLength) {
        throw new QansError("BAD_INPUT", `${where}: token ${id} at byte ${offset}: length ${length}, expected 1 to max_token_length ${maxTokenLength}`);
      }
      offset += 8;
      if (offset + length > bytes.length) throw new QansError("TRUNCATED", `${where}: token ${id} at byte ${offset}: ${length} bytes run past the end`);
      pieces.push(bytesToBinaryString(bytes.subarray(offset, offset + length)));
      scores.push(score);
      offset += length;
      if (pieces.length > MAX_VOCAB) throw new QansError("LIMIT_EXCEEDED", `${where}: more than ${MAX_VOCAB} tokens`);
    }
    if (pieces.length < BYTE_TOKEN_BASE + 256) {
      throw new QansError("BAD_INPUT", `${where}: ${pieces.length} tokens; a llama2.c vocabulary has <unk>, <s>, </s> and 256 byte tokens first`);
    }
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxTokenLength);
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  /** The bytes of token `id` as the file stores them, as a binary string (for tests and tools). */
  piece(id: number): string {
    return this.pieces[id];
  }

  /** The merge score of token `id`: higher merges first. */
  score(id: number): number {
    return this.scores[id];
  }

  /** The id of a piece given as a binary string, if the vocabulary has it. */
  lookup(piece: string): number | undefined {
    return this.idOf.get(piece);
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if (text.length > 0) {
      const space = this.idOf.get(" ");
      if (space !== undefined) tokens.push(space);
      for (const char of text) {
        const piece = bytesToBinaryString(UTF8.encode(char));
        const id = this.idOf.get(piece);
        if (id !== undefined) tokens.push(id);
        else for (let i = 0; i < piece.length; i++) tokens.push(piece.charCodeAt(i) + BYTE_TOKEN_BASE);
      }
    }
    const merged = mergePairs(tokens, (left, right) => {
      const id = this.idOf.get(this.pieces[left] + this.pieces[right]);
      return id === undefined ? undefined : { rank: -this.scores[id], merged: id };
    });
    return options.bos === false ? merged : [BOS, ...merged];
  }

  tokenBytes(token: number, previous: number | undefined): Uint8Array {
    const bytes = this.bytesOf[token];
    if (bytes === undefined) throw new QansError("INVALID_ARGUMENT", `token ${token} is outside the vocabulary of ${this.pieces.length}`);
    // After BOS, SentencePiece's decoder drops the dummy-prefix space.
    const atStart = previous === undefined || previous === BOS;
    return atStart && bytes[0] === 0x20 ? bytes.subarray(1) : bytes;
  }
}

function bytesToBinaryString(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += String.fromCharCode(byte);
  return out;
}

function binaryStringBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
