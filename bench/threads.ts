/**
 * `npm run bench:threads`: whole-tensor decode and encode through the SDK with the native addon's
 * thread pool at 1 and 2 threads (one child process per count, with QANS_THREADS set), against the
 * block-by-block path on the JavaScript thread that small tensors still take. The input is a 64 MiB
 * int8 tensor of Laplacian values, stored `raw`: one 8-bit stream in rANS blocks of 2^17 symbols.
 *
 *   npm run bench:threads [-- --mib N --runs N --rounds N]    (defaults: 64 MiB, best of 10 runs x 3 rounds)
 *
 * Decode is `QansReader.readStreams` over the file in memory (a MemorySource, so that disk speed
 * does not enter), both returning a new buffer per call and into one reused buffer, as an engine
 * loading weights into its own memory does; encode is `encodeTensorFrameAsync`. Both are checked against the block-by-block
 * path byte for byte, and the process exits non-zero when they differ.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeBlock, planStream, type EncodedBlock } from "../sdk/codec/block-codec.js";
import { kernels } from "../sdk/codec/kernels.js";
import { encodeBlockHeader } from "../sdk/format/block-header.js";
import { BLOCK_HEADER_SIZE, DEFAULT_LOG2_BLOCK } from "../sdk/format/constants.js";
import { blockHeaderOffset } from "../sdk/format/layout.js";
import { encodeTensorHeader } from "../sdk/format/tensor-header.js";
import { BufferForwardReader } from "../sdk/io/forward-reader.js";
import { MemorySink } from "../sdk/io/sink.js";
import { MemorySource } from "../sdk/io/source.js";
import { nativeStatus } from "../sdk/native/addon.js";
import { QansReader } from "../sdk/reader.js";
import { decodeTensorStreams } from "../sdk/tensor/frame-decode.js";
import { encodeTensorFrameAsync, type EncodedFrame } from "../sdk/tensor/frame-encode.js";
import type { TensorData } from "../sdk/tensor/tensor.js";
import { sameBytes } from "../sdk/testing/fixtures.js";
import { Random } from "../sdk/testing/random.js";
import { QansWriter } from "../sdk/writer.js";
import { formatTable } from "./lib/table.js";
import { bestTimeAsync as bestTime } from "./lib/timing.js";

const NAME = "w";
const THREAD_COUNTS = [1, 2];
const MB = 1e6;

interface ChildResult {
  threads: number;
  /** readStreams returning a new buffer per call. */
  decodeMBps: number;
  /** readStreams into one buffer reused across calls. */
  decodeIntoMBps: number;
  encodeMBps: number;
  /** The block-by-block path, measured in the first 1-thread child only. */
  blockDecodeMBps?: number;
  blockEncodeMBps?: number;
}


function laplacianInt8(count: number, seed: number): Uint8Array {
  const random = new Random(seed);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.max(-128, Math.min(127, Math.round(random.laplacian(6)))) & 0xff;
  return out;
}

/** The frame as the block-by-block path builds it: planStream, then encodeBlock per block. */
function encodeBlockByBlock(tensor: TensorData, log2Block: number): Uint8Array[] {
  const stream = planStream(kernels().histogram(tensor.data, 256), 8, tensor.data.length, log2Block);
  const header = encodeTensorHeader({
    name: tensor.name,
    dtype: tensor.dtype,
    encoding: "raw",
    shape: tensor.shape,
    elements: tensor.data.length,
    log2Block,
    streamCount: 1,
    streams: [stream],
  });
  const chunks = [header];
  let position = header.length;
  for (let start = 0; start < tensor.data.length; start += 2 ** log2Block) {
    const block: EncodedBlock = encodeBlock(tensor.data.subarray(start, start + 2 ** log2Block), stream);
    const headerAt = blockHeaderOffset(position);
    if (headerAt > position) chunks.push(new Uint8Array(headerAt - position));
    chunks.push(encodeBlockHeader(block, block.payload), block.payload);
    position = headerAt + BLOCK_HEADER_SIZE + block.payload.length;
  }
  return chunks;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks);
}

async function child(dir: string, runs: number, baseline: boolean): Promise<ChildResult> {
  const status = nativeStatus();
  if (!status.active) throw new Error(`the native codec is not in use: ${status.reason}`);
  const symbols = new Uint8Array(readFileSync(join(dir, "symbols.bin")));
  const file = new Uint8Array(readFileSync(join(dir, "tensor.qans")));
  const tensor: TensorData = { name: NAME, dtype: "I8", shape: [symbols.length], data: symbols };
  const reader = await QansReader.open(new MemorySource(file));
  const entry = reader.entry(NAME);
  const bytes = symbols.length;
  const result: ChildResult = { threads: status.threads!, decodeMBps: 0, decodeIntoMBps: 0, encodeMBps: 0 };

  const decoded = (await reader.readStreams(NAME)).streams[0];
  if (!sameBytes(decoded, symbols)) throw new Error("readStreams did not return the tensor's bytes");
  result.decodeMBps = bytes / MB / (await bestTime(() => reader.readStreams(NAME), runs));
  const target = new Uint8Array(symbols.length);
  result.decodeIntoMBps = bytes / MB / (await bestTime(() => reader.readStreams(NAME, [target]), runs));
  if (!sameBytes(target, symbols)) throw new Error("readStreams into a buffer did not fill it with the tensor's bytes");

  let frame: EncodedFrame | undefined;
  result.encodeMBps = bytes / MB / (await bestTime(async () => (frame = await encodeTensorFrameAsync(tensor, { encoding: "raw" })), runs));
  const fileFrame = file.subarray(entry.frameOffset, entry.frameOffset + entry.frameLength);
  if (!sameBytes(concat(frame!.chunks), fileFrame)) throw new Error("encodeTensorFrameAsync did not give the file's frame");

  if (baseline && result.threads === 1) {
    const frameBytes = file.subarray(entry.frameOffset, entry.frameOffset + entry.frameLength);
    const blockByBlock = () => decodeTensorStreams(new BufferForwardReader(frameBytes, entry.frameOffset), entry.frameOffset, file.length, entry);
    if (!sameBytes((await blockByBlock()).streams[0], symbols)) throw new Error("the block-by-block decode did not return the tensor's bytes");
    result.blockDecodeMBps = bytes / MB / (await bestTime(blockByBlock, runs));
    let chunks: Uint8Array[] = [];
    result.blockEncodeMBps = bytes / MB / (await bestTime(async () => (chunks = encodeBlockByBlock(tensor, DEFAULT_LOG2_BLOCK)), runs));
    if (!sameBytes(concat(chunks), fileFrame)) throw new Error("the block-by-block encode did not give the file's frame");
  }
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mib: { type: "string", default: "64" },
      runs: { type: "string", default: "10" },
      rounds: { type: "string", default: "3" },
      child: { type: "string" },
      baseline: { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs);
  const rounds = Number(values.rounds);
  if (values.child !== undefined) {
    console.log(JSON.stringify(await child(values.child, runs, values.baseline)));
    return;
  }
  const status = nativeStatus();
  if (!status.active) {
    console.error(`bench:threads needs the native addon (npm run build:native): ${status.reason}`);
    process.exit(1);
  }
  const count = Number(values.mib) * 2 ** 20;
  const dir = mkdtempSync(join(tmpdir(), "qans-bench-threads-"));
  try {
    const symbols = laplacianInt8(count, 1);
    const sink = new MemorySink();
    const writer = new QansWriter(sink);
    await writer.begin({ metadata: {} });
    await writer.addTensor({ name: NAME, dtype: "I8", shape: [count], data: symbols }, { encoding: "raw" });
    await writer.finish();
    const file = sink.bytes();
    writeFileSync(join(dir, "symbols.bin"), symbols);
    writeFileSync(join(dir, "tensor.qans"), file);

    console.log(`QANS whole-tensor decode and encode on the native thread pool`);
    console.log(`${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"}), ${process.version}, dispatch level ${status.level}`);
    console.log(`input: int8 tensor of ${count.toLocaleString("en-US")} Laplacian values (${(count / MB).toFixed(1)} MB), raw encoding, blocks of 2^${DEFAULT_LOG2_BLOCK}, coded ${(file.length / MB).toFixed(1)} MB`);
    console.log(`best of ${runs} runs in each of ${rounds} rounds of one child process per thread count`);
    console.log("");
    // Rounds alternate the thread counts, so that a burst of other load on the machine hits both.
    const results: ChildResult[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const threads of THREAD_COUNTS) {
        const args = ["--import", "tsx", new URL(import.meta.url).pathname, "--child", dir, "--runs", String(runs), ...(round === 0 ? ["--baseline"] : [])];
        const run = spawnSync(process.execPath, args, { env: { ...process.env, QANS_THREADS: String(threads) }, encoding: "utf8", maxBuffer: 1 << 20 });
        if (run.status !== 0) throw new Error(`child with QANS_THREADS=${threads} failed:\n${run.stderr}`);
        const result = JSON.parse(run.stdout.trim().split("\n").pop()!) as ChildResult;
        const best = results.find((r) => r.threads === threads);
        if (!best) results.push(result);
        else {
          best.decodeMBps = Math.max(best.decodeMBps, result.decodeMBps);
          best.decodeIntoMBps = Math.max(best.decodeIntoMBps, result.decodeIntoMBps);
          best.encodeMBps = Math.max(best.encodeMBps, result.encodeMBps);
        }
      }
    }
    const one = results.find((r) => r.threads === 1)!;
    const rows = [
      ["block by block on the JavaScript thread", "-", one.blockDecodeMBps!.toFixed(0), "", "", "", one.blockEncodeMBps!.toFixed(0), ""],
      ...results.map((r) => [
        "thread pool",
        String(r.threads),
        r.decodeMBps.toFixed(0),
        `${(r.decodeMBps / one.decodeMBps).toFixed(2)}x`,
        r.decodeIntoMBps.toFixed(0),
        `${(r.decodeIntoMBps / one.decodeIntoMBps).toFixed(2)}x`,
        r.encodeMBps.toFixed(0),
        `${(r.encodeMBps / one.encodeMBps).toFixed(2)}x`,
      ]),
    ];
    console.log(formatTable(["path", "threads", "decode, new buffer", "vs 1 thread", "decode into a buffer", "vs 1 thread", "encode", "vs 1 thread"], rows));
    console.log(
      "\nMB/s of tensor bytes (decoded symbols). Decode is readStreams(name), which returns a new buffer per call, and\n" +
        "readStreams(name, [buffer]) into one buffer reused across calls. Every result matched the block-by-block path byte for byte.",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
