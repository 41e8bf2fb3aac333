import { describe, expect, it } from "vitest";
import { mkdir, readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { QansError } from "../errors.js";
import { codeOfAsync } from "../testing/outcome.js";
import { useTempDir } from "../testing/temp-dir.js";
import { AtomicFileSink, writeFileAtomic } from "./atomic-file.js";

const dir = useTempDir("qans-atomic-", { each: true });

const bytes = (...values: number[]) => new Uint8Array(values);

describe("AtomicFileSink", () => {
  it("writes to a hidden temporary file and renames it into place on commit", async () => {
    const target = join(dir(), "out.bin");
    const sink = await AtomicFileSink.create(target);
    expect(basename(sink.tempPath)).toMatch(new RegExp(`^\\.out\\.bin\\.qans-tmp-${process.pid}-[0-9a-f]+$`));
    await sink.write(bytes(1, 2, 3));
    await sink.write(new Uint8Array(0));
    await sink.write(bytes(4, 5, 6, 7, 8).subarray(1, 3));
    expect(sink.bytesWritten).toBe(5);
    expect(await readdir(dir())).toEqual([basename(sink.tempPath)]);
    await sink.commit();
    expect(new Uint8Array(await readFile(target))).toEqual(bytes(1, 2, 3, 5, 6));
    expect(await readdir(dir())).toEqual(["out.bin"]);
  });

  it("leaves the old contents visible until commit replaces them", async () => {
    const target = join(dir(), "model.qans");
    await writeFile(target, "old");
    const sink = await AtomicFileSink.create(target);
    await sink.write(new TextEncoder().encode("new contents"));
    expect(await readFile(target, "utf8")).toBe("old");
    await sink.commit();
    expect(await readFile(target, "utf8")).toBe("new contents");
  });

  it("keeps call order when writes overlap", async () => {
    const target = join(dir(), "ordered.bin");
    const sink = await AtomicFileSink.create(target);
    const chunks = Array.from({ length: 50 }, (_, i) => new Uint8Array(1000 + i).fill(i));
    await Promise.all(chunks.map((c) => sink.write(c)));
    await sink.commit();
    const out = new Uint8Array(await readFile(target));
    let at = 0;
    for (const c of chunks) {
      expect(out.subarray(at, at + c.byteLength)).toEqual(c);
      at += c.byteLength;
    }
    expect(out.byteLength).toBe(at);
  });

  it("abort removes the temporary file, keeps the old file, and may be repeated", async () => {
    const target = join(dir(), "keep.bin");
    await writeFile(target, "original");
    const sink = await AtomicFileSink.create(target);
    await sink.write(bytes(9, 9, 9));
    await sink.abort();
    await sink.abort();
    expect(await readdir(dir())).toEqual(["keep.bin"]);
    expect(await readFile(target, "utf8")).toBe("original");
  });

  it("abort does not throw when the temporary file is already gone", async () => {
    const sink = await AtomicFileSink.create(join(dir(), "gone.bin"));
    await unlink(sink.tempPath);
    await expect(sink.abort()).resolves.toBeUndefined();
  });

  it("refuses use after commit or abort", async () => {
    const committed = await AtomicFileSink.create(join(dir(), "a.bin"));
    await committed.commit();
    expect(await codeOfAsync(committed.write(bytes(1)))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(committed.commit())).toBe("INVALID_ARGUMENT");
    const aborted = await AtomicFileSink.create(join(dir(), "b.bin"));
    await aborted.abort();
    expect(await codeOfAsync(aborted.commit())).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(aborted.write("x" as unknown as Uint8Array))).toBe("INVALID_ARGUMENT");
  });

  it("reports a missing folder as IO_ERROR naming the path", async () => {
    const target = join(dir(), "no-such-folder", "x.bin");
    await expect(AtomicFileSink.create(target)).rejects.toThrow(/no-such-folder/);
    expect(await codeOfAsync(AtomicFileSink.create(target))).toBe("IO_ERROR");
  });

  it("cleans up and reports IO_ERROR when the rename fails", async () => {
    const target = join(dir(), "occupied");
    await mkdir(target);
    await writeFile(join(target, "child"), "x");
    const sink = await AtomicFileSink.create(target);
    await sink.write(bytes(1));
    expect(await codeOfAsync(sink.commit())).toBe("IO_ERROR");
    expect((await readdir(dir())).sort()).toEqual(["occupied"]);
  });
});

describe("writeFileAtomic", () => {
  it("accepts bytes, iterables and async iterables", async () => {
    await writeFileAtomic(join(dir(), "a"), bytes(1, 2));
    await writeFileAtomic(join(dir(), "b"), [bytes(1), bytes(), bytes(2, 3)]);
    async function* chunks() {
      yield bytes(4);
      yield bytes(5, 6);
    }
    await writeFileAtomic(join(dir(), "c"), chunks());
    expect(new Uint8Array(await readFile(join(dir(), "a")))).toEqual(bytes(1, 2));
    expect(new Uint8Array(await readFile(join(dir(), "b")))).toEqual(bytes(1, 2, 3));
    expect(new Uint8Array(await readFile(join(dir(), "c")))).toEqual(bytes(4, 5, 6));
  });

  it("leaves the destination untouched and no temporary file when the source fails", async () => {
    const target = join(dir(), "t");
    await writeFile(target, "before");
    async function* failing() {
      yield bytes(1);
      throw new Error("source broke");
    }
    const error = await writeFileAtomic(target, failing()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QansError);
    expect((error as QansError).code).toBe("IO_ERROR");
    expect(await readFile(target, "utf8")).toBe("before");
    expect(await readdir(dir())).toEqual(["t"]);
    expect(await codeOfAsync(writeFileAtomic(target, [bytes(1), "x" as unknown as Uint8Array]))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(writeFileAtomic(target, 42 as unknown as Uint8Array))).toBe("INVALID_ARGUMENT");
    expect(await readdir(dir())).toEqual(["t"]);
  });
});
