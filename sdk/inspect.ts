import { BLOCK_MODE_NAMES, zeroBlockModeCounts, type BlockModeCounts } from "./format/constants.js";
import { readQuantizationRecord, type TensorQuantizationEntry } from "./quant/quantization-record.js";
import type { FileReport, TensorReport } from "./verify.js";

export interface TensorSummary
  extends Pick<TensorReport, "name" | "dtype" | "shape" | "encoding" | "elements" | "storedBytes" | "paramBytes" | "quant"> {
  bitsPerWeight: number;
  /** Order-0 entropy of all the tensor's symbols, in bytes. */
  entropyBytes: number;
  /** Stored bytes except quantisation parameters: what the entropy bound applies to. */
  codedBytes: number;
  /** (codedBytes / entropyBytes − 1) × 100, or null when the entropy is zero. */
  overheadPct: number | null;
  entropyCoded: boolean;
  precision: (number | null)[];
  blockModes: BlockModeCounts;
  /** The scale exponent, prune fraction and rounding the writer recorded for this tensor (`qans.quantization`, spec §17.7); informative. */
  quantization?: Pick<TensorQuantizationEntry, "alpha" | "prune" | "rounding">;
}

export interface FileSummary {
  version: string;
  fileBytes: number;
  tensors: TensorSummary[];
  totals: {
    tensors: number;
    elements: number;
    storedBytes: number;
    paramBytes: number;
    entropyBytes: number;
    bitsPerWeight: number;
    overheadPct: number | null;
  };
}

/**
 * Turns a verify report into per-tensor accounting. A tensor's stored bytes are everything that
 * exists because of it: header, tables, block headers, rANS states, alignment padding and its
 * index entry. Quantisation parameters are counted in the stored bytes and bits per weight, but
 * not against the entropy bound, which is a bound on coding the symbols.
 */
export function summarizeReport(report: FileReport): FileSummary {
  const recorded = readQuantizationRecord(report.metadata?.metadata);
  const tensors = report.tensors.map((tensor) => summarizeTensor(tensor, recorded.get(tensor.name)));
  const sum = (pick: (t: TensorSummary) => number) => tensors.reduce((total, t) => total + pick(t), 0);
  const elements = sum((t) => t.elements);
  const entropyBytes = sum((t) => t.entropyBytes);
  const codedBytes = sum((t) => t.codedBytes);
  return {
    version: `${report.version.major}.${report.version.minor}`,
    fileBytes: report.fileBytes,
    tensors,
    totals: {
      tensors: tensors.length,
      elements,
      storedBytes: sum((t) => t.storedBytes),
      paramBytes: sum((t) => t.paramBytes),
      entropyBytes,
      bitsPerWeight: elements ? (report.fileBytes * 8) / elements : 0,
      overheadPct: entropyBytes > 0 ? (codedBytes / entropyBytes - 1) * 100 : null,
    },
  };
}

function summarizeTensor(tensor: TensorReport, recorded: TensorQuantizationEntry | undefined): TensorSummary {
  const entropyBytes = tensor.streams.reduce((total, s) => total + s.entropyBits, 0) / 8;
  const codedBytes = tensor.storedBytes - tensor.paramBytes;
  const blockModes = zeroBlockModeCounts();
  for (const stream of tensor.streams) for (const mode of BLOCK_MODE_NAMES) blockModes[mode] += stream.blockModes[mode];
  return {
    name: tensor.name,
    dtype: tensor.dtype,
    shape: tensor.shape,
    encoding: tensor.encoding,
    elements: tensor.elements,
    storedBytes: tensor.storedBytes,
    paramBytes: tensor.paramBytes,
    bitsPerWeight: tensor.elements ? (tensor.storedBytes * 8) / tensor.elements : 0,
    entropyBytes,
    codedBytes,
    overheadPct: entropyBytes > 0 ? (codedBytes / entropyBytes - 1) * 100 : null,
    entropyCoded: tensor.streams.some((s) => s.precision !== null),
    precision: tensor.streams.map((s) => s.precision),
    blockModes,
    ...(tensor.quant ? { quant: tensor.quant } : {}),
    ...(tensor.quant && recorded ? { quantization: { alpha: recorded.alpha, prune: recorded.prune, rounding: recorded.rounding ?? "nearest" } } : {}),
  };
}
