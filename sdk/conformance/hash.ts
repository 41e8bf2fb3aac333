import { createHash } from "node:crypto";

/** Lowercase hex SHA-256 of `bytes`, as the conformance manifest writes hashes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Little-endian bytes of binary32 values, read as bit patterns so NaN payloads survive. */
export function float32Bytes(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < bits.length; i++) view.setUint32(4 * i, bits[i], true);
  return out;
}
