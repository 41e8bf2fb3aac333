import { resolve } from "node:path";
import type { Decoder } from "../../conformance/decoder.js";
import { DEFAULT_TIMEOUT_SECONDS, externalDecoder } from "../../conformance/external-decoder.js";
import { defaultVectorsDirectory } from "../../conformance/manifest.js";
import { runConformance, type DecoderReport } from "../../conformance/runner.js";
import { availableSimdLevels, sdkDecoders } from "../../conformance/sdk-decoder.js";
import { QansError } from "../../errors.js";
import { SIMD_LEVELS, nativeStatus, type SimdLevelName } from "../../native/addon.js";
import { UsageError, parseCommand, parseInteger } from "../args.js";
import { print, printJson } from "../output.js";

const USAGE = `qans conformance [--decoder "<command>"] [--simd ${SIMD_LEVELS.join("|")}|all] [--vectors DIR] [--timeout SECONDS] [--json]`;

/** The SDK's native levels `--simd` asks for. */
function simdLevels(value: string | undefined): "all" | SimdLevelName[] {
  if (value === undefined || value === "all") return "all";
  if (!(SIMD_LEVELS as readonly string[]).includes(value)) throw new UsageError(`--simd must be one of ${SIMD_LEVELS.join(", ")} or all, got "${value}"\nusage: ${USAGE}`);
  return [value as SimdLevelName];
}

/** One row per vector: passes plainly, failures with what was expected and what the decoder did. */
function decoderTable(report: DecoderReport): string {
  const width = Math.max(...report.results.map((result) => result.vector.length), "vector".length);
  const rows = report.results.map((result) => {
    const row = `${report.decoder}  ${result.vector.padEnd(width)}  ${result.passed ? "pass" : "FAIL"}`;
    return result.passed ? row : `${row}  expected ${result.expected}; got ${result.got}`;
  });
  return rows.join("\n");
}

function summaryLine(report: DecoderReport): string {
  return `${report.decoder}: ${report.passed} passed, ${report.failed} failed, of ${report.results.length} vectors`;
}

/**
 * Runs the conformance vectors (conformance/manifest.json) through decoders and reports each vector:
 * by default the SDK on its TypeScript codec, then on the native addon at every dispatch level the
 * CPU supports (`--simd` picks one); with `--decoder`, another implementation run as a command per
 * vector (conformance/README.md gives the protocol). Exit 1 if any vector fails.
 */
export async function conformanceCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    argv,
    {
      decoder: { type: "string" },
      simd: { type: "string" },
      vectors: { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean", default: false },
    },
    0,
    USAGE,
  );
  if (values.decoder !== undefined && values.simd !== undefined) throw new UsageError(`--simd selects the SDK's native decoder; it does not apply with --decoder\nusage: ${USAGE}`);
  if (values.decoder === undefined && values.timeout !== undefined) throw new UsageError(`--timeout applies to a --decoder command\nusage: ${USAGE}`);
  const directory = values.vectors !== undefined ? resolve(values.vectors) : defaultVectorsDirectory();
  if (directory === undefined) throw new QansError("INVALID_ARGUMENT", "this installation has no conformance/ folder; give one with --vectors DIR");

  let decoders: Decoder[];
  const notes: string[] = [];
  if (values.decoder !== undefined) {
    const timeout = parseInteger(values.timeout, "--timeout", 1, 24 * 3600) ?? DEFAULT_TIMEOUT_SECONDS;
    decoders = [externalDecoder(values.decoder, timeout)];
  } else {
    decoders = sdkDecoders(simdLevels(values.simd));
    if (availableSimdLevels().length === 0) notes.push(`native codec not in use (${nativeStatus().reason}): only the TypeScript decoder runs`);
  }

  const report = await runConformance({
    directory,
    decoders,
    onDecoder: values.json ? undefined : (decoder) => print(decoderTable(decoder)),
  });
  if (values.json) await printJson({ ...report, notes });
  else await print([...notes, ...report.decoders.map(summaryLine), report.passed ? "all vectors passed" : "some vectors FAILED"].join("\n"));
  return report.passed ? 0 : 1;
}
