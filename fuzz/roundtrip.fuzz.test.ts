/**
 * Round trips of arbitrary tensors through the writer and every reader: lossless encodings are
 * bit-exact, int-quant stays within the half-step bound of spec §8.3 and reconstructs exactly as
 * §8.3 prescribes, and every file written verifies. Cases per property: fuzz/options.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemorySource, QansReader, fromFloat32, toFloat32, verifySource, type QuantParams } from "../sdk/index.js";
import { sameBytes, writeToMemory } from "../sdk/testing/fixtures.js";
import { referenceDequantize } from "../sdk/testing/reference-dequantize.js";
import { count, log2BlockArb, losslessCaseArb, quantCaseArb, tensorsArb } from "./arbitraries.js";
import { fuzzOptions as options } from "./options.js";

const EPS32 = 2 ** -24;
const TINY32 = 2 ** -149;

/**
 * Every element within δ/2 of the original (÷ s_j with an input scale), the only slack being the
 * binary32 roundings involved: of w·s_j seen by the quantiser, and of the product and quotient of
 * the reconstruction, each at most half an ulp (relative 2^-24, or 2^-150 absolute when subnormal).
 */
function checkHalfStep(name: string, original: Float32Array, restored: Float32Array, q: QuantParams, cols: number): void {
  const groups = q.groupSize === 0 ? 1 : Math.ceil(cols / q.groupSize);
  for (let e = 0; e < original.length; e++) {
    const i = Math.floor(e / cols);
    const j = e % cols;
    const delta = q.deltas[i * groups + (q.groupSize === 0 ? 0 : Math.floor(j / q.groupSize))];
    const s = q.inputScale ? q.inputScale[j] : 1;
    const w = original[e];
    const scaled = q.inputScale ? Math.fround(w * s) : w;
    const product = restored[e] * s;
    const slack = EPS32 * (Math.abs(restored[e]) + (Math.abs(product) + Math.abs(scaled)) / s) + TINY32 * (2 + 2 / s);
    const error = Math.abs(restored[e] - w);
    const bound = delta / 2 / s + slack;
    if (!(error <= bound)) {
      throw new Error(`${name}[${e}]: |${restored[e]} - ${w}| = ${error} exceeds the half step ${delta / 2 / s} (+ rounding ${slack}), delta ${delta}, s ${s}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe("round trips of arbitrary tensors", () => {
  it("raw (every dtype) and float-planes (F32, F16, BF16) are bit-exact, and every file verifies", async () => {
    await fc.assert(
      fc.asyncProperty(tensorsArb(losslessCaseArb), log2BlockArb, async (cases, log2Block) => {
        const bytes = await writeToMemory(
          cases.map((c) => ({ tensor: c.tensor, encoding: { encoding: c.encoding } })),
          { log2Block },
        );
        const report = await verifySource(new MemorySource(bytes));
        expect(report.tensors.map((t) => t.name)).toEqual(cases.map((c) => c.tensor.name));
        const reader = await QansReader.open(new MemorySource(bytes));
        for (const { tensor, encoding } of cases) {
          const back = await reader.readTensor(tensor.name);
          expect(back.dtype).toBe(tensor.dtype);
          expect(back.shape).toEqual(tensor.shape);
          expect(sameBytes(back.data, tensor.data), `${tensor.name}: ${tensor.dtype} ${encoding} ${JSON.stringify(tensor.shape)} differs`).toBe(true);
          if (encoding === "raw") {
            const { streams } = await reader.readStreams(tensor.name);
            expect(sameBytes(streams[0], tensor.data)).toBe(true);
          }
        }
      }),
      options,
    );
  });

  it("int-quant stays within half a step per element and reconstructs exactly as spec §8.3 says; every file verifies", async () => {
    await fc.assert(
      fc.asyncProperty(tensorsArb(quantCaseArb), log2BlockArb, async (cases, log2Block) => {
        const bytes = await writeToMemory(cases, { log2Block });
        await verifySource(new MemorySource(bytes));
        const reader = await QansReader.open(new MemorySource(bytes));
        for (const { tensor, encoding } of cases) {
          const { header, streams } = await reader.readStreams(tensor.name);
          const q = header.quant!;
          expect(q.bits).toBe(encoding.bits);
          expect(q.asymmetric).toBe(encoding.asymmetric);
          expect(q.groupSize).toBe(encoding.groupSize);
          const cols = tensor.shape.length === 0 ? 1 : tensor.shape[tensor.shape.length - 1];
          const rows = cols === 0 ? 0 : count(tensor.shape) / cols;
          const restored = await reader.readFloat32(tensor.name);
          // Bit-exact against the spec's arithmetic (compared as bit patterns).
          const reference = referenceDequantize(q, streams[0], rows, cols);
          expect(sameBytes(new Uint8Array(restored.buffer, restored.byteOffset, restored.byteLength), new Uint8Array(reference.buffer))).toBe(true);
          checkHalfStep(tensor.name, toFloat32(tensor.dtype, tensor.data), restored, q, cols);
          // The tensor in its original dtype is the binary32 reconstruction rounded to that dtype.
          const back = await reader.readTensor(tensor.name);
          expect(sameBytes(back.data, fromFloat32(tensor.dtype, restored))).toBe(true);
        }
      }),
      options,
    );
  });
});
