import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { importLlama2c } from "../import/llama2c.js";
import { MemorySource } from "../io/source.js";
import { openModel } from "../model-set.js";
import { packModelSharded } from "../pack-set.js";
import { QansReader } from "../reader.js";
import { STORIES_PATH } from "../testing/fixtures.js";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { decodedWeightBytes, parseLlamaArchitecture } from "./architecture.js";
import { loadPlannedModel, measureModelCosts } from "./planned-model.js";
import { packStories } from "./stories-fixture.js";

const dir = useTempDir("qans-planned-");
const workload = { prefillTokens: 4, generatedTokens: 8 };

describe("loadPlannedModel", () => {
  it("keeps the resident bytes it plans, within the budget, and refuses a budget below every matrix compressed before timing", async () => {
    const reader = await QansReader.open(new MemorySource(await packStories("int8"), "stories260K int8"));
    const config = parseLlamaArchitecture((await reader.metadata()).architecture, "stories");
    for (const percent of [100, 40, 27]) {
      const lines: string[] = [];
      const { model, plan, budgetBytes } = await loadPlannedModel(reader, { budget: { percent }, workload, log: (line) => lines.push(line) });
      expect(budgetBytes).toBe(Math.floor((percent / 100) * decodedWeightBytes(config)));
      expect(model.residentWeightBytes, `${percent}%`).toBe(plan.bytes);
      expect(plan.bytes).toBeLessThanOrEqual(budgetBytes);
      expect(lines[0]).toMatch(new RegExp(`^plan: \\d+ f32, \\d+ int8, \\d+ compressed; resident weights ${plan.bytes} bytes of a budget of ${budgetBytes}`));
      expect(lines[1]).toMatch(/^predicted: prefill 4 tokens at [\d.]+ tokens\/s, generation at [\d.]+ tokens\/s/);
    }
    let timed = false;
    const refused = loadPlannedModel(reader, { budget: { percent: 10 }, workload, log: () => (timed = true) });
    expect(await codeOfAsync(refused)).toBe("INVALID_ARGUMENT");
    expect(timed).toBe(false);
    // Costs measured for one workload are refused for another.
    const costs = await measureModelCosts(reader, workload);
    expect(await codeOfAsync(loadPlannedModel(reader, { budget: { percent: 50 }, workload: { prefillTokens: 1, generatedTokens: 8 }, costs }))).toBe("INVALID_ARGUMENT");
    await reader.close();
  });

  it("plans a sharded model as it plans the same model in one file, with the same logits", async () => {
    const model = await importLlama2c(STORIES_PATH);
    await packModelSharded(model, join(dir(), "stories.qans"), { mode: "int8", shardBytes: 100_000 });
    const set = await openModel(join(dir(), "stories.qans"));
    const single = await QansReader.open(new MemorySource(await packStories("int8"), "stories260K int8"));
    const costs = await measureModelCosts(single, workload);
    const fromSet = await loadPlannedModel(set, { budget: { percent: 26.5 }, workload, costs });
    const fromFile = await loadPlannedModel(single, { budget: { percent: 26.5 }, workload, costs });
    await set.close();
    await single.close();
    expect([...fromSet.plan.choices]).toEqual([...fromFile.plan.choices]);
    expect([...fromSet.plan.choices.values()]).toContain("compressed");
    expect(fromSet.model.residentWeightBytes).toBe(fromFile.model.residentWeightBytes);
    const tokens = [1, 403, 27, 88, 5];
    expect(Buffer.from(fromSet.model.forwardBatch(tokens, 0).slice().buffer).equals(Buffer.from(fromFile.model.forwardBatch(tokens, 0).slice().buffer))).toBe(true);
  });
});
