import { QansError } from "../errors.js";
import { bf16BitsToF32Bits, f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits } from "../quant/float16.js";
import type { DType } from "./dtype.js";

/**
 * Conversions between little-endian tensor bytes and Float32Array. Float32Array is in host byte
 * order, so values are moved through Uint32Array bit patterns: that keeps NaN payloads intact and
 * makes the result independent of host endianness and of the input's byte alignment.
 */

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let f16Table: Uint32Array | undefined;

/** binary32 bit pattern of every F16 pattern; 256 KiB, built on first use. */
function f16ToF32Table(): Uint32Array {
  if (f16Table === undefined) {
    const table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = f16BitsToF32Bits(h);
    f16Table = table;
  }
  return f16Table;
}

function checkLength(dtype: DType, length: number, size: number): number {
  if (length % size !== 0) {
    throw new QansError("INVALID_ARGUMENT", `${dtype} data has ${length} bytes, not a multiple of ${size}`);
  }
  return length / size;
}

/**
 * Decodes little-endian F32, F16, BF16 or F64 bytes to binary32 values. F64 is rounded to nearest
 * even; the others convert exactly. Other dtypes throw BAD_DTYPE.
 */
export function toFloat32(dtype: DType, bytes: Uint8Array): Float32Array {
  switch (dtype) {
    case "F32": {
      const n = checkLength(dtype, bytes.length, 4);
      const out = new Float32Array(n);
      const outBytes = new Uint8Array(out.buffer);
      if (HOST_LITTLE_ENDIAN) {
        outBytes.set(bytes);
      } else {
        const bits = new Uint32Array(out.buffer);
        for (let i = 0, k = 0; i < n; i++, k += 4) {
          bits[i] = (bytes[k] | (bytes[k + 1] << 8) | (bytes[k + 2] << 16) | (bytes[k + 3] << 24)) >>> 0;
        }
      }
      return out;
    }
    case "F16": {
      const n = checkLength(dtype, bytes.length, 2);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      const table = f16ToF32Table();
      for (let i = 0, k = 0; i < n; i++, k += 2) bits[i] = table[bytes[k] | (bytes[k + 1] << 8)];
      return out;
    }
    case "BF16": {
      const n = checkLength(dtype, bytes.length, 2);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0, k = 0; i < n; i++, k += 2) bits[i] = bf16BitsToF32Bits(bytes[k] | (bytes[k + 1] << 8));
      return out;
    }
    case "F64": {
      const n = checkLength(dtype, bytes.length, 8);
      const out = new Float32Array(n);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // The Float32Array store rounds binary64 to nearest even.
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    default:
      throw new QansError("BAD_DTYPE", `cannot convert ${dtype} to F32`);
  }
}

/**
 * Encodes binary32 values as little-endian F32, F16 or BF16 bytes, rounding to nearest even with
 * overflow to infinity; NaN stays NaN. Other dtypes throw BAD_DTYPE.
 */
export function fromFloat32(dtype: DType, values: Float32Array): Uint8Array {
  const bytes = float32ToBytes(dtype, values);
  return bytes.buffer === values.buffer ? bytes.slice() : bytes;
}

/**
 * As `fromFloat32`, except that F32 on a little-endian host is a view of `values`' own memory, not
 * a copy: for values that nothing else holds, such as a tensor just dequantised, whose bytes would
 * otherwise take a second tensor-sized buffer.
 */
export function float32ToBytes(dtype: DType, values: Float32Array): Uint8Array {
  const n = values.length;
  // A Float32Array's byteOffset is always a multiple of 4, so this view is valid.
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  switch (dtype) {
    case "F32": {
      if (HOST_LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, n * 4);
      const out = new Uint8Array(n * 4);
      for (let i = 0, k = 0; i < n; i++, k += 4) {
        const v = bits[i];
        out[k] = v;
        out[k + 1] = v >>> 8;
        out[k + 2] = v >>> 16;
        out[k + 3] = v >>> 24;
      }
      return out;
    }
    case "F16":
    case "BF16": {
      const toHalf = dtype === "F16" ? f32BitsToF16Bits : f32BitsToBf16Bits;
      const out = new Uint8Array(n * 2);
      for (let i = 0, k = 0; i < n; i++, k += 2) {
        const h = toHalf(bits[i]);
        out[k] = h;
        out[k + 1] = h >>> 8;
      }
      return out;
    }
    default:
      throw new QansError("BAD_DTYPE", `cannot convert F32 to ${dtype}`);
  }
}
