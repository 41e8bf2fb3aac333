import { align64 } from "../format/bytes.js";
import { indexEntryLength } from "../format/index-frame.js";
import { matrixShape } from "../format/layout.js";
import { encodeTensorFrame } from "../tensor/frame-encode.js";
import { toFloat32 } from "../tensor/convert.js";
import { elementCount, type TensorData } from "../tensor/tensor.js";
import { OutputErrorMeter } from "./output-error.js";
import { prepareTensor, reconstructPrepared, type ChannelStatistics, type PreparedTensor, type QuantSetting } from "./setting.js";

/** The settings tried for each tensor. */
export interface SearchGrid {
  bits: readonly number[];
  /** Group sizes; those not smaller than the tensor's row are skipped (they equal per-row). */
  groupSizes: readonly number[];
  /** Scale exponents; null = no scale. Values other than null are tried only with statistics. */
  alphas: readonly (number | null)[];
  prunes: readonly number[];
  /** Roundings; "compensated" is tried without scale or pruning, on F32 tensors with a calibration sample. */
  roundings: readonly ("nearest" | "compensated")[];
}

/**
 * Bit widths 2..8, per row and groups of 128, 64, 32, a = 0, 1/8, …, 1 or no scale, six prune
 * fractions, and compensated rounding at each width and group size.
 */
export const DEFAULT_GRID: SearchGrid = {
  bits: [2, 3, 4, 5, 6, 7, 8],
  groupSizes: [0, 128, 64, 32],
  alphas: [null, 0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1],
  prunes: [0, 0.05, 0.1, 0.2, 0.3, 0.5],
  roundings: ["nearest", "compensated"],
};

/** A measured setting: its exact stored size and the layer output error it causes. */
export interface Candidate extends QuantSetting {
  /** Bytes the tensor takes in a file: its frame, padded to 64, and its index entry (as `qans inspect` counts them). */
  bytes: number;
  /** ‖(W − Ŵ) Xᵀ‖² on the calibration sample (‖W − Ŵ‖² without one). */
  error: number;
}

export interface TensorCandidates {
  name: string;
  elements: number;
  /** ‖W Xᵀ‖², the scale of the layer's output, for relative errors. */
  energy: number;
  candidates: Candidate[];
}

/** The bytes a frame occupies in a file, as `qans inspect` counts a tensor's stored bytes. */
export function storedFrameBytes(tensor: TensorData, frame: { frameLength: number; payloadLengths: Uint32Array }): number {
  return align64(frame.frameLength) + indexEntryLength({ name: tensor.name, shape: tensor.shape, payloadLengths: frame.payloadLengths });
}

/**
 * Quantises a tensor under every setting of the grid and measures each: the size by encoding the
 * frame exactly as packing would (symbols as coded, table, scales, s, block headers, padding,
 * index entry), the error by dequantising and measuring the layer's output error.
 */
export function evaluateCandidates(tensor: TensorData, grid: SearchGrid, calibration?: ChannelStatistics, log2Block?: number): TensorCandidates {
  const elements = elementCount(tensor.shape);
  const { cols } = matrixShape(tensor.shape, elements);
  const original = toFloat32(tensor.dtype, tensor.data);
  const meter = new OutputErrorMeter(cols, calibration?.sample);
  const candidates: Candidate[] = [];
  const alphas = calibration === undefined ? grid.alphas.filter((a) => a === null) : grid.alphas;
  const groupSizes = grid.groupSizes.filter((g) => g === 0 || g < cols);
  const measure = (setting: QuantSetting, prepared: PreparedTensor) => {
    const frame = encodeTensorFrame(prepared.tensor, prepared.encoding, log2Block);
    candidates.push({ ...setting, bytes: storedFrameBytes(tensor, frame), error: meter.error(original, reconstructPrepared(prepared)) });
  };
  if (grid.roundings.includes("nearest")) {
    for (const prune of grid.prunes) {
      for (const alpha of alphas) {
        // Pruning and the scale depend on neither the bit width nor the group size.
        const prepared = prepareTensor(tensor, { bits: 8, groupSize: 0, alpha, prune }, calibration, original);
        // A scale that came out undefined is the no-scale setting, already measured.
        if (alpha !== null && prepared.encoding.inputScale === undefined) continue;
        for (const groupSize of groupSizes) {
          for (const bits of grid.bits) measure({ bits, groupSize, alpha, prune }, { ...prepared, encoding: { ...prepared.encoding, bits, groupSize } });
        }
      }
    }
  }
  if (grid.roundings.includes("compensated") && tensor.dtype === "F32" && calibration?.sample && calibration.sample.count > 0) {
    for (const groupSize of groupSizes) {
      for (const bits of grid.bits) {
        const setting: QuantSetting = { bits, groupSize, alpha: null, prune: 0, rounding: "compensated" };
        measure(setting, prepareTensor(tensor, setting, calibration, original));
      }
    }
  }
  return { name: tensor.name, elements, energy: meter.energy(original), candidates };
}
