import { QansError } from "../errors.js";
import { mergePairs } from "./bpe.js";
import type { Tokenizer } from "./tokenizer.js";

/**
 * The BPE tokenizers of Hugging Face's `tokenizer.json`, in the two forms Llama models use:
 * - byte-level BPE (GPT-2, Llama 3): the text is split by a regular expression, each piece's UTF-8
 *   bytes are mapped to printable characters, and merged by rank;
 * - SentencePiece-style BPE (Llama 2): spaces become `▁`, one `▁` goes in front, characters are
 *   merged by rank, and characters outside the vocabulary fall back to `<0xNN>` byte tokens.
 * Added tokens (`<s>`, `<|begin_of_text|>`, ...) are matched in the text first. Parts of the format
 * these models do not use are refused with BAD_INPUT naming them, never silently ignored.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const UTF8_ENCODER = new TextEncoder();
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const METASPACE = "\u2581";
/** GPT-2's split, used by a ByteLevel pre-tokenizer with use_regex. */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Names of the tokens that end a text in the Llama and GPT families. */
const END_OF_TEXT_NAMES = ["</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>"];

/** One step of the text-to-pieces pipeline. */
type PieceStep = (pieces: string[]) => string[];

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

export class HfBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly stopTokens: ReadonlySet<number>;
  /** True for byte-level BPE, false for SentencePiece-style. */
  readonly byteLevel: boolean;
  private readonly vocab: Map<string, number>;
  private readonly merges = new Map<number, { rank: number; merged: number }>();
  private readonly added: AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedPattern: RegExp | undefined;
  private readonly normalize: (text: string) => string;
  private readonly preTokenize: PieceStep;
  private readonly ignoreMerges: boolean;
  private readonly byteFallback: boolean;
  private readonly unk: number | undefined;
  private readonly bytesOf: Uint8Array[];
  /** Characters a SentencePiece-style decoder drops from the start of the text. */
  private readonly stripAtStart: number;

  private constructor(json: JsonObject, where: string) {
    const model = object(json.model, `${where}: "model"`);
    if (model.type !== "BPE") throw new QansError("BAD_INPUT", `${where}: model type ${JSON.stringify(model.type)} is not supported; only "BPE" is`);
    for (const member of ["continuing_subword_prefix", "end_of_word_suffix"]) {
      if (model[member] !== undefined && model[member] !== null && model[member] !== "") {
        throw new QansError("BAD_INPUT", `${where}: model.${member} is not supported`);
      }
    }
    this.vocab = new Map(Object.entries(object(model.vocab, `${where}: "model.vocab"`)).map(([piece, id]) => [piece, tokenId(id, `${where}: vocab entry ${JSON.stringify(piece)}`)]));
    this.added = array(json.added_tokens ?? [], `${where}: "added_tokens"`).map((entry, i) => {
      const token = object(entry, `${where}: added_tokens[${i}]`);
      if (typeof token.content !== "string" || token.content === "") throw new QansError("BAD_INPUT", `${where}: added_tokens[${i}] has no content`);
      return { id: tokenId(token.id, `${where}: added_tokens[${i}].id`), content: token.content, special: token.special === true };
    });
    for (const token of this.added) this.addedById.set(token.id, token);
    // Longest first, so that one added token that is a prefix of another does not take its place.
    const contents = this.added.map((token) => token.content).sort((a, b) => b.length - a.length);
    this.addedPattern = contents.length > 0 ? new RegExp(contents.map(escapeRegExp).join("|"), "gu") : undefined;

    const vocabEntries = [...this.vocab.entries()];
    let size = 0;
    for (const [, id] of vocabEntries) size = Math.max(size, id + 1);
    for (const token of this.added) size = Math.max(size, token.id + 1);
    this.vocabSize = size;

    this.ignoreMerges = model.ignore_merges === true;
    this.byteFallback = model.byte_fallback === true;
    this.unk = typeof model.unk_token === "string" ? this.vocab.get(model.unk_token) : undefined;
    this.normalize = normalizer(json.normalizer ?? null, where);
    const pre = preTokenizer(json.pre_tokenizer ?? null, where);
    this.preTokenize = pre.step;
    this.byteLevel = pre.byteLevel;
    this.readMerges(array(model.merges ?? [], `${where}: "model.merges"`), where);

    this.bos = templateBos(json.post_processor ?? null, this.added) ?? this.added.find((t) => t.content === "<s>" || t.content === "<|begin_of_text|>")?.id;
    this.stopTokens = new Set(this.added.filter((t) => END_OF_TEXT_NAMES.includes(t.content)).map((t) => t.id));
    this.stripAtStart = this.byteLevel ? 0 : decoderStrip(json.decoder ?? null, where);

    const byteDecoder = this.byteLevel ? unicodeToByte() : undefined;
    this.bytesOf = new Array<Uint8Array>(size).fill(new Uint8Array(0));
    for (const [piece, id] of vocabEntries) {
      const fallback = this.byteFallback ? BYTE_PIECE.exec(piece) : null;
      if (fallback) this.bytesOf[id] = Uint8Array.of(parseInt(fallback[1], 16));
      else if (byteDecoder) this.bytesOf[id] = byteLevelBytes(piece, byteDecoder);
      else this.bytesOf[id] = UTF8_ENCODER.encode(piece.replaceAll(METASPACE, " "));
    }
    for (const token of this.added) this.bytesOf[token.id] = token.special ? new Uint8Array(0) : UTF8_ENCODER.encode(token.content);
  }

  /** Parses a tokenizer.json document; `where` names it in errors. */
  static parse(text: string, where: string): HfBpeTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new QansError("BAD_INPUT", `${where}: not JSON: ${(error as Error).message}`);
    }
    return new HfBpeTokenizer(object(json as Json, where), where);
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if (options.bos !== false) {
      if (this.bos === undefined) throw new QansError("INVALID_ARGUMENT", "this tokenizer has no BOS token; encode with { bos: false }");
      tokens.push(this.bos);
    }
    let at = 0;
    const encodeSegment = (segment: string) => {
      if (segment.length > 0) for (const piece of this.preTokenize([this.normalize(segment)])) tokens.push(...this.encodePiece(piece));
    };
    if (this.addedPattern) {
      this.addedPattern.lastIndex = 0;
      for (const match of text.matchAll(this.addedPattern)) {
        encodeSegment(text.slice(at, match.index));
        tokens.push(this.added.find((token) => token.content === match[0])!.id);
        at = match.index + match[0].length;
      }
    }
    encodeSegment(text.slice(at));
    return tokens;
  }

  tokenBytes(token: number, previous: number | undefined): Uint8Array {
    const bytes = this.bytesOf[token];
    if (bytes === undefined) throw new QansError("INVALID_ARGUMENT", `token ${token} is outside the vocabulary of ${this.vocabSize}`);
    const atStart = previous === undefined || previous === this.bos;
    let strip = 0;
    while (atStart && strip < this.stripAtStart && bytes[strip] === 0x20) strip++;
    return bytes.subarray(strip);
  }

  /** The id of a piece, from the vocabulary or the added tokens. */
  lookup(piece: string): number | undefined {
    return this.vocab.get(piece) ?? this.added.find((token) => token.content === piece)?.id;
  }

  private encodePiece(piece: string): number[] {
    const whole = this.vocab.get(piece);
    if (this.ignoreMerges && whole !== undefined) return [whole];
    const symbols: number[] = [];
    let unknownRun = false;
    for (const char of piece) {
      const id = this.vocab.get(char);
      if (id !== undefined) {
        symbols.push(id);
        unknownRun = false;
        continue;
      }
      if (this.byteFallback) {
        for (const byte of UTF8_ENCODER.encode(char)) {
          const byteId = this.vocab.get(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
          if (byteId === undefined) throw new QansError("INVALID_ARGUMENT", `the vocabulary has no byte token for byte 0x${byte.toString(16)} of ${JSON.stringify(char)}`);
          symbols.push(byteId);
        }
        continue;
      }
      if (this.unk === undefined) throw new QansError("INVALID_ARGUMENT", `${JSON.stringify(char)} is not in the vocabulary, which has no byte fallback and no unknown token`);
      // Runs of unknown characters become one unknown token, as fuse_unk does.
      if (!unknownRun) symbols.push(this.unk);
      unknownRun = true;
    }
    const size = this.vocabSize;
    return mergePairs(symbols, (left, right) => this.merges.get(left * size + right));
  }

  private readMerges(merges: Json[], where: string): void {
    merges.forEach((merge, rank) => {
      // Older files write a merge as "left right", newer ones as ["left", "right"].
      const pair = typeof merge === "string" ? merge.split(" ") : merge;
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
        throw new QansError("BAD_INPUT", `${where}: merge ${rank} is ${JSON.stringify(merge)}, not a pair of tokens`);
      }
      const left = this.vocab.get(pair[0]);
      const right = this.vocab.get(pair[1]);
      const merged = this.vocab.get(pair[0] + pair[1]);
      if (left === undefined || right === undefined || merged === undefined) {
        throw new QansError("BAD_INPUT", `${where}: merge ${rank} ${JSON.stringify(merge)} names a token that is not in the vocabulary`);
      }
      const key = left * this.vocabSize + right;
      if (!this.merges.has(key)) this.merges.set(key, { rank, merged });
    });
  }
}

function normalizer(spec: Json, where: string): (text: string) => string {
  if (spec === null) return (text) => text;
  const node = object(spec, `${where}: normalizer`);
  switch (node.type) {
    case "Sequence": {
      const steps = array(node.normalizers, `${where}: normalizer.normalizers`).map((child) => normalizer(child, where));
      return (text) => steps.reduce((value, step) => step(value), text);
    }
    case "Prepend": {
      const prefix = string(node.prepend, `${where}: Prepend normalizer`);
      return (text) => prefix + text;
    }
    case "Replace": {
      const { from, to } = replacement(node, `${where}: Replace normalizer`);
      return (text) => text.replaceAll(from, to);
    }
    case "NFC":
    case "NFKC":
    case "NFD":
    case "NFKD": {
      const form = node.type;
      return (text) => text.normalize(form);
    }
    default:
      throw new QansError("BAD_INPUT", `${where}: normalizer type ${JSON.stringify(node.type)} is not supported`);
  }
}

function preTokenizer(spec: Json, where: string): { step: PieceStep; byteLevel: boolean } {
  if (spec === null) return { step: (pieces) => pieces, byteLevel: false };
  const node = object(spec, `${where}: pre_tokenizer`);
  switch (node.type) {
    case "Sequence": {
      const children = array(node.pretokenizers, `${where}: pre_tokenizer.pretokenizers`).map((child) => preTokenizer(child, where));
      return { step: (pieces) => children.reduce((value, child) => child.step(value), pieces), byteLevel: children.some((child) => child.byteLevel) };
    }
    case "Split": {
      if (node.invert === true) throw new QansError("BAD_INPUT", `${where}: an inverted Split pre-tokenizer is not supported`);
      if (node.behavior !== "Isolated") throw new QansError("BAD_INPUT", `${where}: Split behavior ${JSON.stringify(node.behavior)} is not supported; only "Isolated" is`);
      const pattern = object(node.pattern, `${where}: Split pattern`);
      const regex = typeof pattern.Regex === "string" ? compilePattern(pattern.Regex, where) : new RegExp(escapeRegExp(string(pattern.String, `${where}: Split pattern`)), "gu");
      return { step: (pieces) => pieces.flatMap((piece) => splitIsolated(piece, regex)), byteLevel: false };
    }
    case "ByteLevel": {
      const regex = node.use_regex === false ? undefined : compilePattern(GPT2_PATTERN, where);
      const addPrefixSpace = node.add_prefix_space === true;
      const byteToChar = byteToUnicode();
      return {
        step: (pieces) =>
          pieces
            .map((piece, i) => (addPrefixSpace && i === 0 && !piece.startsWith(" ") ? ` ${piece}` : piece))
            .flatMap((piece) => (regex ? splitIsolated(piece, regex) : [piece]))
            .map((piece) => Array.from(UTF8_ENCODER.encode(piece), (byte) => byteToChar[byte]).join("")),
        byteLevel: true,
      };
    }
    case "Metaspace": {
      const mark = typeof node.replacement === "string" ? node.replacement : METASPACE;
      const scheme = metaspacePrepend(node);
      const split = node.split !== false;
      return {
        step: (pieces) =>
          pieces.flatMap((piece, i) => {
            let text = piece.replaceAll(" ", mark);
            if ((scheme === "always" || (scheme === "first" && i === 0)) && !text.startsWith(mark)) text = mark + text;
            return split ? splitBefore(text, mark) : [text];
          }),
        byteLevel: false,
      };
    }
    default:
      throw new QansError("BAD_INPUT", `${where}: pre-tokenizer type ${JSON.stringify(node.type)} is not supported`);
  }
}

/** How many leading spaces the decoder drops from the text: a Strip decoder's start, or Metaspace's prefix. */
function decoderStrip(spec: Json, where: string): number {
  if (spec === null) return 0;
  const node = object(spec, `${where}: decoder`);
  if (node.type === "Sequence") return array(node.decoders, `${where}: decoder.decoders`).reduce<number>((sum, child) => sum + decoderStrip(child, where), 0);
  if (node.type === "Strip" && node.content === " " && typeof node.start === "number") return node.start;
  if (node.type === "Metaspace") return metaspacePrepend(node) === "never" ? 0 : 1;
  return 0;
}

/** Metaspace's prefix rule: `prepend_scheme` in newer files, `add_prefix_space` in older ones. */
function metaspacePrepend(node: JsonObject): "always" | "first" | "never" {
  if (node.prepend_scheme === "always" || node.prepend_scheme === "first" || node.prepend_scheme === "never") return node.prepend_scheme;
  return node.add_prefix_space === false ? "never" : "always";
}

/** The BOS of a TemplateProcessing post-processor: its single template's leading special token. */
function templateBos(spec: Json, added: AddedToken[]): number | undefined {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) return undefined;
  if (spec.type === "Sequence" && Array.isArray(spec.processors)) {
    for (const child of spec.processors) {
      const found = templateBos(child, added);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (spec.type !== "TemplateProcessing" || !Array.isArray(spec.single)) return undefined;
  const first = spec.single[0];
  if (first === null || typeof first !== "object" || Array.isArray(first)) return undefined;
  const special = first.SpecialToken;
  if (special === null || typeof special !== "object" || Array.isArray(special) || typeof special.id !== "string") return undefined;
  return added.find((token) => token.content === special.id)?.id;
}

/**
 * A Hugging Face (Oniguruma) pattern as a JavaScript one. The one construct of the Llama 3 split
 * that JavaScript lacks, a case-insensitive group `(?i:...)` of plain alternatives, is spelled out
 * with character classes.
 */
export function compilePattern(pattern: string, where: string): RegExp {
  const spelled = pattern.replace(/\(\?i:([^()[\]\\]*)\)/g, (_, body: string) => `(?:${body.replace(/[a-z]/gi, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`)})`);
  try {
    return new RegExp(spelled, "gu");
  } catch (error) {
    throw new QansError("BAD_INPUT", `${where}: the split pattern ${JSON.stringify(pattern)} is not supported: ${(error as Error).message}`);
  }
}

/** Matches and the text between them, in order, as separate pieces. */
function splitIsolated(text: string, regex: RegExp): string[] {
  const pieces: string[] = [];
  let at = 0;
  regex.lastIndex = 0;
  for (const match of text.matchAll(regex)) {
    if (match[0] === "") continue;
    if (match.index > at) pieces.push(text.slice(at, match.index));
    pieces.push(match[0]);
    at = match.index + match[0].length;
  }
  if (at < text.length) pieces.push(text.slice(at));
  return pieces;
}

/** Splits before every occurrence of `mark`, so each piece but maybe the first starts with it. */
function splitBefore(text: string, mark: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (let i = text.indexOf(mark, 1); i >= 0; i = text.indexOf(mark, i + mark.length)) {
    pieces.push(text.slice(start, i));
    start = i;
  }
  pieces.push(text.slice(start));
  return pieces.filter((piece) => piece.length > 0);
}

/**
 * GPT-2's map from bytes to printable characters: printable Latin-1 bytes stand for themselves,
 * the others for the characters from U+0100 on, in byte order.
 */
function byteToUnicode(): string[] {
  const chars: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    chars.push(String.fromCharCode(printable ? byte : 256 + shifted++));
  }
  return chars;
}

function unicodeToByte(): Map<string, number> {
  return new Map(byteToUnicode().map((char, byte) => [char, byte]));
}

/** The bytes a byte-level piece stands for; a character outside the map stands for its own UTF-8. */
function byteLevelBytes(piece: string, decoder: Map<string, number>): Uint8Array {
  const bytes: number[] = [];
  for (const char of piece) {
    const byte = decoder.get(char);
    if (byte !== undefined) bytes.push(byte);
    else bytes.push(...UTF8_ENCODER.encode(char));
  }
  return Uint8Array.from(bytes);
}

function replacement(node: JsonObject, where: string): { from: string; to: string } {
  const pattern = object(node.pattern, `${where} pattern`);
  if (typeof pattern.String !== "string") throw new QansError("BAD_INPUT", `${where}: only string patterns are supported`);
  return { from: pattern.String, to: string(node.content, `${where} content`) };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function object(value: Json | undefined, where: string): JsonObject {
  if (value === null || value === undefined || typeof value !== "object" || Array.isArray(value)) throw new QansError("BAD_INPUT", `${where} is not a JSON object`);
  return value;
}

function array(value: Json | undefined, where: string): Json[] {
  if (!Array.isArray(value)) throw new QansError("BAD_INPUT", `${where} is not a JSON array`);
  return value;
}

function string(value: Json | undefined, where: string): string {
  if (typeof value !== "string") throw new QansError("BAD_INPUT", `${where}: expected a string`);
  return value;
}

function tokenId(value: Json | undefined, where: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value >= 2 ** 24) {
    throw new QansError("BAD_INPUT", `${where}: token id ${JSON.stringify(value)} is not an integer from 0 to 2^24 - 1`);
  }
  return value;
}
