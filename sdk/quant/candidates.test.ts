import { describe, expect, it } from "vitest";
import { summarizeReport } from "../inspect.js";
import { MemorySink } from "../io/sink.js";
import { MemorySource } from "../io/source.js";
import { packModel } from "../pack.js";
import { QansReader } from "../reader.js";
import { Random } from "../testing/random.js";
import { fromFloat32 } from "../tensor/convert.js";
import { verifySource } from "../verify.js";
import { evaluateCandidates } from "./candidates.js";
import { OutputErrorMeter } from "./output-error.js";
import { prepareTensor } from "./setting.js";

describe("evaluateCandidates", () => {
  it("measures each setting's stored bytes and output error as the packed file has them", async () => {
    const random = new Random(31);
    const rows = 24;
    const cols = 80;
    const tensor = { name: "w", dtype: "BF16" as const, shape: [rows, cols], data: fromFloat32("BF16", Float32Array.from({ length: rows * cols }, () => random.gaussian() * 0.1)) };
    const count = 100;
    const sample = { rows: Float32Array.from({ length: count * cols }, (_, k) => random.gaussian() * (k % cols === 2 ? 20 : 1)), count };
    const absMax = new Float32Array(cols);
    for (let k = 0; k < sample.rows.length; k++) absMax[k % cols] = Math.max(absMax[k % cols], Math.abs(sample.rows[k]));
    const grid = { bits: [3, 8], groupSizes: [0, 32, 128], alphas: [null, 0.5], prunes: [0, 0.25], roundings: ["nearest" as const] };
    const measured = evaluateCandidates(tensor, grid, { absMax, sample });
    // Group 128 is not below the row of 80 and is skipped; everything else is measured once.
    expect(measured.candidates).toHaveLength(2 * 2 * 2 * 2);
    const meter = new OutputErrorMeter(cols, sample);
    const original = new Float32Array(bf16ToF32Bits(tensor.data));
    for (const candidate of measured.candidates) {
      const prepared = prepareTensor(tensor, candidate, { absMax });
      const sink = new MemorySink();
      await packModel({ metadata: {}, tensors: [prepared.tensor] }, sink, { encodingsFor: () => [prepared.encoding] });
      const summary = summarizeReport(await verifySource(new MemorySource(sink.bytes(), "one tensor")));
      expect(candidate.bytes).toBe(summary.tensors[0].storedBytes);
      const reader = await QansReader.open(new MemorySource(sink.bytes(), "one tensor"));
      const restored = await reader.readFloat32("w");
      const want = meter.error(original, restored);
      expect(candidate.error / want).toBeCloseTo(1, 12);
    }
    expect(measured.energy).toBeGreaterThan(0);
  });
});

/** BF16 bytes as binary32 values: the 16 bits are the top half of the binary32 pattern. */
function bf16ToF32Bits(bf16: Uint8Array): ArrayBuffer {
  const out = new Uint32Array(bf16.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = (bf16[2 * k] | (bf16[2 * k + 1] << 8)) << 16;
  return out.buffer;
}
