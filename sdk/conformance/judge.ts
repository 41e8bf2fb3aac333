import type { ManifestInvalid, ManifestTensor, ManifestValid } from "./manifest.js";

/** What a decoder reports for one tensor of a vector it accepted (the protocol of conformance/README.md). */
export interface DecodedTensor {
  name: string;
  sha256: string;
  symbols_sha256: string[];
  f32_sha256?: string;
}

/** What a decoder made of a vector: the tensors it decoded, or the error code it rejected it with. */
export type DecoderAnswer = { tensors: DecodedTensor[] } | { error: string; message?: string };

/** The outcome of one vector for one decoder: `got` says what the decoder did, `expected` what it should have. */
export interface Verdict {
  passed: boolean;
  expected: string;
  got: string;
}

const ACCEPTED = "accepted, with the manifest's hashes";

/** The first difference between the decoded tensors and the manifest's, or undefined. */
function tensorDifference(expected: readonly ManifestTensor[], decoded: readonly DecodedTensor[]): string | undefined {
  const names = (tensors: readonly { name: string }[]) => tensors.map((t) => t.name).join(", ");
  if (decoded.length !== expected.length || decoded.some((t, i) => t.name !== expected[i].name)) {
    return `tensors [${names(decoded)}], expected [${names(expected)}]`;
  }
  for (const [i, want] of expected.entries()) {
    const got = decoded[i];
    const where = `tensor "${want.name}"`;
    if (got.sha256 !== want.sha256) return `${where}: sha256 ${got.sha256}, expected ${want.sha256}`;
    const streams = got.symbols_sha256;
    if (streams.length !== want.symbols_sha256.length) return `${where}: ${streams.length} symbol streams, expected ${want.symbols_sha256.length}`;
    const stream = streams.findIndex((hash, s) => hash !== want.symbols_sha256[s]);
    if (stream >= 0) return `${where}: stream ${stream} symbols_sha256 ${streams[stream]}, expected ${want.symbols_sha256[stream]}`;
    // Optional in answers; when given it must be right, and absent where the dtype has no binary32 view.
    if (got.f32_sha256 !== undefined && got.f32_sha256 !== want.f32_sha256) {
      return `${where}: f32_sha256 ${got.f32_sha256}, expected ${want.f32_sha256 ?? "none (no binary32 view of this dtype)"}`;
    }
  }
  return undefined;
}

/** A valid vector passes when the decoder accepts it and every hash matches. */
export function judgeValid(entry: ManifestValid, answer: DecoderAnswer): Verdict {
  if ("error" in answer) return { passed: false, expected: ACCEPTED, got: `rejected: ${answer.error}${answer.message ? `: ${answer.message}` : ""}` };
  const difference = tensorDifference(entry.tensors, answer.tensors);
  return difference === undefined ? { passed: true, expected: ACCEPTED, got: ACCEPTED } : { passed: false, expected: ACCEPTED, got: difference };
}

/** An invalid vector passes when the decoder rejects it with exactly the manifest's code. */
export function judgeInvalid(entry: ManifestInvalid, answer: DecoderAnswer): Verdict {
  const expected = entry.code;
  if (!("error" in answer)) return { passed: false, expected, got: `accepted (${answer.tensors.length} tensors)` };
  return { passed: answer.error === expected, expected, got: answer.error === expected ? expected : `${answer.error}${answer.message ? `: ${answer.message}` : ""}` };
}

/** A verdict for a decoder that broke the protocol or failed outright. */
export function failed(expected: string, got: string): Verdict {
  return { passed: false, expected, got };
}

/** What a vector expects, for reports: "accepted, ..." or its error code. */
export function expectation(kind: "valid" | "invalid", entry: ManifestValid | ManifestInvalid): string {
  return kind === "valid" ? ACCEPTED : (entry as ManifestInvalid).code;
}
