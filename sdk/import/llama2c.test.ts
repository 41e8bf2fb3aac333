import { beforeAll, describe, expect, it } from "vitest";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { QansErrorCode } from "../errors.js";
import { elementCount, type TensorData } from "../tensor/tensor.js";
import { STORIES_PATH, sameBytes } from "../testing/fixtures.js";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { importLlama2c, permuteRotaryRows } from "./llama2c.js";

const floats = (t: TensorData) => new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));

/** Arrays of a checkpoint in file order, as [label, floats per layer, layers]. */
function fileLayout(h: number[]): [string, number, number][] {
  const [dim, hidden, layers, heads, kvHeads, vocab, seq] = h;
  const kv = (dim * kvHeads) / heads;
  const v = Math.abs(vocab);
  const list: [string, number, number][] = [
    ["embed", v * dim, 1],
    ["rms_att", dim, layers],
    ["wq", dim * dim, layers],
    ["wk", kv * dim, layers],
    ["wv", kv * dim, layers],
    ["wo", dim * dim, layers],
    ["rms_ffn", dim, layers],
    ["w1", hidden * dim, layers],
    ["w2", dim * hidden, layers],
    ["w3", hidden * dim, layers],
    ["rms_final", dim, 1],
    ["freq_real", (seq * dim) / heads / 2, 1],
    ["freq_imag", (seq * dim) / heads / 2, 1],
  ];
  if (vocab < 0) list.push(["wcls", v * dim, 1]);
  return list;
}

/** Float offset of array `label`, layer `layer`, within the float section. */
function floatOffset(h: number[], label: string, layer = 0): number {
  let at = 0;
  for (const [name, size, layers] of fileLayout(h)) {
    if (name === label) return at + layer * size;
    at += size * layers;
  }
  throw new Error(label);
}

function totalFloats(h: number[]): number {
  return fileLayout(h).reduce((sum, [, size, layers]) => sum + size * layers, 0);
}

/** A checkpoint whose float k holds the value k, so every tensor shows where it came from. */
function synthetic(h: number[], extraBytes = 0): Uint8Array {
  const out = new Uint8Array(28 + totalFloats(h) * 4 + extraBytes);
  const view = new DataView(out.buffer);
  h.forEach((v, i) => view.setInt32(i * 4, v, true));
  for (let k = 0; k < totalFloats(h); k++) view.setFloat32(28 + k * 4, k, true);
  return out;
}

/** Row that the Hugging Face permutation moves to position `row` (view [heads, hs/2, 2], swap). */
function sourceRow(row: number, headSize: number): number {
  const h = Math.floor(row / headSize);
  const rem = row % headSize;
  const t = Math.floor(rem / (headSize / 2));
  const p = rem % (headSize / 2);
  return h * headSize + 2 * p + t;
}

const dir = useTempDir("qans-l2c-");
let real: Uint8Array;
beforeAll(async () => {
  real = new Uint8Array(await readFile(STORIES_PATH));
});

async function save(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir(), name);
  await writeFile(path, bytes);
  return path;
}

function header(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
}

describe("importLlama2c on stories260K", () => {
  it("maps the checkpoint to Hugging Face Llama tensors", async () => {
    const h = header(real);
    expect(h).toEqual([64, 172, 5, 8, 4, 512, 512]);
    expect(real.byteLength).toBe(28 + 264_128 * 4);
    const model = await importLlama2c(STORIES_PATH);
    expect(model.metadata).toEqual({ source_format: "llama2c" });
    expect(model.architecture).toEqual({
      family: "llama",
      dim: 64,
      hidden_dim: 172,
      n_layers: 5,
      n_heads: 8,
      n_kv_heads: 4,
      vocab_size: 512,
      max_seq_len: 512,
      rope_theta: 10000,
      norm_eps: 1e-5,
      tie_embeddings: true,
      rope_layout: "half-split",
    });
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    expect(byName.size).toBe(model.tensors.length);
    expect(model.tensors.length).toBe(1 + 9 * 5 + 1);
    expect(byName.has("lm_head.weight")).toBe(false);
    expect(byName.get("model.embed_tokens.weight")?.shape).toEqual([512, 64]);
    expect(byName.get("model.norm.weight")?.shape).toEqual([64]);
    for (let i = 0; i < 5; i++) {
      const shape = (suffix: string) => byName.get(`model.layers.${i}.${suffix}`)?.shape;
      expect(shape("input_layernorm.weight")).toEqual([64]);
      expect(shape("self_attn.q_proj.weight")).toEqual([64, 64]);
      expect(shape("self_attn.k_proj.weight")).toEqual([32, 64]);
      expect(shape("self_attn.v_proj.weight")).toEqual([32, 64]);
      expect(shape("self_attn.o_proj.weight")).toEqual([64, 64]);
      expect(shape("post_attention_layernorm.weight")).toEqual([64]);
      expect(shape("mlp.gate_proj.weight")).toEqual([172, 64]);
      expect(shape("mlp.down_proj.weight")).toEqual([64, 172]);
      expect(shape("mlp.up_proj.weight")).toEqual([172, 64]);
    }
    for (const t of model.tensors) {
      expect(t.dtype).toBe("F32");
      expect(t.data.byteLength).toBe(elementCount(t.shape) * 4);
    }
    // Everything but the two freq_cis tables [seq_len, head_size / 2] is kept.
    const total = model.tensors.reduce((sum, t) => sum + elementCount(t.shape), 0);
    expect(total).toBe(264_128 - 2 * 512 * (64 / 8 / 2));
  });

  it("copies unpermuted tensors byte for byte from their place in the file", async () => {
    const h = header(real);
    const model = await importLlama2c(STORIES_PATH);
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    const slice = (label: string, layer: number, bytes: number) => {
      const at = 28 + floatOffset(h, label, layer) * 4;
      return real.subarray(at, at + bytes);
    };
    const check = (name: string, label: string, layer = 0) => {
      const t = byName.get(name)!;
      expect(sameBytes(t.data, slice(label, layer, t.data.byteLength))).toBe(true);
    };
    check("model.embed_tokens.weight", "embed");
    check("model.norm.weight", "rms_final");
    for (let i = 0; i < 5; i++) {
      check(`model.layers.${i}.input_layernorm.weight`, "rms_att", i);
      check(`model.layers.${i}.self_attn.v_proj.weight`, "wv", i);
      check(`model.layers.${i}.self_attn.o_proj.weight`, "wo", i);
      check(`model.layers.${i}.post_attention_layernorm.weight`, "rms_ffn", i);
      check(`model.layers.${i}.mlp.gate_proj.weight`, "w1", i);
      check(`model.layers.${i}.mlp.down_proj.weight`, "w2", i);
      check(`model.layers.${i}.mlp.up_proj.weight`, "w3", i);
    }
  });

  it("permutes q and k rows so that the inverse permutation restores the file bytes", async () => {
    const h = header(real);
    const model = await importLlama2c(STORIES_PATH);
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    const headSize = 64 / 8;
    for (let i = 0; i < 5; i++) {
      for (const [suffix, label, rows] of [["q_proj", "wq", 64], ["k_proj", "wk", 32]] as const) {
        const t = byName.get(`model.layers.${i}.self_attn.${suffix}.weight`)!;
        const at = 28 + floatOffset(h, label, i) * 4;
        const original = real.subarray(at, at + t.data.byteLength);
        expect(sameBytes(t.data, original)).toBe(false);
        const restored = new Uint8Array(t.data.byteLength);
        const rowBytes = 64 * 4;
        for (let r = 0; r < rows; r++) {
          restored.set(t.data.subarray(r * rowBytes, (r + 1) * rowBytes), sourceRow(r, headSize) * rowBytes);
        }
        expect(sameBytes(restored, original)).toBe(true);
      }
    }
  });

  it("preserves attention scores when interleaved RoPE becomes rotate-half RoPE", async () => {
    const h = header(real);
    const [dim, , , heads, kvHeads] = h;
    const headSize = dim / heads;
    const model = await importLlama2c(STORIES_PATH);
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    const fileFloats = (label: string, layer: number, count: number) => {
      const at = 28 + floatOffset(h, label, layer) * 4;
      return new Float32Array(real.buffer.slice(at, at + count * 4));
    };
    const matVec = (w: Float32Array, x: Float32Array) =>
      Float64Array.from({ length: w.length / x.length }, (_, r) => x.reduce((s, xv, c) => s + w[r * x.length + c] * xv, 0));
    const ropeInterleaved = (v: Float64Array, pos: number) => {
      const out = Float64Array.from(v);
      for (let i = 0; i < v.length; i += 2) {
        const angle = pos / 10000 ** ((i % headSize) / headSize);
        out[i] = v[i] * Math.cos(angle) - v[i + 1] * Math.sin(angle);
        out[i + 1] = v[i] * Math.sin(angle) + v[i + 1] * Math.cos(angle);
      }
      return out;
    };
    const ropeHalf = (v: Float64Array, pos: number) => {
      const out = Float64Array.from(v);
      const half = headSize / 2;
      for (let base = 0; base < v.length; base += headSize) {
        for (let j = 0; j < half; j++) {
          const angle = pos / 10000 ** ((2 * j) / headSize);
          const a = v[base + j];
          const b = v[base + j + half];
          out[base + j] = a * Math.cos(angle) - b * Math.sin(angle);
          out[base + j + half] = b * Math.cos(angle) + a * Math.sin(angle);
        }
      }
      return out;
    };
    const scores = (q: Float64Array, k: Float64Array) =>
      Array.from({ length: heads }, (_, head) => {
        const kvHead = Math.floor(head / (heads / kvHeads));
        let s = 0;
        for (let d = 0; d < headSize; d++) s += q[head * headSize + d] * k[kvHead * headSize + d];
        return s;
      });
    const embed = floats(byName.get("model.embed_tokens.weight")!);
    const x = embed.subarray(42 * dim, 43 * dim);
    const y = embed.subarray(7 * dim, 8 * dim);
    for (const layer of [0, 4]) {
      const qOld = matVec(fileFloats("wq", layer, dim * dim), x);
      const kOld = matVec(fileFloats("wk", layer, (dim * kvHeads * dim) / heads), y);
      const qNew = matVec(floats(byName.get(`model.layers.${layer}.self_attn.q_proj.weight`)!), x);
      const kNew = matVec(floats(byName.get(`model.layers.${layer}.self_attn.k_proj.weight`)!), y);
      for (const [m, n] of [[5, 2], [300, 17]]) {
        const expected = scores(ropeInterleaved(qOld, m), ropeInterleaved(kOld, n));
        const actual = scores(ropeHalf(qNew, m), ropeHalf(kNew, n));
        actual.forEach((s, i) => expect(s).toBeCloseTo(expected[i], 9));
      }
    }
  });

  it("imports a copy of the file identically", async () => {
    const a = await importLlama2c(STORIES_PATH);
    const b = await importLlama2c(await save("copy.bin", real));
    expect(b.architecture).toEqual(a.architecture);
    expect(b.metadata).toEqual(a.metadata);
    expect(b.tensors.map((t) => [t.name, t.shape])).toEqual(a.tensors.map((t) => [t.name, t.shape]));
    b.tensors.forEach((t, i) => expect(sameBytes(t.data, a.tensors[i].data)).toBe(true));
  });
});

describe("importLlama2c on synthetic checkpoints", () => {
  it("places every float where the layout says, with a separate classifier", async () => {
    const h = [8, 12, 2, 2, 1, -5, 3];
    const model = await importLlama2c(await save("sep.bin", synthetic(h)));
    expect(model.architecture).toMatchObject({ vocab_size: 5, tie_embeddings: false, n_kv_heads: 1 });
    const names = model.tensors.map((t) => t.name);
    expect(names[0]).toBe("model.embed_tokens.weight");
    expect(names.slice(-2)).toEqual(["model.norm.weight", "lm_head.weight"]);
    expect(names.length).toBe(1 + 9 * 2 + 2);
    const starts = (t: TensorData) => floats(t)[0];
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    expect(byName.get("lm_head.weight")!.shape).toEqual([5, 8]);
    expect(Array.from(floats(byName.get("lm_head.weight")!))).toEqual(Array.from({ length: 40 }, (_, k) => floatOffset(h, "wcls") + k));
    expect(starts(byName.get("model.layers.1.mlp.down_proj.weight")!)).toBe(floatOffset(h, "w2", 1));
    expect(starts(byName.get("model.layers.1.post_attention_layernorm.weight")!)).toBe(floatOffset(h, "rms_ffn", 1));
    const q = floats(byName.get("model.layers.1.self_attn.q_proj.weight")!);
    const k = floats(byName.get("model.layers.1.self_attn.k_proj.weight")!);
    for (let r = 0; r < 8; r++) expect(q[r * 8]).toBe(floatOffset(h, "wq", 1) + sourceRow(r, 4) * 8);
    for (let r = 0; r < 4; r++) expect(k[r * 8]).toBe(floatOffset(h, "wk", 1) + sourceRow(r, 4) * 8);
  });

  it("is a bijection on rows for any head count", () => {
    for (const [heads, headSize] of [[1, 2], [3, 4], [8, 8], [2, 64]]) {
      const rows = heads * headSize;
      const data = Uint8Array.from({ length: rows }, (_, i) => i);
      const permuted = permuteRotaryRows(data, heads, headSize, 1);
      expect([...permuted].sort((a, b) => a - b)).toEqual([...data]);
      permuted.forEach((v, r) => expect(v).toBe(sourceRow(r, headSize)));
    }
  });

  it("reports files cut short as TRUNCATED", async () => {
    const good = synthetic([8, 12, 2, 2, 1, 5, 3]);
    for (const cut of [0, 3, 27, 28, 100, good.byteLength - 4, good.byteLength - 1]) {
      const path = await save(`cut${cut}.bin`, good.subarray(0, cut));
      expect([cut, await codeOfAsync(importLlama2c(path))]).toEqual([cut, "TRUNCATED"]);
    }
    const path = await save("cut-real.bin", real.subarray(0, real.byteLength - 1));
    await expect(importLlama2c(path)).rejects.toThrow(/1056539 bytes but its header implies 1056540/);
  });

  it("reports extra bytes as BAD_INPUT with both sizes", async () => {
    for (const extra of [1, 4, 4096]) {
      const path = await save(`long${extra}.bin`, synthetic([8, 12, 2, 2, 1, 5, 3], extra));
      expect(await codeOfAsync(importLlama2c(path))).toBe("BAD_INPUT");
    }
    const path = await save("long-real.bin", Buffer.concat([real, new Uint8Array(4)]));
    await expect(importLlama2c(path)).rejects.toThrow(/1056544 bytes but its header implies 1056540; 4 extra bytes/);
  });

  it("validates every header value before sizing anything", async () => {
    const base = [64, 172, 5, 8, 4, 512, 512];
    const cases: [number[], QansErrorCode][] = [
      [[0, 172, 5, 8, 4, 512, 512], "BAD_HEADER"],
      [[64, -1, 5, 8, 4, 512, 512], "BAD_HEADER"],
      [[64, 172, 0, 8, 4, 512, 512], "BAD_HEADER"],
      [[64, 172, 5, 0, 4, 512, 512], "BAD_HEADER"],
      [[64, 172, 5, 8, 0, 512, 512], "BAD_HEADER"],
      [[64, 172, 5, 8, 4, 0, 512], "BAD_HEADER"],
      [[64, 172, 5, 8, 4, 512, -512], "BAD_HEADER"],
      [[64, 172, 5, 6, 3, 512, 512], "BAD_HEADER"], // dim not a multiple of n_heads
      [[64, 172, 5, 8, 3, 512, 512], "BAD_HEADER"], // n_heads not a multiple of n_kv_heads
      [[64, 172, 5, 8, 16, 512, 512], "BAD_HEADER"], // more kv heads than heads
      [[24, 172, 5, 8, 4, 512, 512], "BAD_HEADER"], // odd head size
      [[2 ** 20 + 64, 172, 5, 8, 4, 512, 512], "LIMIT_EXCEEDED"],
      [[64, 172, 5, 8, 4, -(2 ** 31), 512], "LIMIT_EXCEEDED"],
      [[64, 2 ** 31 - 1, 5, 8, 4, 512, 512], "LIMIT_EXCEEDED"],
      // Legal but enormous: the size check must fail before any allocation.
      [[2 ** 20, 2 ** 20, 2 ** 20, 2 ** 10, 2 ** 10, -(2 ** 20), 2 ** 20], "TRUNCATED"],
    ];
    for (const [h, code] of cases) {
      const bytes = real.slice();
      const view = new DataView(bytes.buffer);
      h.forEach((v, i) => view.setInt32(i * 4, v, true));
      const path = await save(`hdr-${h.join("_")}.bin`, bytes);
      expect([h, await codeOfAsync(importLlama2c(path))]).toEqual([h, code]);
    }
    // The unmodified header passes, so each case above fails for its own value.
    const ok = real.slice();
    base.forEach((v, i) => new DataView(ok.buffer).setInt32(i * 4, v, true));
    expect(await codeOfAsync(importLlama2c(await save("hdr-ok.bin", ok)))).toBe("no error");
  });

  it("maps file-system failures to QansErrors", async () => {
    expect(await codeOfAsync(importLlama2c(join(dir(), "missing.bin")))).toBe("IO_ERROR");
    expect(await codeOfAsync(importLlama2c(dir()))).toBe("BAD_INPUT");
  });
});
