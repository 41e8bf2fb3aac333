import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { codeOf } from "../testing/outcome.js";
import { decodeUtf8Strict, MAX_JSON_DEPTH, parseStrictJson, stringifyJson, type JsonValue } from "./strict-json.js";

/** Bigints become numbers so that results can be compared with JSON.parse. */
function toPlain(value: JsonValue): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  return value;
}

describe("parseStrictJson", () => {
  it("agrees with JSON.parse on valid documents", () => {
    const docs = [
      '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
      ' [ 1 , -2.5e3 , 0.125 , -0 , 1E2 , 3e-2 ] ',
      '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00"',
      "\t\r\n{}\n",
      "[]",
      "[[[[]]]]",
      '{"":""}',
      "12345678901234",
      '"naïve ☃ 😀"',
    ];
    for (const doc of docs) expect(toPlain(parseStrictJson(doc, "doc"))).toEqual(JSON.parse(doc));
  });

  it("agrees with JSON.parse on generated documents", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(toPlain(parseStrictJson(text, "gen"))).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it("returns integers beyond 2^53-1 as exact bigints and others as numbers", () => {
    expect(parseStrictJson("9007199254740991", "n")).toBe(9007199254740991);
    expect(parseStrictJson("-9007199254740991", "n")).toBe(-9007199254740991);
    expect(parseStrictJson("9007199254740992", "n")).toBe(9007199254740992n);
    expect(parseStrictJson("9007199254740993", "n")).toBe(9007199254740993n);
    expect(parseStrictJson("-9007199254740993", "n")).toBe(-9007199254740993n);
    expect(parseStrictJson("[18446744073709551615]", "n")).toEqual([18446744073709551615n]);
    // Fractions and exponents are doubles whatever their size.
    expect(parseStrictJson("9007199254740993.0", "n")).toBe(9007199254740992);
    expect(parseStrictJson("1e300", "n")).toBe(1e300);
  });

  it("keeps __proto__ and other special keys as plain data", () => {
    const value = parseStrictJson('{"__proto__":{"polluted":1},"constructor":2}', "p") as Record<string, JsonValue>;
    expect(Object.keys(value)).toEqual(["__proto__", "constructor"]);
    expect(value.constructor).toBe(2);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(value, "__proto__")).toBe(true);
  });

  it("accepts lone surrogates in \\u escapes", () => {
    const value = parseStrictJson('"\\ud800x\\uDFFF"', "s") as string;
    expect([...value].map((c) => c.charCodeAt(0))).toEqual([0xd800, 0x78, 0xdfff]);
  });

  it("rejects duplicate keys at any depth with the caller's code", () => {
    expect(codeOf(() => parseStrictJson('{"a":1,"a":2}', "d"))).toBe("BAD_METADATA");
    expect(codeOf(() => parseStrictJson('{"a":1,"b":2,"a":1}', "d", "BAD_INPUT"))).toBe("BAD_INPUT");
    expect(codeOf(() => parseStrictJson('[{"x":{"k":1,"k":1}}]', "d", "BAD_INPUT"))).toBe("BAD_INPUT");
    // Escapes decode before comparison, so "\u0061" duplicates "a".
    expect(codeOf(() => parseStrictJson('{"a":1,"\\u0061":2}', "d"))).toBe("BAD_METADATA");
    expect(() => parseStrictJson('{"a":1,"a":2}', "meta.json")).toThrow(/meta\.json.*duplicate key "a"/);
    // The same key in sibling objects is fine.
    expect(parseStrictJson('[{"a":1},{"a":2}]', "d")).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it("rejects everything outside RFC 8259", () => {
    const bad = [
      "",
      "   ",
      "{} x",
      "[1] [2]",
      "{}}",
      "[1,]",
      '{"a":1,}',
      "[,1]",
      "{'a':1}",
      "'a'",
      '{"a" 1}',
      '{a:1}',
      '{1:1}',
      "[1 2]",
      "// c\n1",
      "/* c */ 1",
      "[1] // c",
      "01",
      "-01",
      "00",
      "1.",
      ".5",
      "+1",
      "1e",
      "1e+",
      "-",
      "0x10",
      "1.5.2",
      "NaN",
      "Infinity",
      "-Infinity",
      "1e400",
      "tru",
      "nul",
      "True",
      '"abc',
      '"a\u0001b"',
      '"tab\there"',
      '"\\x41"',
      '"\\u12G4"',
      '"\\u12"',
      '"\\',
      "[1",
      '{"a":1',
      '{"a"',
      "\ufeff{}",
      "\u00a0{}",
      "1".repeat(1001),
    ];
    for (const text of bad) expect([text, codeOf(() => parseStrictJson(text, "bad", "BAD_INPUT"))]).toEqual([text, "BAD_INPUT"]);
  });

  it("names the source and position in its messages", () => {
    expect(() => parseStrictJson("[1,]", "header of x.safetensors")).toThrow(/header of x\.safetensors: invalid JSON at character 3/);
  });

  it("caps nesting at 64 levels without using the call stack", () => {
    const nest = (n: number) => "[".repeat(n) + "]".repeat(n);
    expect(codeOf(() => parseStrictJson(nest(MAX_JSON_DEPTH), "deep"))).toBe("no error");
    expect(codeOf(() => parseStrictJson(nest(MAX_JSON_DEPTH + 1), "deep"))).toBe("BAD_METADATA");
    expect(codeOf(() => parseStrictJson('{"a":'.repeat(MAX_JSON_DEPTH + 1) + "1" + "}".repeat(MAX_JSON_DEPTH + 1), "deep"))).toBe("BAD_METADATA");
    expect(codeOf(() => parseStrictJson("[".repeat(1_000_000), "deep", "BAD_INPUT"))).toBe("BAD_INPUT");
  });

  it("parses large inputs in one pass", () => {
    const count = 200_000;
    const big = `[${Array.from({ length: count }, (_, i) => `{"k${i}":"${"\\n".repeat(i % 5)}v"}`).join(",")}]`;
    const value = parseStrictJson(big, "big") as JsonValue[];
    expect(value.length).toBe(count);
    expect(value[count - 1]).toEqual({ [`k${count - 1}`]: "\n\n\n\nv" });
    const wide = `{${Array.from({ length: count }, (_, i) => `"${i}":${i}`).join(",")}}`;
    expect(Object.keys(parseStrictJson(wide, "wide") as object).length).toBe(count);
  });
});

describe("stringifyJson", () => {
  it("round-trips parsed values including bigints", () => {
    const text = '{"a":[1,-2.5,18446744073709551615,"x\\"y",null,true],"b":{"c":{}}}';
    expect(stringifyJson(parseStrictJson(text, "s"))).toBe(text);
  });
});

describe("decodeUtf8Strict", () => {
  it("decodes valid UTF-8 and keeps a byte-order mark", () => {
    expect(decodeUtf8Strict(new TextEncoder().encode("héllo ☃ 😀"), "t")).toBe("héllo ☃ 😀");
    expect(decodeUtf8Strict(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]), "t")).toBe("\ufeffA");
  });

  it("rejects malformed sequences with BAD_UTF8 or the caller's code", () => {
    const bad = [
      [0xff],
      [0x41, 0x80],
      [0xc0, 0x80], // overlong NUL
      [0xe2, 0x82], // cut short
      [0xed, 0xa0, 0x80], // encoded surrogate
      [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    ];
    for (const bytes of bad) {
      expect(codeOf(() => decodeUtf8Strict(new Uint8Array(bytes), "t"))).toBe("BAD_UTF8");
      expect(codeOf(() => decodeUtf8Strict(new Uint8Array(bytes), "t", "BAD_INPUT"))).toBe("BAD_INPUT");
    }
    expect(() => decodeUtf8Strict(new Uint8Array([0xff]), "header of m.safetensors")).toThrow(/header of m\.safetensors/);
  });
});
