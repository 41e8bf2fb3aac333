/**
 * QANS: quantized, entropy-coded model weights in a streamable, randomly accessible container.
 * The format is specified in spec/qans-v1.md.
 */
export { ERROR_CODES, QansError, isQansError, type QansErrorCode } from "./errors.js";
export { DTYPES, dtypeSize, type DType } from "./tensor/dtype.js";
export { isTensorReader, type ImportedModel, type ModelArchitecture, type ModelMetadata, type TensorData, type TensorReader, type TensorInput } from "./tensor/tensor.js";
export { FORMAT_MAJOR, FORMAT_MINOR, FILE_FLAG_SET, LIMITS, DEFAULT_LOG2_BLOCK, type EncodingName } from "./format/constants.js";
export type { FileMetadata } from "./format/metadata-frame.js";
export type { ShardEntry } from "./format/set-metadata.js";
export type { IndexEntry } from "./format/index-frame.js";
export type { TensorHeader, StreamDescriptor } from "./format/tensor-header.js";

export { QansWriter, type WriterOptions, type WriteResult } from "./writer.js";
export { QansReader, type DecodedStreams, type ModelReader, type ReaderOpenOptions, type TensorSelector } from "./reader.js";
export { QansModelSet, openModel, openModelSource } from "./model-set.js";
export { shardLocation, shardOpener, type ShardOpener } from "./io/shard-location.js";
export { verifySource, verifyModel, verifyModelSource, verifyStream, type FileReport, type TensorReport, type StreamReport } from "./verify.js";
export {
  decodeStream,
  type StreamDecodeOptions,
  type StreamOutput,
  type StreamEvent,
  type StreamStartEvent,
  type StreamTensorEvent,
  type StreamTensorStartEvent,
  type StreamBlockEvent,
  type StreamTensorEndEvent,
  type StreamEndEvent,
  type StreamFramePlacement,
} from "./stream-decoder.js";
export type { DecodedBlock } from "./tensor/frame-decode.js";
export { summarizeReport, type FileSummary, type TensorSummary } from "./inspect.js";
export {
  packModel,
  packToFile,
  packStream,
  packStreamToFile,
  candidateEncodings,
  encodeSmallest,
  parsePackMode,
  DEFAULT_LARGE_TENSOR_BYTES,
  type PackMode,
  type PackOptions,
  type PackStreamOptions,
  type PackResult,
} from "./pack.js";
export { encodeLargeTensorFrame, planWindowedFrame, type LargeFrameOptions, type WindowedFrame } from "./tensor/windowed-frame.js";
export { packModelSharded, packStreamSharded, shardFileName, type ShardedPackOptions, type ShardedPackResult } from "./pack-set.js";
export { unpackToSafetensors, unpackStreamToSafetensors } from "./unpack.js";
export { encodeTensorFrame, encodeTensorFrameAsync, type TensorEncoding, type EncodedFrame } from "./tensor/frame-encode.js";

export { MemorySource, FileSource, type ByteSource, type ByteRange } from "./io/source.js";
export { HttpSource, type HttpSourceOptions } from "./io/http-source.js";
export { CachedSource, type CachedSourceOptions } from "./io/cached-source.js";
export { ChunkForwardReader, readableStreamChunks, type ChunkSource } from "./io/chunk-reader.js";
export { MemorySink, type ByteSink } from "./io/sink.js";
export { StreamSink, type StreamSinkOptions } from "./io/stream-sink.js";
export { AtomicFileSink, writeFileAtomic } from "./io/atomic-file.js";

export { importModel, openModelTensors, type ModelTensors } from "./import/detect.js";
export { importSafetensors, importSafetensorsIndex, openSafetensorsFile, openSafetensorsIndex, parseSafetensorsHeader, type SafetensorsFile } from "./import/safetensors.js";
export { readSafetensorsStream, type SafetensorsStream, type SafetensorsStreamOptions } from "./import/safetensors-stream.js";
export type { SafetensorsHeader, SafetensorsEntry } from "./import/safetensors.js";
export { importLlama2c } from "./import/llama2c.js";
export { architectureFromHfConfig, type HfConfigOptions } from "./import/hf-config.js";
export { importTfjs } from "./import/tfjs.js";
export { writeSafetensors, encodeSafetensorsHeader } from "./export/safetensors.js";

export { ransEncode, RansDecoder } from "./codec/rans.js";
export { normalizeFrequencies, chooseFreqTable, makeFreqTable, type FreqTable } from "./codec/freq-table.js";
export { histogram, entropyBits } from "./codec/histogram.js";
export { crc32c } from "./codec/crc32c.js";
export { splitFloatPlanes, mergeFloatPlanes, floatPlaneWidths } from "./codec/float-planes.js";
export { encodeStream, StreamDecoder } from "./codec/block-codec.js";
export { quantizeRtn, type QuantParams, type QuantizeOptions } from "./quant/rtn.js";
export { dequantize } from "./quant/dequantize.js";
export { calibrateModel, calibrationSeeds, type CalibrationData, type CalibrationSource } from "./calibrate/calibrate.js";
export { planQuantization, QuantizationSearch, type PlanOptions, type QuantTarget } from "./calibrate/plan.js";
export { applyPlan, type QuantizationPlan, type PlannedModel } from "./calibrate/apply.js";
export { readQuantizationRecord, QUANTIZATION_METADATA_KEY, type TensorQuantizationEntry } from "./quant/quantization-record.js";
export { toFloat32, fromFloat32 } from "./tensor/convert.js";
export { nativeStatus, returnFreedBuffersToSystem, type NativeStatus, type SimdLevelName } from "./native/addon.js";

export { parseLlamaArchitecture, matrixSpecs, decodedWeightBytes, type LlamaArchitecture, type MatrixSpec } from "./infer/architecture.js";
export { LlamaModel, type LinearInputHook, type LlamaModelOptions, type LlamaLoadOptions } from "./infer/llama.js";
export { ResidentF32Linear, loadResidentF32, type LinearWeight, type LinearLoader } from "./infer/linear.js";
export { loadLlamaModel, type ModelFileOptions } from "./infer/model-file.js";
export { generateTokens, type GenerateOptions, type GeneratedToken } from "./infer/generate.js";
export { Sampler, XorShiftRandom, argmax, type SamplerOptions } from "./infer/sampler.js";
export { sampleSequences, evaluateAgainst, textWindows, evalSeeds, EVAL_SEED_BASE, type Agreement, type SampleOptions, type EvaluateOptions } from "./infer/eval.js";
export { requireFullyResident, budgetBytes, type MemoryBudget } from "./infer/memory-budget.js";
export { F32Weight } from "./infer/linear-f32.js";
export { SymbolWeight } from "./infer/linear-int8.js";
export { CompressedWeight } from "./infer/linear-compressed.js";
export { buildHolder, holderBytes, holderKinds, HOLDER_KINDS, type HolderKind } from "./infer/holders.js";
export { planHolders, type HolderPlan, type HolderOption, type PlanTensor, type PlanStep } from "./infer/planner.js";
export { calibrateHolders, holderSeconds, type Calibration, type Workload } from "./infer/holder-costs.js";
export { loadPlannedModel, measureModelCosts, type ModelCosts, type PlannedLoadOptions, type PlannedLlama, type Prediction } from "./infer/planned-model.js";
export type { TensorFrameBytes } from "./reader.js";
export { decodeTokens, TokenTextStream, type Tokenizer } from "./infer/tokenizer.js";
export { Llama2cTokenizer } from "./infer/tokenizer-llama2c.js";
export { HfBpeTokenizer } from "./infer/tokenizer-hf.js";
export { loadTokenizer, findTokenizerBeside } from "./infer/tokenizer-file.js";
