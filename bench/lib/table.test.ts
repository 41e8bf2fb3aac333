import { describe, expect, it } from "vitest";
import { formatBytes, formatExcess, formatInt, formatPct, formatSpeed, formatTable } from "./table.js";

describe("formatTable", () => {
  it("left-aligns the first column and right-aligns the others", () => {
    const text = formatTable(
      ["codec", "bytes"],
      [
        ["QANS", "1,234"],
        ["zstd -19", "99"],
      ],
    );
    expect(text).toBe(["codec     bytes", "QANS      1,234", "zstd -19     99"].join("\n"));
  });

  it("rejects a row with the wrong number of cells", () => {
    expect(() => formatTable(["a", "b"], [["1"]])).toThrow(/1 cells/);
  });
});

describe("number formats", () => {
  it("formats sizes in decimal units", () => {
    expect(formatBytes(532)).toBe("532 B");
    expect(formatBytes(14_230)).toBe("14.2 kB");
    expect(formatBytes(6_406_935)).toBe("6.41 MB");
    expect(formatBytes(23_220_831)).toBe("23.2 MB");
    expect(formatBytes(123_456_789)).toBe("123 MB");
  });

  it("formats counts, percentages and speeds", () => {
    expect(formatInt(6975914)).toBe("6,975,914");
    expect(formatPct(0.66372)).toBe("66.37%");
    expect(formatExcess(0.0029)).toBe("+0.29%");
    expect(formatExcess(-0.011)).toBe("-1.10%");
    expect(formatSpeed(2.431)).toBe("2.43");
    expect(formatSpeed(86.34)).toBe("86.3");
    expect(formatSpeed(1062.04)).toBe("1062");
    expect(formatSpeed(Number.NaN)).toBe("-");
  });
});
