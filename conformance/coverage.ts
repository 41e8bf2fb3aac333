/**
 * What the valid vectors must cover between them, read from the files themselves: every dtype
 * with every encoding that accepts it, every int-quant parameter combination, every probability
 * scale, block size, block mode and lane count, the block lengths at the edges, and the file-level
 * features (rank-0 and empty tensors, metadata with and without an architecture record, text
 * outside ASCII, sets). The generator refuses a set of vectors that misses one.
 */
import { DTYPES, type FileReport } from "../sdk/index.js";
import { fileLayout } from "../sdk/testing/patch.js";
import { blocksOf, fail, mapTensorHeader } from "./file-surgery.js";

/** Named features, such as "F16/float-planes", "k:12" or "block:B-1". */
export type Features = Set<string>;

const NON_ASCII = /[^\x00-\x7f]/;

/** The features one valid file has; `report` is the full verifier's report of it. */
export async function featuresOf(bytes: Uint8Array, report: FileReport): Promise<Features> {
  const features: Features = new Set();
  const layout = await fileLayout(bytes);
  const { metadata } = report;
  features.add(metadata.architecture ? "architecture" : "no-architecture");
  if (Object.entries(metadata.metadata).some(([key, value]) => NON_ASCII.test(key) || NON_ASCII.test(value))) features.add("non-ascii-metadata");
  for (const [t, tensor] of report.tensors.entries()) {
    const { entry, headerOffset } = layout.tensors[t];
    features.add(`${tensor.dtype}/${tensor.encoding}`);
    features.add(`log2Block:${entry.log2Block}`);
    if (NON_ASCII.test(tensor.name)) features.add("non-ascii-name");
    if (tensor.shape.length === 0) features.add("rank-0");
    if (tensor.elements === 0) features.add("empty");
    const q = tensor.quant;
    if (q) {
      features.add(`quant:b${q.bits}/${q.groupSize === 0 ? "row" : "group"}/${q.asymmetric ? "asym" : "sym"}/${q.inputScale ? "scale" : "no-scale"}`);
      features.add(`scale-type:${q.scaleType}`);
    }
    const block = 2 ** entry.log2Block;
    for (const stream of tensor.streams) {
      if (stream.precision !== null) features.add(`k:${stream.precision}`);
      if (stream.symbols === 0) features.add("stream:0");
      if (stream.symbols === block + 1) features.add("stream:B+1");
      if (Math.ceil(stream.symbols / block) >= 32) features.add("blocks:many");
    }
    for (const table of mapTensorHeader(bytes, headerOffset).tables) features.add(`table-flag:${table.flag}`);
  }
  for (const block of blocksOf(bytes, layout)) {
    features.add(`mode:${["RAW", "CONST", "RANS"][block.mode]}`);
    if (block.mode === 2) features.add(`lanes:${block.lanes}`);
    if ([1, 31, 32, 33].includes(block.count)) features.add(`block:${block.count}`);
    if (block.count === 2 ** layout.tensors[block.tensor].entry.log2Block - 1) features.add("block:B-1");
  }
  return features;
}

/** Every feature the valid vectors must have between them. */
export function requiredFeatures(): string[] {
  const required = Object.keys(DTYPES).map((dtype) => `${dtype}/raw`);
  for (const dtype of ["F32", "F16", "BF16"]) required.push(`${dtype}/float-planes`, `${dtype}/int-quant`);
  for (let bits = 2; bits <= 8; bits++) {
    for (const groups of ["row", "group"]) {
      for (const symmetry of ["sym", "asym"]) for (const scale of ["scale", "no-scale"]) required.push(`quant:b${bits}/${groups}/${symmetry}/${scale}`);
    }
  }
  required.push("scale-type:F16", "scale-type:F32");
  for (let k = 10; k <= 15; k++) required.push(`k:${k}`);
  for (let log2Block = 12; log2Block <= 20; log2Block++) required.push(`log2Block:${log2Block}`);
  required.push("mode:RAW", "mode:CONST", "mode:RANS", "table-flag:1", "table-flag:2");
  for (const lanes of [1, 2, 4, 8, 16, 32]) required.push(`lanes:${lanes}`);
  required.push("stream:0", "block:1", "block:31", "block:32", "block:33", "block:B-1", "stream:B+1", "blocks:many");
  required.push("rank-0", "empty", "architecture", "no-architecture", "non-ascii-metadata", "non-ascii-name", "set");
  return required;
}

export function checkCoverage(features: Features): void {
  const missing = requiredFeatures().filter((feature) => !features.has(feature));
  if (missing.length > 0) fail(`no valid vector covers ${missing.join(", ")}`);
}
