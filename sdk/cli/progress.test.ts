import { describe, expect, it } from "vitest";
import { ProgressBar } from "./progress.js";

function fakeStream(isTTY: boolean) {
  const written: string[] = [];
  return { stream: { isTTY, write: (text: string) => written.push(text) > 0 }, written };
}

describe("ProgressBar", () => {
  it("draws nothing during the first second, then a bar with the percentage, and clears it at the end", () => {
    let clock = 0;
    const { stream, written } = fakeStream(true);
    const bar = new ProgressBar("packing", stream, () => clock);
    bar.update(1, 4);
    clock = 999;
    bar.update(2, 4);
    expect(written).toEqual([]);
    clock = 1500;
    bar.update(3, 4);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/^\rpacking \[#{23}-{7}\]  75%$/);
    bar.done();
    expect(written[1]).toBe("\r\x1b[K");
  });

  it("stays silent when stderr is not a terminal", () => {
    let clock = 0;
    const { stream, written } = fakeStream(false);
    const bar = new ProgressBar("verifying", stream, () => clock);
    clock = 5000;
    bar.update(1, 2);
    bar.done();
    expect(written).toEqual([]);
  });
});
