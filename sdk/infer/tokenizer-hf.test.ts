import { copyFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { codeOf, codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { STORIES_TOKENIZER_PATH } from "./stories-fixture.js";
import { decodeTokens } from "./tokenizer.js";
import { findTokenizerBeside, loadTokenizer } from "./tokenizer-file.js";
import { HfBpeTokenizer } from "./tokenizer-hf.js";
import { Llama2cTokenizer } from "./tokenizer-llama2c.js";

const SP = "\u2581";
const dir = useTempDir("qans-tokenizer-");

/** A Llama 2-style tokenizer.json: <unk>, <s>, </s>, 256 byte tokens, then pieces merged by rank. */
function sentencePieceJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const pieces = [SP, "a", "b", "c", "h", "e", "l", "o", `${SP}h`, "ll", `${SP}he`, "llo", `${SP}hello`, "w", "r", "d", "or", `${SP}w`, `${SP}wor`];
  pieces.forEach((piece, i) => (vocab[piece] = 259 + i));
  const merges = [`${SP} h`, "l l", `${SP}h e`, "ll o", `${SP}he llo`, "o r", `${SP} w`, `${SP}w or`];
  return {
    version: "1.0",
    added_tokens: [
      { id: 0, content: "<unk>", special: true },
      { id: 1, content: "<s>", special: true },
      { id: 2, content: "</s>", special: true },
    ],
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: SP }, { type: "Replace", pattern: { String: " " }, content: SP }] },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: SP }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
    },
    model: { type: "BPE", unk_token: "<unk>", byte_fallback: true, fuse_unk: true, vocab, merges },
    ...overrides,
  };
}

/** GPT-2's printable stand-ins for bytes, from its published construction. */
function gpt2ByteChars(): string[] {
  const kept: number[] = [];
  for (const [from, to] of [[0x21, 0x7e], [0xa1, 0xac], [0xae, 0xff]]) for (let b = from; b <= to; b++) kept.push(b);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCharCode(kept.includes(b) ? b : next++);
  return chars;
}

const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** A Llama 3-style byte-level tokenizer.json: token b is byte b's stand-in, then merged pieces. */
function byteLevelJson(overrides: { ignoreMerges?: boolean; preTokenizer?: unknown; withTemplate?: boolean } = {}): Record<string, unknown> {
  const chars = gpt2ByteChars();
  const vocab: Record<string, number> = {};
  chars.forEach((char, b) => (vocab[char] = b));
  const G = chars[0x20];
  const pieces = [`${G}t`, "he", `${G}the`, "in", `${G}c`, "at", `${G}cat`, "<|begin_of_text|>", "<|end_of_text|>", `${G}dog`, "'S"];
  pieces.forEach((piece, i) => (vocab[piece] = 256 + i));
  const merges = [[G, "t"], ["h", "e"], [`${G}t`, "he"], ["i", "n"], [G, "c"], ["a", "t"], [`${G}c`, "at"], ["'", "S"]];
  return {
    added_tokens: [
      { id: 263, content: "<|begin_of_text|>", special: true },
      { id: 264, content: "<|end_of_text|>", special: true },
    ],
    normalizer: null,
    pre_tokenizer: overrides.preTokenizer ?? {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor:
      overrides.withTemplate === false
        ? null
        : { type: "Sequence", processors: [{ type: "ByteLevel" }, { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }] }] },
    decoder: { type: "ByteLevel" },
    model: { type: "BPE", ignore_merges: overrides.ignoreMerges ?? true, byte_fallback: false, vocab, merges },
  };
}

const parse = (json: unknown) => HfBpeTokenizer.parse(JSON.stringify(json), "tokenizer.json");

describe("SentencePiece-style BPE (Llama 2 tokenizer.json)", () => {
  const tokenizer = parse(sentencePieceJson());

  it('encodes "hello world" by merge rank, as worked out by hand', () => {
    // "▁hello▁world" as characters; merges in rank order: "▁ h", "l l", "▁h e", "ll o", "▁he llo"
    // give "▁hello"; then "o r", "▁ w", "▁w or" give "▁wor"; "l" and "d" stay.
    expect(tokenizer.encode("hello world")).toEqual([1, 271, 277, 265, 274]);
    expect(tokenizer.bos).toBe(1);
    expect([...tokenizer.stopTokens]).toEqual([2]);
    expect(tokenizer.byteLevel).toBe(false);
  });

  it("falls back to byte tokens for characters outside the vocabulary and decodes them back", () => {
    // é is C3 A9; byte b is token 3 + b.
    expect(tokenizer.encode("h\u00e9", { bos: false })).toEqual([267, 3 + 0xc3, 3 + 0xa9]);
    for (const text of ["hello world", "h\u00e9llo w\u00f6rld", "\u2713 ok \ud83d\ude00", "  two  spaces", "a\nb"]) {
      expect(decodeTokens(tokenizer, tokenizer.encode(text))).toBe(text);
    }
  });

  it("matches added tokens in the text before anything else", () => {
    expect(tokenizer.encode("<s>hello</s>", { bos: false })).toEqual([1, 271, 2]);
  });

  it("reads the older Metaspace pre-tokenizer and decoder the same way", () => {
    const metaspace = parse(
      sentencePieceJson({
        normalizer: null,
        pre_tokenizer: { type: "Metaspace", replacement: SP, add_prefix_space: true },
        decoder: { type: "Metaspace", replacement: SP, add_prefix_space: true },
      }),
    );
    expect(metaspace.encode("hello world")).toEqual([1, 271, 277, 265, 274]);
    expect(decodeTokens(metaspace, metaspace.encode("hello world"))).toBe("hello world");
  });
});

describe("byte-level BPE (Llama 3 and GPT-2 tokenizer.json)", () => {
  const tokenizer = parse(byteLevelJson());
  const chars = gpt2ByteChars();

  it("uses GPT-2's byte stand-ins", () => {
    expect(chars[0x20]).toBe("\u0120");
    expect(chars[0x0a]).toBe("\u010a");
    expect(chars[0x41]).toBe("A");
  });

  it('encodes "the cat the dog" piece by piece, as worked out by hand', () => {
    // Split: "the", " cat", " the", " dog". "the" merges only "h e"; " cat", " the" and " dog" are
    // whole vocabulary entries, taken as they are (ignore_merges).
    expect(tokenizer.encode("the cat the dog")).toEqual([263, 0x74, 257, 262, 258, 265]);
    expect(tokenizer.bos).toBe(263);
    expect([...tokenizer.stopTokens]).toEqual([264]);
    expect(tokenizer.byteLevel).toBe(true);
  });

  it("without ignore_merges, a piece with no merge path stays in bytes", () => {
    const strict = parse(byteLevelJson({ ignoreMerges: false }));
    expect(strict.encode(" dog", { bos: false })).toEqual([0x20, 0x64, 0x6f, 0x67]);
    // " cat" has a merge path to the same token.
    expect(strict.encode(" cat", { bos: false })).toEqual([262]);
  });

  it("splits contractions case-insensitively, as the (?i:...) group of the Llama 3 pattern says", () => {
    // "'S" is its own piece, so the merge "' S" applies; "IT" stays two bytes.
    expect(tokenizer.encode("IT'S", { bos: false })).toEqual([0x49, 0x54, 266]);
  });

  it("round-trips any text through bytes, and skips special tokens when decoding", () => {
    for (const text of ["the cat", "h\u00e9llo\n\tw\u00f6rld \u2713 \ud83d\ude00", "   ", "<|end_of_text|> after"]) {
      const tokens = tokenizer.encode(text);
      expect(decodeTokens(tokenizer, tokens)).toBe(text.replace("<|end_of_text|>", ""));
    }
    expect(tokenizer.encode("<|end_of_text|>", { bos: false })).toEqual([264]);
  });

  it("reads GPT-2's form: a ByteLevel pre-tokenizer with its own split and no BOS", () => {
    const json = byteLevelJson({ preTokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true }, withTemplate: false });
    json.added_tokens = [{ id: 264, content: "<|end_of_text|>", special: true }];
    const gpt2 = parse(json);
    expect(gpt2.encode("the cat", { bos: false })).toEqual([0x74, 257, 262]);
    expect(gpt2.bos).toBeUndefined();
    expect(codeOf(() => gpt2.encode("the cat"))).toBe("INVALID_ARGUMENT");
  });
});

describe("tokenizer.json errors", () => {
  it("refuses what it does not implement, naming it, and malformed files", () => {
    const cases: [unknown, RegExp][] = [
      [{ ...sentencePieceJson(), model: { type: "WordPiece", vocab: {} } }, /model type "WordPiece" is not supported/],
      [sentencePieceJson({ normalizer: { type: "Lowercase" } }), /normalizer type "Lowercase" is not supported/],
      [sentencePieceJson({ pre_tokenizer: { type: "Whitespace" } }), /pre-tokenizer type "Whitespace" is not supported/],
      [{ ...sentencePieceJson(), model: { type: "BPE", vocab: { a: 0 }, merges: ["a b"] } }, /merge 0 "a b" names a token that is not in the vocabulary/],
      [{ ...sentencePieceJson(), model: { type: "BPE", vocab: { a: -1 }, merges: [] } }, /token id -1/],
    ];
    for (const [json, message] of cases) {
      expect(() => parse(json)).toThrow(message);
      expect(codeOf(() => parse(json))).toBe("BAD_INPUT");
    }
    expect(codeOf(() => HfBpeTokenizer.parse("{not json", "t.json"))).toBe("BAD_INPUT");
  });
});

describe("loadTokenizer and findTokenizerBeside", () => {
  it("choose the format from the file name and look beside the model in a fixed order", async () => {
    await writeFile(join(dir(), "tokenizer.json"), JSON.stringify(sentencePieceJson()));
    const model = join(dir(), "model.qans");
    expect(await findTokenizerBeside(model)).toBe(join(dir(), "tokenizer.json"));
    expect(await loadTokenizer(join(dir(), "tokenizer.json"))).toBeInstanceOf(HfBpeTokenizer);
    await copyFile(STORIES_TOKENIZER_PATH, join(dir(), "tok512.bin"));
    expect(await findTokenizerBeside(model)).toBe(join(dir(), "tok512.bin"));
    expect(await loadTokenizer(join(dir(), "tok512.bin"))).toBeInstanceOf(Llama2cTokenizer);
    expect(await findTokenizerBeside(join(dir(), "sub", "model.qans"))).toBeUndefined();
    expect(await codeOfAsync(loadTokenizer(join(dir(), "missing.json")))).toBe("IO_ERROR");
  });
});
