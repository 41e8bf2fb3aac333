/** Turns text into token ids and token ids back into the bytes of text. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** The token that starts a sequence, when the vocabulary has one. */
  readonly bos: number | undefined;
  /** Tokens that end a text: generation stops at them. */
  readonly stopTokens: ReadonlySet<number>;
  /** The tokens of `text`, after BOS when `bos` is true (the default). */
  encode(text: string, options?: { bos?: boolean }): number[];
  /**
   * The UTF-8 bytes that `token` adds to a text when it follows `previous` (undefined at the start).
   * A character can span tokens (byte fallback, byte-level BPE), so bytes, not strings.
   */
  tokenBytes(token: number, previous: number | undefined): Uint8Array;
}

/** The text of a token sequence; invalid UTF-8 becomes U+FFFD. */
export function decodeTokens(tokenizer: Tokenizer, tokens: readonly number[]): string {
  const text = new TokenTextStream(tokenizer);
  let out = "";
  for (const token of tokens) out += text.push(token);
  return out + text.end();
}

/**
 * Text as tokens arrive, for streaming output: each `push` returns the characters completed so far,
 * holding back the bytes of a character that continues in a later token.
 */
export class TokenTextStream {
  private readonly decoder = new TextDecoder("utf-8");
  private previous: number | undefined;

  constructor(private readonly tokenizer: Tokenizer) {}

  push(token: number): string {
    const bytes = this.tokenizer.tokenBytes(token, this.previous);
    this.previous = token;
    return this.decoder.decode(bytes, { stream: true });
  }

  /** Whatever is held back, flushed (an unfinished character becomes U+FFFD). */
  end(): string {
    return this.decoder.decode();
  }
}
