import { npyHeader } from "../../export/npy.js";
import { openModel } from "../../model-set.js";
import { UsageError, parseCommand } from "../args.js";

const USAGE = "qans cat <file|url> <tensor> [--format raw|npy|f32]";
const FORMATS = ["raw", "npy", "f32"] as const;

/**
 * Writes one tensor of a model (one file, or a set file and its shards) to stdout: `raw`, its elements in their original dtype (little-endian,
 * row-major; dequantised for int-quant); `f32`, the same as binary32; `npy`, a NumPy .npy file.
 */
export async function catCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { format: { type: "string", default: "raw" } }, 2, USAGE);
  const format = values.format as (typeof FORMATS)[number];
  if (!FORMATS.includes(format)) throw new UsageError(`--format is raw, npy or f32, not "${values.format}"\nusage: ${USAGE}`);
  const [location, name] = positionals;
  const reader = await openModel(location);
  try {
    const entry = await reader.tensorEntry(name);
    if (format === "f32") {
      const values32 = await reader.readFloat32(name);
      await write(new Uint8Array(values32.buffer, values32.byteOffset, values32.byteLength));
    } else {
      const tensor = await reader.readTensor(name);
      if (format === "npy") await write(npyHeader(entry.dtype, entry.shape));
      await write(tensor.data);
    }
    return 0;
  } finally {
    await reader.close();
  }
}

function write(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(bytes, (error) => (error ? reject(error) : resolve())));
}
