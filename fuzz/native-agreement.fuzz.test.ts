/**
 * The native encoder against the TypeScript reference: a file of arbitrary tensors (every encoding,
 * dtype and quantisation parameter, block sizes 2^12 to 2^14) written with QansWriter on the
 * TypeScript kernels has exactly the bytes of the same file written on the native kernels, at every
 * SIMD level this CPU has, on one thread or two, block by block or through the whole-tensor jobs
 * (synchronous or asynchronous). Skipped when the addon is not in use (QANS_NATIVE=0, or not built).
 * Cases per property: fuzz/options.ts.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { JOB_THRESHOLDS, nativeKernelSet, useKernels, type KernelSetName } from "../sdk/codec/kernels.js";
import { nativeAddon } from "../sdk/native/addon.js";
import type { ModelMetadata, TensorData, TensorEncoding } from "../sdk/index.js";
import { sameBytes, writeToMemory } from "../sdk/testing/fixtures.js";
import { log2BlockArb, losslessCaseArb, quantCaseArb, tensorsArb } from "./arbitraries.js";
import { fuzzOptions } from "./options.js";
import { JOB_PATHS, JOB_PATH_NAMES, type JobPath } from "../sdk/testing/job-paths.js";

const addon = nativeAddon();
const levels = addon?.simdInfo().available ?? [];
const initial = addon && { level: addon.simdInfo().level, threads: addon.threadCount() };



type Case = { tensor: TensorData; encoding: TensorEncoding };

const caseArb = (i: number): fc.Arbitrary<Case> =>
  fc.oneof(
    losslessCaseArb(i).map(({ tensor, encoding }): Case => ({ tensor, encoding: { encoding } })),
    quantCaseArb(i),
  );

const metadataArb: fc.Arbitrary<ModelMetadata> = fc.record({ metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 }) });

async function writeWith(kernels: KernelSetName, path: JobPath, cases: Case[], log2Block: number, metadata: ModelMetadata): Promise<Uint8Array> {
  const saved = { ...JOB_THRESHOLDS.encode };
  useKernels(kernels);
  Object.assign(JOB_THRESHOLDS.encode, JOB_PATHS[path]);
  try {
    return await writeToMemory(cases, { log2Block, metadata });
  } finally {
    Object.assign(JOB_THRESHOLDS.encode, saved);
    useKernels("auto");
  }
}

describe.skipIf(!nativeKernelSet())("native and TypeScript encoders write identical files", () => {
  afterAll(() => {
    addon!.setSimdLevel(initial!.level);
    addon!.setThreadCount(initial!.threads);
  });

  it("for arbitrary tensors and parameters, at every SIMD level, thread count and encoding path", async () => {
    const pathArb = fc.constantFrom(...JOB_PATH_NAMES);
    await fc.assert(
      fc.asyncProperty(tensorsArb(caseArb), log2BlockArb, metadataArb, pathArb, fc.integer({ min: 1, max: 2 }), async (cases, log2Block, metadata, path, threads) => {
        const reference = await writeWith("typescript", "block by block", cases, log2Block, metadata);
        addon!.setThreadCount(threads);
        for (const level of levels) {
          expect(addon!.setSimdLevel(level)).toBe(level);
          const file = await writeWith("native", path, cases, log2Block, metadata);
          expect(file.length, `file length at ${level}, ${path}`).toBe(reference.length);
          expect(sameBytes(file, reference), `file bytes at ${level}, ${path}, ${threads} thread(s)`).toBe(true);
        }
      }),
      fuzzOptions,
    );
  });
});
