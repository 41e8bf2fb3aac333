import { describe, expect, it } from "vitest";
import { parseHarnessOutput } from "./harness-output.js";

describe("parseHarnessOutput", () => {
  it("reads measurement lines and skips the rest", () => {
    const rows = parseHarnessOutput(
      "input bytes=67108864 k=12\n" +
        "codec=qans level=avx2 block=131072 input=67108864 output=45000000 enc_mbs=410.5 dec_mbs=1500.2\n" +
        "codec=zstd-19 level=native block=67108864 input=67108864 output=44000000 enc_mbs=3.1 dec_mbs=1300.0\n",
    );
    expect(rows).toEqual([
      { codec: "qans", level: "avx2", block: 131072, input: 67108864, output: 45000000, encMBs: 410.5, decMBs: 1500.2 },
      { codec: "zstd-19", level: "native", block: 67108864, input: 67108864, output: 44000000, encMBs: 3.1, decMBs: 1300 },
    ]);
  });
});
