import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QansError, type QansErrorCode } from "../errors.js";
import { RandomAccessFile, readSmallFile, withFile } from "./file-read.js";

async function codeOf(promise: Promise<unknown>): Promise<QansErrorCode | "no error" | "foreign error"> {
  try {
    await promise;
    return "no error";
  } catch (error) {
    return error instanceof QansError ? error.code : "foreign error";
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "qans-read-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (...values: number[]) => new Uint8Array(values);

describe("RandomAccessFile", () => {
  it("reads exact ranges and refuses ranges past the end before allocating", async () => {
    const path = join(dir, "r.bin");
    await writeFile(path, bytes(0, 1, 2, 3, 4, 5, 6, 7));
    await withFile(path, async (file) => {
      expect(file.size).toBe(8);
      expect(await file.read(2, 3, "middle")).toEqual(bytes(2, 3, 4));
      expect(await file.read(8, 0, "empty")).toEqual(bytes());
      expect(await codeOf(file.read(6, 3, "tail"))).toBe("TRUNCATED");
      expect(await codeOf(file.read(0, 2 ** 52, "huge"))).toBe("TRUNCATED");
      expect(await codeOf(file.read(-1, 1, "negative"))).toBe("INVALID_ARGUMENT");
      await expect(file.read(6, 3, "tensor x")).rejects.toThrow(/r\.bin: tensor x needs bytes 6\.\.9 but the file has 8 bytes/);
    });
  });

  it("reports a file that shrinks after opening as TRUNCATED", async () => {
    const path = join(dir, "shrink.bin");
    await writeFile(path, new Uint8Array(100));
    await withFile(path, async (file) => {
      await truncate(path, 10);
      expect(file.size).toBe(100);
      await expect(file.read(0, 50, "block")).rejects.toThrow(/block ends early at offset 10/);
      expect(await codeOf(file.read(0, 50, "block"))).toBe("TRUNCATED");
    });
  });

  it("maps open failures to QansErrors", async () => {
    expect(await codeOf(RandomAccessFile.open(join(dir, "missing")))).toBe("IO_ERROR");
    expect(await codeOf(RandomAccessFile.open(dir))).toBe("BAD_INPUT");
    expect(await codeOf(withFile(dir, async () => 1))).toBe("BAD_INPUT");
  });

  it("readSmallFile enforces its size limit", async () => {
    const path = join(dir, "s.json");
    await writeFile(path, "0123456789");
    expect(new TextDecoder().decode(await readSmallFile(path, 10, "json"))).toBe("0123456789");
    expect(await codeOf(readSmallFile(path, 9, "json"))).toBe("LIMIT_EXCEEDED");
  });
});
