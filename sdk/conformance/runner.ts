import type { Decoder } from "./decoder.js";
import { loadManifest, vectorCases, type VectorCase } from "./manifest.js";

/**
 * The conformance runner: loads a manifest, runs every vector through each decoder in turn and
 * compares what it gives with what the manifest says (sdk/conformance/judge.ts). It prints nothing;
 * `qans conformance` formats the report.
 */

export interface VectorResult {
  /** "valid/<file>" or "invalid/<file>". */
  vector: string;
  passed: boolean;
  expected: string;
  got: string;
}

export interface DecoderReport {
  decoder: string;
  passed: number;
  failed: number;
  /** One per vector, in manifest order (valid vectors first). */
  results: VectorResult[];
}

export interface ConformanceReport {
  /** The folder holding manifest.json and vectors/. */
  directory: string;
  /** Vectors in the manifest. */
  vectors: number;
  decoders: DecoderReport[];
  /** Every vector passed for every decoder. */
  passed: boolean;
}

/** `task` over `items` with at most `limit` running at once; results in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

async function runDecoder(decoder: Decoder, cases: readonly VectorCase[]): Promise<DecoderReport> {
  decoder.begin?.();
  let results: VectorResult[];
  try {
    results = await mapLimited(cases, decoder.concurrency, async (vector) => ({ vector: `${vector.kind}/${vector.entry.file}`, ...(await decoder.run(vector)) }));
  } finally {
    decoder.end?.();
  }
  const passed = results.filter((result) => result.passed).length;
  return { decoder: decoder.name, passed, failed: results.length - passed, results };
}

/**
 * Runs every vector of `<directory>/manifest.json` through each decoder, one decoder after
 * another (the SDK's decoders switch process-wide codec settings). `onDecoder` is called with each
 * decoder's report as soon as it is complete.
 */
export async function runConformance(options: {
  directory: string;
  decoders: readonly Decoder[];
  onDecoder?: (report: DecoderReport) => void | Promise<void>;
}): Promise<ConformanceReport> {
  const manifest = await loadManifest(options.directory);
  const cases = vectorCases(manifest, options.directory);
  const decoders: DecoderReport[] = [];
  for (const decoder of options.decoders) {
    const report = await runDecoder(decoder, cases);
    decoders.push(report);
    await options.onDecoder?.(report);
  }
  return { directory: options.directory, vectors: cases.length, decoders, passed: decoders.every((report) => report.failed === 0) };
}
