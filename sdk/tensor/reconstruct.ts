import { kernels } from "../codec/kernels.js";
import { matrixShape } from "../format/layout.js";
import type { TensorHeader } from "../format/tensor-header.js";
import { float32ToBytes, toFloat32 } from "./convert.js";
import { dtypeSize } from "./dtype.js";
import type { TensorData } from "./tensor.js";

/**
 * Rebuilds a tensor's element bytes from its decoded streams: bit-exact for raw and float-planes,
 * dequantised to the original dtype for int-quant (spec §8).
 */
export function reconstructTensor(header: TensorHeader, streams: Uint8Array[]): TensorData {
  const base = { name: header.name, dtype: header.dtype, shape: [...header.shape] };
  switch (header.encoding) {
    case "raw":
      return { ...base, data: streams[0] };
    case "float-planes": {
      const data = new Uint8Array(header.elements * dtypeSize(header.dtype));
      kernels().mergeFloatPlanes(header.dtype, streams, data);
      return { ...base, data };
    }
    case "int-quant":
      return { ...base, data: float32ToBytes(header.dtype, dequantizeStreams(header, streams)) };
  }
}

/** The tensor as F32 values: dequantised for int-quant, converted for float dtypes. */
export function reconstructFloat32(header: TensorHeader, streams: Uint8Array[]): Float32Array {
  if (header.encoding === "int-quant") return dequantizeStreams(header, streams);
  return toFloat32(header.dtype, reconstructTensor(header, streams).data);
}

function dequantizeStreams(header: TensorHeader, streams: Uint8Array[]): Float32Array {
  const { rows, cols } = matrixShape(header.shape, header.elements);
  return kernels().dequantize(header.quant!, streams[0], rows, cols);
}
