import { JOB_THRESHOLDS, useKernels } from "../codec/kernels.js";
import { QansError } from "../errors.js";
import { openModel } from "../model-set.js";
import { nativeAddon, nativeStatus, SIMD_LEVELS, type SimdLevelName } from "../native/addon.js";
import { isFloatPlaneDType } from "../tensor/dtype.js";
import { verifyModel } from "../verify.js";
import type { Decoder } from "./decoder.js";
import { float32Bytes, sha256Hex } from "./hash.js";
import { expectation, failed, judgeInvalid, judgeValid, type DecodedTensor, type DecoderAnswer, type Verdict } from "./judge.js";
import type { VectorCase } from "./manifest.js";

/**
 * The SDK as a decoder under test, on the TypeScript codec or on the native addon at one dispatch
 * level. A valid vector passes when the full verifier accepts it and the random-access reader
 * decodes every tensor to the manifest's hashes (readTensor, readStreams, readFloat32). An invalid
 * vector passes when the full verifier rejects it with exactly the manifest's code and, where the
 * manifest says a random-access reader must notice, opening it and reading every tensor throws a
 * QansError too.
 */

/** A QansError as a decoder's answer; anything else is a defect of the decoder, rethrown. */
function asAnswer(error: unknown): DecoderAnswer {
  if (error instanceof QansError) return { error: error.code, message: error.message };
  throw error;
}

/** Opens a vector (a file or a set), reads its metadata and hashes every tensor as the protocol asks. */
async function decodeVector(path: string): Promise<DecodedTensor[]> {
  const reader = await openModel(path);
  try {
    await reader.metadata();
    const tensors: DecodedTensor[] = [];
    for (const name of reader.names) {
      const { dtype } = await reader.tensorEntry(name);
      const decoded: DecodedTensor = {
        name,
        sha256: sha256Hex((await reader.readTensor(name)).data),
        symbols_sha256: (await reader.readStreams(name)).streams.map(sha256Hex),
      };
      if (isFloatPlaneDType(dtype)) decoded.f32_sha256 = sha256Hex(float32Bytes(await reader.readFloat32(name)));
      tensors.push(decoded);
    }
    return tensors;
  } finally {
    await reader.close();
  }
}

async function answerOf(action: () => Promise<DecodedTensor[]>): Promise<DecoderAnswer> {
  try {
    return { tensors: await action() };
  } catch (error) {
    return asAnswer(error);
  }
}

async function runVector(vector: VectorCase): Promise<Verdict> {
  const verified = await answerOf(async () => (await verifyModel(vector.path), []));
  if (vector.kind === "valid") {
    if ("error" in verified) return failed(expectation("valid", vector.entry), `the full verifier rejects it: ${verified.error}: ${verified.message}`);
    return judgeValid(vector.entry, await answerOf(() => decodeVector(vector.path)));
  }
  const verdict = judgeInvalid(vector.entry, verified);
  if (!verdict.passed || !vector.entry.detected_by_random_access) return verdict;
  const randomAccess = await answerOf(() => decodeVector(vector.path));
  return "error" in randomAccess ? verdict : failed(verdict.expected, `the full verifier gives ${verdict.got}, but the random-access reader reads every tensor`);
}

/** Runs a vector, reporting an error that is not a QansError as the decoder's failure. */
async function runGuarded(vector: VectorCase): Promise<Verdict> {
  try {
    return await runVector(vector);
  } catch (error) {
    return failed(expectation(vector.kind, vector.entry), `an error that is not a QansError: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The SDK on its TypeScript codec, the reference. */
export function typescriptDecoder(): Decoder {
  return {
    name: "typescript",
    concurrency: 1,
    begin: () => useKernels("typescript"),
    end: () => useKernels("auto"),
    run: runGuarded,
  };
}

/**
 * The SDK on the native addon at dispatch level `level`. Tensors are read through the addon's
 * thread-pool jobs whatever their size (as only large tensors are otherwise), while the full
 * verifier decodes block by block, so both native paths are checked.
 */
export function nativeDecoder(level: SimdLevelName): Decoder {
  const addon = nativeAddon();
  if (!addon) throw new QansError("INVALID_ARGUMENT", `the native codec is not in use: ${nativeStatus().reason}`);
  let restore: (() => void) | undefined;
  return {
    name: `native ${level}`,
    concurrency: 1,
    begin: () => {
      const previous = { level: addon.simdInfo().level, decode: { ...JOB_THRESHOLDS.decode } };
      useKernels("native");
      const now = addon.setSimdLevel(level);
      if (now !== level) throw new QansError("INVALID_ARGUMENT", `this CPU does not support the ${level} level (it runs at ${now})`);
      JOB_THRESHOLDS.decode.job = 0;
      JOB_THRESHOLDS.decode.async = 0;
      restore = () => {
        Object.assign(JOB_THRESHOLDS.decode, previous.decode);
        addon.setSimdLevel(previous.level);
        useKernels("auto");
      };
    },
    end: () => restore?.(),
    run: runGuarded,
  };
}

/** The dispatch levels this CPU supports, lowest first; none when the native codec is not in use. */
export function availableSimdLevels(): SimdLevelName[] {
  const available = nativeStatus().available ?? [];
  return SIMD_LEVELS.filter((level) => available.includes(level));
}

/**
 * The SDK's decoders: TypeScript, then native at `levels` ("all": every level the CPU supports, or
 * none when the native codec is not in use; a list: those, INVALID_ARGUMENT for one it lacks).
 */
export function sdkDecoders(levels: "all" | SimdLevelName[] = "all"): Decoder[] {
  const available = availableSimdLevels();
  if (levels !== "all") {
    const missing = levels.find((level) => !available.includes(level));
    if (missing !== undefined) {
      const status = nativeStatus();
      throw new QansError(
        "INVALID_ARGUMENT",
        status.active ? `this CPU does not support the ${missing} level (available: ${available.join(", ")})` : `the native codec is not in use: ${status.reason}`,
      );
    }
  }
  return [typescriptDecoder(), ...(levels === "all" ? available : levels).map(nativeDecoder)];
}
