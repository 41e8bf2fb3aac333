import { describe, expect, it } from "vitest";
import { MemorySink } from "../io/sink.js";
import { MemorySource } from "../io/source.js";
import { packModel } from "../pack.js";
import { QansReader } from "../reader.js";
import { Random } from "../testing/random.js";
import { fromFloat32 } from "../tensor/convert.js";
import type { QuantParams } from "./rtn.js";
import { prepareTensor } from "./setting.js";

/**
 * Spec §8.3's reconstruction, written here from the spec's text alone: each step is a binary64
 * operation on binary32 operands followed by Math.fround, which is exactly binary32 arithmetic
 * with round-to-nearest-even for a product or quotient of two binary32 values.
 */
function specReconstruction(q: QuantParams, u: Uint8Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const groups = q.groupSize === 0 ? 1 : Math.ceil(cols / q.groupSize);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const g = q.groupSize === 0 ? 0 : Math.floor(j / q.groupSize);
      const z = q.asymmetric ? q.zeroPoints![i * groups + g] : 2 ** (q.bits - 1);
      const a = Math.fround(u[i * cols + j] - z); // step 1
      const d = Math.fround(q.deltas[i * groups + g]); // step 2
      let p = Math.fround(a * d); // step 3
      if (q.inputScale) p = Math.fround(p / q.inputScale[j]); // step 4
      out[i * cols + j] = p;
    }
  }
  return out;
}

describe("a scaled, pruned int-quant tensor", () => {
  it("reads back bit for bit as spec §8.3's formula reconstructs it", async () => {
    const random = new Random(77);
    // 19,200 elements: above 2^14, where the native kernels decode whole tensors.
    const rows = 200;
    const cols = 96;
    const channelMax = Float32Array.from({ length: cols }, (_, j) => (j === 5 ? 60 : 1) * Math.exp(random.gaussian()));
    const values = Float32Array.from({ length: rows * cols }, () => random.laplacian(0.03));
    const tensor = { name: "layer.weight", dtype: "F32" as const, shape: [rows, cols], data: fromFloat32("F32", values) };
    for (const setting of [
      { bits: 6, groupSize: 0, alpha: 0.5, prune: 0.2 },
      { bits: 3, groupSize: 32, alpha: 1, prune: 0.05 },
    ]) {
      const prepared = prepareTensor(tensor, setting, { absMax: channelMax });
      expect(prepared.encoding.inputScale).toBeDefined();
      const sink = new MemorySink();
      await packModel({ metadata: {}, tensors: [prepared.tensor] }, sink, { encodingsFor: () => [prepared.encoding] });
      const reader = await QansReader.open(new MemorySource(sink.bytes(), "scaled"));
      const { header, streams } = await reader.readStreams(tensor.name);
      const q = header.quant!;
      expect(q.inputScale).toEqual(prepared.encoding.inputScale);
      const want = specReconstruction(q, streams[0], rows, cols);
      const got = await reader.readFloat32(tensor.name);
      expect(new Uint32Array(got.buffer, got.byteOffset, got.length)).toEqual(new Uint32Array(want.buffer));
      // Pruned weights are stored as z and reconstruct as exactly zero.
      let zeros = 0;
      for (let k = 0; k < got.length; k++) {
        if (prepared.values[k] === 0) {
          expect(streams[0][k]).toBe(2 ** (setting.bits - 1));
          expect(got[k]).toBe(0);
          zeros++;
        }
      }
      expect(zeros).toBeGreaterThanOrEqual(rows * Math.floor(setting.prune * cols + 0.5));
      await reader.close();
    }
  });
});
