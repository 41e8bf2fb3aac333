import { kernels } from "../../codec/kernels.js";
import { nativeStatus } from "../../native/addon.js";
import { parseCommand } from "../args.js";
import { print, printJson } from "../output.js";

const USAGE = "qans doctor [--json]";

/**
 * Reports which codec the SDK runs on: the native addon (its instruction-set level and the threads a
 * whole-tensor decode or encode uses) or TypeScript.
 */
export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { json: { type: "boolean", default: false } }, 0, USAGE);
  const status = nativeStatus();
  const environment = Object.fromEntries(
    ["QANS_NATIVE", "QANS_NATIVE_PATH", "QANS_SIMD", "QANS_THREADS"].flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])),
  );
  const report = {
    native: status.active,
    kernels: kernels().name,
    ...(status.reason === undefined ? {} : { reason: status.reason }),
    ...(status.path === undefined ? {} : { addon: status.path }),
    level: status.level ?? null,
    available: status.available ?? [],
    compiled: status.compiled ?? [],
    threads: status.threads ?? null,
    environment,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  if (values.json) {
    await printJson(report);
    return 0;
  }
  const lines = status.active
    ? [
        `native codec: active (${status.path})`,
        `dispatch level: ${status.level}`,
        `available on this CPU: ${status.available!.join(", ")}`,
        `compiled in: ${status.compiled!.join(", ")}`,
        `threads per tensor: ${status.threads}`,
      ]
    : [`native codec: not in use: ${status.reason}`, "the TypeScript codec is used"];
  for (const [name, value] of Object.entries(environment)) lines.push(`${name}=${value}`);
  lines.push(`node ${process.version} on ${report.platform}`);
  await print(lines.join("\n"));
  return 0;
}
