import { afterEach, describe, expect, it } from "vitest";
import { nativeKernelSet, useKernels, type KernelSetName } from "../codec/kernels.js";
import { importModel } from "../import/detect.js";
import { MemorySink } from "../io/sink.js";
import { MemorySource } from "../io/source.js";
import { packModel, type PackMode } from "../pack.js";
import { QansReader } from "../reader.js";
import type { ImportedModel } from "../tensor/tensor.js";
import { DEMO_MODEL_PATH, STORIES_PATH, sameBytes } from "../testing/fixtures.js";
import { nativeAddon } from "./addon.js";

/**
 * Every tensor of the real models, packed lossless, int8 and int4 with the kernels forced to each
 * set (and the native set at every dispatch level), gives the same file bytes; reading the file
 * back gives the same tensors.
 */

const addon = nativeAddon();
const levels = addon?.simdInfo().available ?? [];
const initialLevel = addon?.simdInfo().level;

async function packWith(kernels: KernelSetName, model: ImportedModel, mode: PackMode): Promise<Uint8Array> {
  useKernels(kernels);
  try {
    const sink = new MemorySink();
    await packModel(model, sink, { mode, groupSize: mode === "int4" ? 32 : 0 });
    return sink.bytes();
  } finally {
    useKernels("auto");
  }
}

async function readAllWith(kernels: KernelSetName, file: Uint8Array): Promise<Uint8Array[]> {
  useKernels(kernels);
  try {
    const reader = await QansReader.open(new MemorySource(file));
    const tensors: Uint8Array[] = [];
    for await (const tensor of reader.tensors()) tensors.push(tensor.data);
    return tensors;
  } finally {
    useKernels("auto");
  }
}

describe.skipIf(!nativeKernelSet())("real models through both kernel sets", () => {
  afterEach(() => {
    addon!.setSimdLevel(initialLevel!);
  });

  describe.each([
    ["stories260K", STORIES_PATH],
    ["the demo model", DEMO_MODEL_PATH],
  ])("%s", (_, path) => {
    let model: ImportedModel | undefined;

    it.each(["lossless", "int8", "int4"] as const)("%s: identical file bytes and decoded tensors at every level", async (mode) => {
      model ??= await importModel(path);
      const reference = await packWith("typescript", model, mode);
      const decoded = await readAllWith("typescript", reference);
      expect(decoded.length).toBe(model.tensors.length);
      if (mode === "lossless") decoded.forEach((data, i) => expect(sameBytes(data, model!.tensors[i].data), model!.tensors[i].name).toBe(true));
      for (const level of levels) {
        expect(addon!.setSimdLevel(level)).toBe(level);
        const file = await packWith("native", model, mode);
        expect(file.length, level).toBe(reference.length);
        expect(sameBytes(file, reference), `file bytes at ${level}`).toBe(true);
        const tensors = await readAllWith("native", reference);
        tensors.forEach((data, i) => expect(sameBytes(data, decoded[i]), `${model!.tensors[i].name} at ${level}`).toBe(true));
      }
    });
  });
});
