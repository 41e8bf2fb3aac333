import { QansError, type QansErrorCode } from "../errors.js";

/**
 * A parsed JSON value. Integers beyond ±(2^53−1) come back as `bigint` so that u64 offsets and
 * sizes keep every digit; all other numbers are `number`.
 */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject | JsonFloat;

/**
 * A number written with a fraction or an exponent (`1.0`, `1e3`), as `parseStrictJson` returns it
 * with `markFloats`, so that a reader can insist on integers written as integers. Without the
 * option such numbers are plain `number`s and this type never appears.
 */
export class JsonFloat {
  constructor(readonly value: number) {}
}

export interface StrictJsonOptions {
  /** Return numbers written with a fraction or exponent as `JsonFloat`. */
  markFloats?: boolean;
}

/** Objects have a null prototype so that keys such as `__proto__` stay plain data. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Deepest accepted nesting of arrays and objects. */
export const MAX_JSON_DEPTH = 64;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes UTF-8, rejecting malformed sequences. A byte-order mark is kept, not stripped, so a
 * following JSON parse rejects it as RFC 8259 requires of JSON texts exchanged between systems.
 */
export function decodeUtf8Strict(bytes: Uint8Array, where: string, code: QansErrorCode = "BAD_UTF8"): string {
  try {
    return UTF8.decode(bytes);
  } catch (error) {
    throw new QansError(code, `${where}: text is not valid UTF-8`, { cause: error });
  }
}

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof JsonFloat);
}

/**
 * Parses RFC 8259 JSON text strictly: no comments, trailing commas, single quotes, leading zeros,
 * non-finite numbers or trailing garbage, and no duplicate keys at any depth (parsers disagree on
 * which duplicate wins, so accepting them would let two readers see different files). Nesting is
 * capped at {@link MAX_JSON_DEPTH}. Every rejection throws QansError(`code`).
 * Iterative, so deep input cannot exhaust the call stack, and linear in the text length.
 */
export function parseStrictJson(text: string, where: string, code: QansErrorCode = "BAD_METADATA", options: StrictJsonOptions = {}): JsonValue {
  return new Parser(text, where, code, options.markFloats ?? false).parse();
}

/** Serialises a parsed value back to JSON text, writing bigints as their exact digits. */
export function stringifyJson(value: JsonValue): string {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof JsonFloat) return JSON.stringify(value.value);
  if (Array.isArray(value)) return `[${value.map(stringifyJson).join(",")}]`;
  if (isJsonObject(value)) {
    return `{${Object.keys(value)
      .map((key) => `${JSON.stringify(key)}:${stringifyJson(value[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

type Frame = { array: JsonValue[] } | { object: JsonObject; key: string };

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const MAX_INTEGER_DIGITS = 1000;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

class Parser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly where: string,
    private readonly code: QansErrorCode,
    private readonly markFloats: boolean,
  ) {}

  parse(): JsonValue {
    const stack: Frame[] = [];
    for (;;) {
      let value: JsonValue | undefined = this.openOrScalar(stack);
      if (value === undefined) continue;
      // A complete value: attach it to its container, closing as many containers as end here.
      for (;;) {
        const frame = stack[stack.length - 1];
        if (frame === undefined) {
          this.skipWhitespace();
          if (this.pos !== this.text.length) this.fail("unexpected data after the JSON value");
          return value;
        }
        if ("array" in frame) frame.array.push(value);
        else frame.object[frame.key] = value;
        this.skipWhitespace();
        const c = this.text[this.pos];
        if (c === ",") {
          this.pos++;
          if ("object" in frame) frame.key = this.memberKey(frame.object);
          break;
        }
        if (c === ("array" in frame ? "]" : "}")) {
          this.pos++;
          value = "array" in frame ? frame.array : frame.object;
          stack.pop();
          continue;
        }
        this.fail(`expected ',' or '${"array" in frame ? "]" : "}"}'`);
      }
    }
  }

  /** Parses a scalar, or opens a container and returns undefined when a member value follows. */
  private openOrScalar(stack: Frame[]): JsonValue | undefined {
    this.skipWhitespace();
    const c = this.text[this.pos];
    if (c === "[" || c === "{") {
      if (stack.length >= MAX_JSON_DEPTH) {
        this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
      }
      this.pos++;
      this.skipWhitespace();
      if (c === "[") {
        if (this.text[this.pos] === "]") {
          this.pos++;
          return [];
        }
        stack.push({ array: [] });
        return undefined;
      }
      const object = Object.create(null) as JsonObject;
      if (this.text[this.pos] === "}") {
        this.pos++;
        return object;
      }
      stack.push({ object, key: this.memberKey(object) });
      return undefined;
    }
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail(c === undefined ? "unexpected end of text" : `unexpected character ${JSON.stringify(c)}`);
  }

  /** Reads `"key" :` and rejects a key the object already has. */
  private memberKey(object: JsonObject): string {
    this.skipWhitespace();
    if (this.text[this.pos] !== '"') this.fail("expected a string key");
    const start = this.pos;
    const key = this.string();
    if (Object.prototype.hasOwnProperty.call(object, key)) {
      throw new QansError(this.code, `${this.where}: duplicate key ${JSON.stringify(key)} at character ${start}`);
    }
    this.skipWhitespace();
    if (this.text[this.pos] !== ":") this.fail("expected ':'");
    this.pos++;
    return key;
  }

  private string(): string {
    const text = this.text;
    let pos = this.pos + 1;
    let runStart = pos;
    const parts: string[] = [];
    for (;;) {
      const c = text.charCodeAt(pos);
      if (Number.isNaN(c)) this.fail("unterminated string", pos);
      if (c === 0x22) break;
      if (c < 0x20) this.fail("unescaped control character in string", pos);
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      parts.push(text.slice(runStart, pos));
      const e = text[pos + 1];
      if (e === "u") {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("bad \\u escape", pos);
        // Lone surrogates are valid JSON escapes; they are kept as UTF-16 code units.
        parts.push(String.fromCharCode(parseInt(hex, 16)));
        pos += 6;
      } else {
        const decoded = e === undefined ? undefined : ESCAPES[e];
        if (decoded === undefined) this.fail("bad escape", pos);
        parts.push(decoded);
        pos += 2;
      }
      runStart = pos;
    }
    parts.push(text.slice(runStart, pos));
    this.pos = pos + 1;
    return parts.length === 1 ? parts[0] : parts.join("");
  }

  private number(): number | bigint | JsonFloat {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) return this.fail("bad number");
    const literal = match[0];
    const next = this.text[this.pos + literal.length];
    // "01", "1.", "1e" and "1x" all stop the regex early; the following character exposes them.
    if (next !== undefined && /[0-9.eE+\-a-zA-Z]/.test(next)) this.fail("bad number");
    this.pos += literal.length;
    if (match[1] === undefined && match[2] === undefined) {
      const value = Number(literal);
      if (Number.isSafeInteger(value)) return value;
      // BigInt parsing is superlinear in the digit count, so absurd literals are refused.
      if (literal.length > MAX_INTEGER_DIGITS) {
        this.fail(`integer literal longer than ${MAX_INTEGER_DIGITS} characters`, this.pos - literal.length);
      }
      return BigInt(literal);
    }
    const value = Number(literal);
    if (!Number.isFinite(value)) this.fail("number out of the range of a double", this.pos - literal.length);
    return this.markFloats ? new JsonFloat(value) : value;
  }

  private skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  private fail(problem: string, at = this.pos): never {
    throw new QansError(this.code, `${this.where}: invalid JSON at character ${at}: ${problem}`);
  }
}
