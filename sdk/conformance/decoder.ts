import type { VectorCase } from "./manifest.js";
import type { Verdict } from "./judge.js";

/** One implementation the conformance runner checks: it runs a vector and says whether it passed. */
export interface Decoder {
  /** Its name in reports: "typescript", "native avx2", or the external command. */
  readonly name: string;
  /** How many vectors it may run at once. */
  readonly concurrency: number;
  /** Called before its first vector and after its last (to select and restore a codec, say). */
  begin?(): void;
  end?(): void;
  run(vector: VectorCase): Promise<Verdict>;
}
