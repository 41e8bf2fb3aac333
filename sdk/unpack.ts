import { writeSafetensors } from "./export/safetensors.js";
import { QansReader } from "./reader.js";
import { dtypeSize } from "./tensor/dtype.js";

/**
 * Writes a QANS file's tensors to safetensors, one tensor in memory at a time: bit-exact for
 * lossless encodings, dequantised to the original dtype for int-quant. Metadata passes through.
 */
export async function unpackToSafetensors(input: string, output: string): Promise<{ tensors: number; bytes: number }> {
  const reader = await QansReader.openLocation(input);
  try {
    const { metadata } = await reader.metadata();
    const layout = reader.entries.map((entry) => ({ name: entry.name, dtype: entry.dtype, shape: entry.shape }));
    await writeSafetensors(output, reader.tensors(), metadata, layout);
    const bytes = reader.entries.reduce((sum, entry) => sum + entry.elements * dtypeSize(entry.dtype), 0);
    return { tensors: layout.length, bytes };
  } finally {
    await reader.close();
  }
}
