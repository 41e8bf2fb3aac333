import { describe, expect, it } from "vitest";
import { truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { FileSource, MemorySource, readSmallFile, withFile } from "./source.js";

const dir = useTempDir("qans-read-", { each: true });

const bytes = (...values: number[]) => new Uint8Array(values);

describe("FileSource", () => {
  it("reads exact ranges and refuses ranges past the end before allocating", async () => {
    const path = join(dir(), "r.bin");
    await writeFile(path, bytes(0, 1, 2, 3, 4, 5, 6, 7));
    await withFile(path, async (file) => {
      expect(file.size).toBe(8);
      expect(await file.read(2, 3, "middle")).toEqual(bytes(2, 3, 4));
      expect(await file.read(8, 0, "empty")).toEqual(bytes());
      expect(await codeOfAsync(file.read(6, 3, "tail"))).toBe("TRUNCATED");
      expect(await codeOfAsync(file.read(0, 2 ** 52, "huge"))).toBe("TRUNCATED");
      expect(await codeOfAsync(file.read(-1, 1, "negative"))).toBe("INVALID_ARGUMENT");
      await expect(file.read(6, 3, "tensor x")).rejects.toThrow(/r\.bin: tensor x needs bytes 6\.\.9 but the file has 8 bytes/);
    });
  });

  it("reports a file that shrinks after opening as TRUNCATED", async () => {
    const path = join(dir(), "shrink.bin");
    await writeFile(path, new Uint8Array(100));
    await withFile(path, async (file) => {
      await truncate(path, 10);
      expect(file.size).toBe(100);
      await expect(file.read(0, 50, "block")).rejects.toThrow(/block ends early at offset 10/);
      expect(await codeOfAsync(file.read(0, 50, "block"))).toBe("TRUNCATED");
    });
  });

  it("maps open failures to QansErrors", async () => {
    expect(await codeOfAsync(FileSource.open(join(dir(), "missing")))).toBe("IO_ERROR");
    expect(await codeOfAsync(FileSource.open(dir()))).toBe("BAD_INPUT");
    expect(await codeOfAsync(withFile(dir(), async () => 1))).toBe("BAD_INPUT");
  });

  it("readSmallFile enforces its size limit", async () => {
    const path = join(dir(), "s.json");
    await writeFile(path, "0123456789");
    expect(new TextDecoder().decode(await readSmallFile(path, 10, "json"))).toBe("0123456789");
    expect(await codeOfAsync(readSmallFile(path, 9, "json"))).toBe("LIMIT_EXCEEDED");
  });
});

describe("MemorySource", () => {
  it("applies the same range checks as a file", async () => {
    const source = new MemorySource(bytes(0, 1, 2, 3, 4, 5, 6, 7), "m.bin");
    expect(await source.read(2, 3)).toEqual(bytes(2, 3, 4));
    expect(await source.read(8, 0)).toEqual(bytes());
    expect(await codeOfAsync(source.read(6, 3))).toBe("TRUNCATED");
    expect(await codeOfAsync(source.read(-1, 1))).toBe("INVALID_ARGUMENT");
    await expect(source.read(6, 3, "tensor x")).rejects.toThrow(/m\.bin: tensor x needs bytes 6\.\.9 but the file has 8 bytes/);
  });
});
