import { dirname, isAbsolute, relative, resolve } from "node:path";
import { QansError } from "../errors.js";
import { concatBytes } from "../format/bytes.js";
import { decodeUtf8Strict, isJsonObject, parseStrictJson, type JsonValue } from "../json/strict-json.js";
import { FileSource, readSmallFile, withFile } from "../io/source.js";
import { dtypeSize, type DType } from "../tensor/dtype.js";
import type { ImportedModel, TensorData } from "../tensor/tensor.js";
import { checkShape } from "./shape.js";

const MAX_MODEL_JSON_BYTES = 256 * 1024 * 1024;
const TFJS_DTYPES: Record<string, DType> = { float32: "F32", int32: "I32", bool: "BOOL" };

interface WeightSpec {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: number;
}

/** Shard paths are URLs relative to model.json; they must stay inside its folder. */
function shardPath(folder: string, value: JsonValue, where: string): string {
  const bad = (why: string) => new QansError("BAD_INPUT", `${where}: shard path ${JSON.stringify(value)} ${why}`);
  if (typeof value !== "string" || value === "") throw bad("is not a non-empty string");
  if (/[\\:\u0000-\u001f\u007f]/.test(value) || isAbsolute(value) || value.startsWith("/")) throw bad("is not a relative path");
  if (value.split("/").includes("..")) throw bad("leaves the model folder");
  const full = resolve(folder, value);
  const rel = relative(folder, full);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) throw bad("leaves the model folder");
  return full;
}

function weightSpec(value: JsonValue, where: string): WeightSpec {
  if (!isJsonObject(value)) throw new QansError("BAD_INPUT", `${where}: weight entry is not an object`);
  const name = value.name;
  if (typeof name !== "string") throw new QansError("BAD_INPUT", `${where}: weight name is not a string`);
  const at = `${where}: weight "${name}"`;
  if (value.quantization !== undefined) throw new QansError("BAD_INPUT", `${at} is quantized, which is not supported`);
  const dtype = typeof value.dtype === "string" ? TFJS_DTYPES[value.dtype] : undefined;
  if (dtype === undefined) throw new QansError("BAD_DTYPE", `${at}: unsupported dtype ${JSON.stringify(value.dtype)}`);
  const { shape, elements } = checkShape(value.shape, at);
  return { name, dtype, shape, bytes: Number(elements * BigInt(dtypeSize(dtype))) };
}

/** Reads the group's weights in manifest order from its shards, which form one byte stream. */
async function readGroup(paths: string[], specs: WeightSpec[], out: TensorData[]): Promise<void> {
  const cursor: { file: FileSource | null; index: number; offset: number } = { file: null, index: -1, offset: 0 };
  try {
    for (const spec of specs) {
      const pieces: Uint8Array[] = [];
      let remaining = spec.bytes;
      while (remaining > 0) {
        while (cursor.file === null || cursor.offset === cursor.file.size) {
          await cursor.file?.close();
          cursor.file = null;
          // Sizes were checked up front, so running out means a shard shrank meanwhile.
          if (++cursor.index >= paths.length) {
            throw new QansError("TRUNCATED", `${paths[paths.length - 1] ?? "weights group"}: weight "${spec.name}" runs past the end of the last shard`);
          }
          cursor.file = await FileSource.open(paths[cursor.index]);
          cursor.offset = 0;
        }
        const take = Math.min(remaining, cursor.file.size - cursor.offset);
        pieces.push(await cursor.file.read(cursor.offset, take, `weight "${spec.name}" at offset ${cursor.offset}`));
        cursor.offset += take;
        remaining -= take;
      }
      out.push({ name: spec.name, dtype: spec.dtype, shape: spec.shape, data: pieces.length === 1 ? pieces[0] : concatBytes(pieces) });
    }
  } finally {
    await cursor.file?.close().catch(() => undefined);
  }
}

/** Imports the unquantized weights of a TF.js `model.json` and its binary shards. */
export async function importTfjs(modelJsonPath: string): Promise<ImportedModel> {
  const where = modelJsonPath;
  const text = decodeUtf8Strict(await readSmallFile(modelJsonPath, MAX_MODEL_JSON_BYTES, "model.json"), where);
  const model = parseStrictJson(text, where, "BAD_INPUT");
  if (!isJsonObject(model) || !Array.isArray(model.weightsManifest)) {
    throw new QansError("BAD_INPUT", `${where}: not a TF.js model (no weightsManifest array)`);
  }
  const folder = dirname(resolve(modelJsonPath));
  const names = new Set<string>();
  const tensors: TensorData[] = [];
  for (const [g, group] of model.weightsManifest.entries()) {
    const at = `${where}: weightsManifest[${g}]`;
    if (!isJsonObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new QansError("BAD_INPUT", `${at} needs arrays "paths" and "weights"`);
    }
    const paths = group.paths.map((p) => shardPath(folder, p, at));
    const specs = group.weights.map((w) => weightSpec(w, at));
    for (const { name } of specs) {
      if (names.has(name)) throw new QansError("DUPLICATE_NAME", `${at}: weight name "${name}" appears twice`);
      names.add(name);
    }
    let have = 0n;
    for (const path of paths) have += BigInt(await withFile(path, async (file) => file.size));
    const need = specs.reduce((sum, spec) => sum + BigInt(spec.bytes), 0n);
    if (have < need) throw new QansError("TRUNCATED", `${at}: weights need ${need} bytes but the shards hold ${have}`);
    if (have > need) throw new QansError("BAD_INPUT", `${at}: shards hold ${have} bytes but the weights use only ${need}`);
    await readGroup(paths, specs, tensors);
  }
  return { metadata: { source_format: "tfjs" }, tensors };
}
