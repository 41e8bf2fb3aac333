import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeOf } from "../testing/outcome.js";
import { mergePairs, type PairLookup } from "./bpe.js";
import { STORIES_TOKENIZER_PATH } from "./stories-fixture.js";
import { decodeTokens } from "./tokenizer.js";
import { Llama2cTokenizer } from "./tokenizer-llama2c.js";

const FILE = readFileSync(STORIES_TOKENIZER_PATH);
const tokenizer = Llama2cTokenizer.parse(FILE, STORIES_TOKENIZER_PATH);

describe("tok512.bin", () => {
  it("has 512 tokens: <unk>, BOS, EOS, then the 256 byte tokens", () => {
    expect(tokenizer.vocabSize).toBe(512);
    expect(tokenizer.maxTokenLength).toBe(7);
    expect(tokenizer.piece(0)).toBe("<unk>");
    expect(tokenizer.piece(1)).toBe("\n<s>\n");
    expect(tokenizer.piece(2)).toBe("\n</s>\n");
    expect(tokenizer.piece(3)).toBe("<0x00>");
    expect(tokenizer.piece(258)).toBe("<0xFF>");
    expect(tokenizer.bos).toBe(1);
    expect([...tokenizer.stopTokens].sort()).toEqual([1, 2]);
  });

  it('encodes "Zoo" as BOS, " ", "Z", "oo", as the vocabulary dictates', () => {
    // By hand: the text becomes " Zoo" (dummy prefix) and starts as the characters " ", "Z", "o",
    // "o". Of the adjacent pairs only "oo" is a token; after merging it, neither " Z" nor "Zoo" is.
    const id = (piece: string) => tokenizer.lookup(piece);
    expect([id(" "), id("Z"), id("o"), id("oo")]).toEqual([410, 469, 414, 347]);
    for (const absent of [" Z", "Zo", "Zoo", " Zo", " Zoo"]) expect(id(absent)).toBeUndefined();
    expect(tokenizer.encode("Zoo")).toEqual([1, 410, 469, 347]);
    expect(tokenizer.encode("Zoo", { bos: false })).toEqual([410, 469, 347]);
  });

  it("encodes as llama2.c's run.c does", () => {
    // Token ids printed by llama2.c's run.c for each prompt (BOS added here, as run.c starts from it).
    const cases: [string, number[]][] = [
      ["Once upon a time", [403, 407, 261, 378]],
      ["Tom had a dog", [274, 287, 381, 261, 400, 428]],
      ["Hello, world! 123", [346, 306, 414, 432, 263, 304, 341, 443, 410, 475, 479, 472]],
      ["h\u00e9llo w\u00f6rld \u2713", [270, 485, 306, 414, 263, 198, 185, 420, 341, 410, 229, 159, 150]],
      ["  two  spaces", [410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419]],
    ];
    for (const [text, ids] of cases) expect(tokenizer.encode(text), text).toEqual([1, ...ids]);
  });

  it("falls back to UTF-8 byte tokens (byte + 3) for characters outside the vocabulary", () => {
    // U+2713 is E2 9C 93 in UTF-8.
    expect(tokenizer.lookup("\u00e2\u009c\u0093")).toBeUndefined();
    expect(tokenizer.encode("\u2713", { bos: false }).slice(1)).toEqual([0xe2 + 3, 0x9c + 3, 0x93 + 3]);
  });

  it("decodes what it encodes, dropping the dummy-prefix space after BOS", () => {
    for (const text of ["Zoo", "Once upon a time, Lily said: \"hi!\"", "h\u00e9llo w\u00f6rld \u2713 \ud83d\ude00", "a\nb\tc", "x"]) {
      expect(decodeTokens(tokenizer, tokenizer.encode(text))).toBe(text);
    }
    // Without BOS the text starts with the dummy prefix's token, and that leading space goes too.
    expect(decodeTokens(tokenizer, tokenizer.encode("Zoo", { bos: false }))).toBe("Zoo");
    // Mid-text, a leading space is the text's.
    expect(decodeTokens(tokenizer, [1, 469, 410, 469])).toBe("Z Z");
    expect(tokenizer.encode("")).toEqual([1]);
    expect(codeOf(() => tokenizer.tokenBytes(512, undefined))).toBe("INVALID_ARGUMENT");
  });

  it("rejects truncated and malformed files", () => {
    expect(codeOf(() => Llama2cTokenizer.parse(FILE.subarray(0, 2), "t"))).toBe("TRUNCATED");
    expect(codeOf(() => Llama2cTokenizer.parse(FILE.subarray(0, FILE.length - 1), "t"))).toBe("TRUNCATED");
    expect(codeOf(() => Llama2cTokenizer.parse(FILE.subarray(0, 4 + 8 * 10), "t"))).toBe("TRUNCATED");
    // Ten whole records: too few for the <unk>, <s>, </s> and 256 byte tokens a llama2.c vocabulary starts with.
    let end = 4;
    for (let i = 0; i < 10; i++) end += 8 + FILE.readInt32LE(end + 4);
    expect(codeOf(() => Llama2cTokenizer.parse(FILE.subarray(0, end), "t"))).toBe("BAD_INPUT");
    const badLength = Uint8Array.from(FILE);
    new DataView(badLength.buffer).setInt32(8, 100, true);
    expect(codeOf(() => Llama2cTokenizer.parse(badLength, "t"))).toBe("BAD_INPUT");
    const badMax = Uint8Array.from(FILE);
    new DataView(badMax.buffer).setInt32(0, -1, true);
    expect(codeOf(() => Llama2cTokenizer.parse(badMax, "t"))).toBe("BAD_INPUT");
  });
});

describe("mergePairs", () => {
  /** The merge loop as llama2.c writes it: rescan all pairs, merge the best, leftmost on ties. */
  function mergeByRescan(tokens: number[], lookup: PairLookup): number[] {
    const out = [...tokens];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      let merged = -1;
      for (let i = 0; i + 1 < out.length; i++) {
        const merge = lookup(out[i], out[i + 1]);
        if (merge && merge.rank < bestRank) {
          best = i;
          bestRank = merge.rank;
          merged = merge.merged;
        }
      }
      if (best < 0) return out;
      out.splice(best, 2, merged);
    }
  }

  it("agrees with the rescanning loop on random sequences and random merge tables, ties included", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 40 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 3 })), { maxLength: 30 }),
        (tokens, table) => {
          const merges = new Map<string, { rank: number; merged: number }>();
          for (const [a, b, merged, rank] of table) if (!merges.has(`${a},${b}`)) merges.set(`${a},${b}`, { rank, merged });
          const lookup: PairLookup = (a, b) => merges.get(`${a},${b}`);
          expect(mergePairs(tokens, lookup)).toEqual(mergeByRescan(tokens, lookup));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("encodes a long text as the rescanning loop does", () => {
    const text = "The little dog ran to the park and played with a big red ball. ".repeat(20);
    const characters = [" ", ...text].map((char) => tokenizer.lookup(char)!);
    const lookup: PairLookup = (a, b) => {
      const merged = tokenizer.lookup(tokenizer.piece(a) + tokenizer.piece(b));
      return merged === undefined ? undefined : { rank: -tokenizer.score(merged), merged };
    };
    const tokens = tokenizer.encode(text, { bos: false });
    expect(tokens).toEqual(mergeByRescan(characters, lookup));
    expect(tokens.length).toBeLessThan(text.length / 2);
    expect(decodeTokens(tokenizer, tokens)).toBe(text);
  });
});
