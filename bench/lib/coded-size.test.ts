import { describe, expect, it } from "vitest";
import { encodeStream, makeFreqTable, StreamDecoder } from "../../sdk/index.js";
import { codedStreamBytes, freqTableBytes } from "./coded-size.js";

describe("freqTableBytes", () => {
  it("counts k, the bitmap and one varint per present symbol", () => {
    // Width 4: 2 bitmap bytes. Frequencies 1000 and 24 sum to 2^10; 1000 takes two varint bytes.
    const freqs = new Array<number>(16).fill(0);
    freqs[3] = 1000;
    freqs[9] = 24;
    expect(freqTableBytes(makeFreqTable(10, 4, freqs))).toBe(1 + 2 + 2 + 1);
  });
});

describe("codedStreamBytes", () => {
  it("adds descriptor, table, block headers and payloads", () => {
    const symbols = new Uint8Array(10_000);
    for (let i = 0; i < symbols.length; i++) symbols[i] = i % 7 === 0 ? 3 : i % 3 === 0 ? 1 : 0;
    const encoded = encodeStream(symbols, 2, 12);
    const payloads = encoded.blocks.reduce((total, block) => total + block.payload.length, 0);
    const table = encoded.stream.table ? freqTableBytes(encoded.stream.table) : 0;
    expect(encoded.blocks.length).toBe(3);
    expect(codedStreamBytes(encoded)).toBe(2 + table + 16 * 3 + payloads);

    // The sizes describe a stream that really decodes back.
    const decoder = new StreamDecoder(encoded.stream);
    const out = new Uint8Array(symbols.length);
    let offset = 0;
    for (const block of encoded.blocks) {
      decoder.decode(block, block.payload, out.subarray(offset, offset + block.count), "test");
      offset += block.count;
    }
    expect(out).toEqual(symbols);
  });
});
