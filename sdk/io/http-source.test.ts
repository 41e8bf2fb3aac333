import { afterEach, describe, expect, it } from "vitest";
import { QansReader } from "../reader.js";
import { gaussianTensor, sameBytes, writeToMemory } from "../testing/fixtures.js";
import { TestHttpServer, type TestServerOptions } from "../testing/http-server.js";
import { codeOfAsync } from "../testing/outcome.js";
import { Random } from "../testing/random.js";
import { HttpSource, type HttpSourceOptions } from "./http-source.js";
import { MemorySource } from "./source.js";

/** Tiny backoff, so retry tests take milliseconds. */
const FAST: HttpSourceOptions = { retryDelayMs: 1, maxRetryDelayMs: 4, timeoutMs: 5000 };
const TAIL = 64 * 1024;

function randomBytes(length: number, seed: number): Uint8Array {
  const random = new Random(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = random.int(256);
  return bytes;
}

const FILE = randomBytes(300_000, 1);
const slice = (offset: number, length: number, bytes = FILE) => bytes.subarray(offset, offset + length);

let servers: TestHttpServer[] = [];
const sources: HttpSource[] = [];

async function serve(content: Uint8Array = FILE, options: TestServerOptions = {}): Promise<TestHttpServer> {
  const server = await TestHttpServer.start(content, options);
  servers.push(server);
  return server;
}

async function open(server: TestHttpServer, options: HttpSourceOptions = {}): Promise<HttpSource> {
  const source = await HttpSource.open(server.url(), { ...FAST, ...options });
  sources.push(source);
  return source;
}

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

afterEach(async () => {
  for (const source of sources.splice(0)) await source.close();
  for (const server of servers) await server.stop();
  servers = [];
});

describe("HttpSource open", () => {
  it("learns size and ETag with one suffix request and keeps the file's end", async () => {
    const server = await serve();
    const source = await open(server);
    expect(source.size).toBe(FILE.length);
    expect(source.etag).toBe(server.etag);
    expect(server.log.map((entry) => [entry.method, entry.range, entry.status, entry.bytes])).toEqual([["GET", `bytes=-${TAIL}`, 206, TAIL]]);
    expect([source.requests, source.bytesReceived, source.retries]).toEqual([1, TAIL, 0]);

    // The trailer and an index at the end of the file cost nothing more.
    expect(sameBytes(await source.read(FILE.length - 40, 40, "trailer"), slice(FILE.length - 40, 40))).toBe(true);
    expect(sameBytes(await source.read(FILE.length - TAIL, TAIL), slice(FILE.length - TAIL, TAIL))).toBe(true);
    expect(source.requests).toBe(1);

    // A range reaching before the kept tail is one request, with If-Match, for the part before the tail only.
    expect(sameBytes(await source.read(1000, 5000, "frame"), slice(1000, 5000))).toBe(true);
    expect(sameBytes(await source.read(FILE.length - TAIL - 10, 20), slice(FILE.length - TAIL - 10, 20))).toBe(true);
    expect(server.log.slice(1).map((entry) => [entry.range, entry.ifMatch, entry.status, entry.bytes])).toEqual([
      ["bytes=1000-5999", server.etag, 206, 5000],
      [`bytes=${FILE.length - TAIL - 10}-${FILE.length - TAIL - 1}`, server.etag, 206, 10],
    ]);
    expect([source.requests, source.bytesReceived]).toEqual([3, TAIL + 5010]);
  });

  it("keeps a file smaller than the tail whole, and opens an empty file", async () => {
    const small = randomBytes(1000, 2);
    const source = await open(await serve(small));
    expect(source.size).toBe(1000);
    expect(sameBytes(await source.read(0, 1000), small)).toBe(true);
    expect(source.requests).toBe(1);

    const empty = await open(await serve(new Uint8Array(0)));
    expect(empty.size).toBe(0);
    expect(await empty.read(0, 0)).toEqual(new Uint8Array(0));
    expect(await codeOfAsync(empty.read(0, 1))).toBe("TRUNCATED");
  });

  it("learns the size with HEAD when tailBytes is 0", async () => {
    const server = await serve();
    const source = await open(server, { tailBytes: 0 });
    expect(source.size).toBe(FILE.length);
    expect(server.log.map((entry) => [entry.method, entry.status])).toEqual([["HEAD", 200]]);
    expect(sameBytes(await source.read(FILE.length - 40, 40), slice(FILE.length - 40, 40))).toBe(true);
    expect(source.requests).toBe(2);
  });

  it("names the status and URL of a 4xx, without the query string, and does not retry it", async () => {
    const server = await serve();
    server.fail({ kind: "status", status: 404 });
    const error = await failure(HttpSource.open(`${server.url()}?token=secret`, FAST));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toContain("HTTP 404");
    expect(error.message).toContain(server.url());
    expect(error.message).not.toContain("secret");
    expect(server.log).toHaveLength(1);
  });

  it("refuses bad URLs and options", async () => {
    expect(await codeOfAsync(HttpSource.open("not a url"))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(HttpSource.open("file:///etc/passwd"))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(HttpSource.open("http://127.0.0.1:1/x", { concurrency: 0 }))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(HttpSource.open("http://127.0.0.1:1/x", { maxAttempts: 1.5 }))).toBe("INVALID_ARGUMENT");
  });

  it("fails with IO_ERROR after bounded attempts when nothing listens", async () => {
    const server = await serve();
    const url = server.url();
    await server.stop();
    servers = servers.filter((s) => s !== server);
    const error = await failure(HttpSource.open(url, { ...FAST, maxAttempts: 3 }));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/failed after 3 attempts: network error/);
  });
});

describe("HttpSource reads", () => {
  it("checks every range against the size before any request", async () => {
    const server = await serve();
    const source = await open(server);
    expect(await codeOfAsync(source.read(FILE.length - 10, 11))).toBe("TRUNCATED");
    expect(await codeOfAsync(source.read(0, 2 ** 52))).toBe("TRUNCATED");
    expect(await codeOfAsync(source.read(-1, 1))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(source.read(0.5, 1))).toBe("INVALID_ARGUMENT");
    expect(await codeOfAsync(source.readRanges([{ offset: 0, length: 1 }, { offset: FILE.length, length: 1 }]))).toBe("TRUNCATED");
    await expect(source.read(FILE.length - 10, 11, "tensor x")).rejects.toThrow(/model\.qans: tensor x needs bytes \d+\.\.\d+ but the file has 300000 bytes/);
    expect(await source.read(5, 0)).toEqual(new Uint8Array(0));
    expect(server.log).toHaveLength(1);
  });

  it("maps a 416 to TRUNCATED when the file shrank on a server without ETags", async () => {
    const server = await serve(FILE, { etag: false });
    const source = await open(server);
    server.setContent(FILE.subarray(0, 1000));
    expect(await codeOfAsync(source.read(5000, 100))).toBe("TRUNCATED");
    // Within the new size, Content-Range's total still shows the change.
    const error = await failure(source.read(10, 100));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/changed/);
    expect(server.log.map((entry) => entry.status)).toEqual([206, 416, 206]);
  });

  it("recovers from a connection dropped mid-body, with correct bytes", async () => {
    const server = await serve();
    const source = await open(server);
    server.fail({ kind: "drop", afterBytes: 3000 });
    expect(sameBytes(await source.read(0, 100_000), slice(0, 100_000))).toBe(true);
    expect(server.log.slice(1).map((entry) => [entry.fault, entry.status, entry.bytes])).toEqual([
      ["drop", 206, 3000],
      [null, 206, 100_000],
    ]);
    expect(source.retries).toBe(1);
    expect(source.requests).toBe(3);
  });

  it("recovers from a drop during open, and from a reset connection", async () => {
    const server = await serve();
    server.fail({ kind: "drop", afterBytes: 100 }, { kind: "reset" });
    const source = await open(server);
    expect(source.size).toBe(FILE.length);
    expect(server.log.map((entry) => entry.fault)).toEqual(["drop", "reset", null]);
    server.fail({ kind: "reset" });
    expect(sameBytes(await source.read(10, 10), slice(10, 10))).toBe(true);
    expect(source.retries).toBe(3);
  });

  it("retries a 503 and then succeeds", async () => {
    const server = await serve();
    const source = await open(server);
    server.fail({ kind: "status", status: 503 }, { kind: "status", status: 502 });
    expect(sameBytes(await source.read(7, 70_000), slice(7, 70_000))).toBe(true);
    expect(server.log.slice(1).map((entry) => entry.status)).toEqual([503, 502, 206]);
  });

  it("gives up on 5xx after maxAttempts with IO_ERROR naming the status and URL", async () => {
    const server = await serve();
    const source = await open(server, { maxAttempts: 3 });
    server.fail(...Array.from({ length: 3 }, () => ({ kind: "status" as const, status: 503 })));
    const error = await failure(source.read(0, 10, "tensor y frame"));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toContain("HTTP 503");
    expect(error.message).toContain(server.url());
    expect(error.message).toContain("tensor y frame");
    expect(server.log).toHaveLength(4);
  });

  it("retries a short body", async () => {
    const server = await serve();
    const source = await open(server);
    server.fail({ kind: "short", bytes: 10 });
    expect(sameBytes(await source.read(100, 50_000), slice(100, 50_000))).toBe(true);
    expect(server.log.slice(1).map((entry) => [entry.fault, entry.bytes])).toEqual([
      ["short", 10],
      [null, 50_000],
    ]);
  });

  it("refuses a response for another range", async () => {
    const server = await serve();
    const source = await open(server);
    server.fail({ kind: "wrong-range" });
    const error = await failure(source.read(100, 50));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/asked for bytes 100-149.*got Content-Range bytes 101-149/);
  });

  it("takes its slice of a 200 from a server that ignores Range, discarding the rest unread", async () => {
    const big = randomBytes(2_000_000, 3);
    const server = await serve(big, { ranges: false });
    const source = await open(server);
    expect(source.size).toBe(big.length);
    // The open request's body was not kept, nor read on.
    expect(source.bytesReceived).toBeLessThan(big.length / 4);
    const before = source.bytesReceived;
    expect(sameBytes(await source.read(1000, 2000), slice(1000, 2000, big))).toBe(true);
    expect(source.bytesReceived - before).toBeLessThan(big.length / 4);
    expect(sameBytes(await source.read(big.length - 40, 40), slice(big.length - 40, 40, big))).toBe(true);
    expect(server.log.map((entry) => entry.status)).toEqual([200, 200, 200]);

    // One request answered with 200 by a server that does ranges otherwise.
    const ranged = await serve();
    const other = await open(ranged);
    ranged.fail({ kind: "ignore-range" });
    expect(sameBytes(await other.read(5, 100_000), slice(5, 100_000))).toBe(true);
    expect(ranged.log.map((entry) => entry.status)).toEqual([206, 200]);
  });

  it("learns the size of a chunked 200 without Content-Length by streaming, keeping only the end", async () => {
    const server = await serve(FILE, { ranges: false, contentLength: false });
    const source = await open(server);
    expect(source.size).toBe(FILE.length);
    expect(source.bytesReceived).toBe(FILE.length);
    expect(sameBytes(await source.read(FILE.length - 1000, 1000), slice(FILE.length - 1000, 1000))).toBe(true);
    expect(source.requests).toBe(1);
    expect(sameBytes(await source.read(0, 1000), slice(0, 1000))).toBe(true);
  });

  it("gives up on a request that takes longer than timeoutMs", async () => {
    const server = await serve(FILE, { latencyMs: 200 });
    const error = await failure(HttpSource.open(server.url(), { ...FAST, timeoutMs: 30, maxAttempts: 2 }));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/no complete response within 30 ms/);
  });

  it("fails after close", async () => {
    const source = await open(await serve());
    await source.close();
    expect(await codeOfAsync(source.read(0, 10))).toBe("IO_ERROR");
  });
});

describe("HttpSource and a file that changes", () => {
  it("fails with IO_ERROR on a 412 and never retries it", async () => {
    const server = await serve();
    const source = await open(server, { maxAttempts: 5 });
    const changed = randomBytes(FILE.length, 9);
    server.fail({ kind: "change", content: changed });
    const error = await failure(source.read(0, 1000, "tensor z frame"));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/file changed on the server.*tensor z frame.*412/);
    expect(server.log.slice(1).map((entry) => [entry.ifMatch, entry.status])).toEqual([[source.etag, 412]]);
    // Later reads keep failing, and none returns bytes of the new version.
    expect(await codeOfAsync(source.read(0, 1000))).toBe("IO_ERROR");
    expect(await codeOfAsync(source.readRanges([{ offset: 0, length: 10 }]))).toBe("IO_ERROR");
    // The kept tail is of the opened version, so it is still served.
    expect(sameBytes(await source.read(FILE.length - 40, 40), slice(FILE.length - 40, 40))).toBe(true);
  });

  it("catches a new ETag itself when the server ignores If-Match", async () => {
    const server = await serve(FILE, { honorIfMatch: false });
    const source = await open(server);
    server.setContent(randomBytes(FILE.length, 10));
    const error = await failure(source.read(0, 1000));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/file changed.*ETag went from/);
    expect(server.log).toHaveLength(2);
  });

  it("a change between retries fails the read instead of mixing versions", async () => {
    const server = await serve(FILE, { honorIfMatch: false });
    const source = await open(server);
    server.fail({ kind: "drop", afterBytes: 1000 }, { kind: "change", content: randomBytes(FILE.length, 11) });
    const error = await failure(source.read(0, 100_000));
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/changed/);
    expect(server.log.slice(1).map((entry) => entry.fault)).toEqual(["drop", "change"]);
  });
});

describe("HttpSource.readRanges", () => {
  it("joins near ranges into one request and returns the pieces in the order asked", async () => {
    const server = await serve();
    const source = await open(server, { gapBytes: 100 });
    const ranges = [
      { offset: 50_000, length: 10 }, // joins the next: 90 bytes apart
      { offset: 50_100, length: 20 },
      { offset: 0, length: 100 }, // joins 100..200 exactly adjacent
      { offset: 100, length: 100 },
      { offset: 300, length: 5 }, // 100 bytes after 200: joins
      { offset: 50_060, length: 10 }, // between the first two
      { offset: 20_000, length: 1 }, // alone
      { offset: FILE.length - 10, length: 10 }, // in the kept tail: no request
      { offset: 7, length: 0 },
      { offset: 10, length: 50 }, // inside 0..100
    ];
    const pieces = await source.readRanges(ranges);
    expect(pieces.map((piece) => piece.length)).toEqual(ranges.map((range) => range.length));
    ranges.forEach(({ offset, length }, i) => expect(sameBytes(pieces[i], slice(offset, length))).toBe(true));
    expect(
      server.log
        .slice(1)
        .map((entry) => entry.range)
        .sort(),
    ).toEqual(["bytes=0-304", "bytes=20000-20000", "bytes=50000-50119"].sort());
    expect(source.requests).toBe(4);
    expect(source.bytesReceived).toBe(TAIL + 305 + 1 + 120);
  });

  it("keeps at most `concurrency` requests in flight", async () => {
    const server = await serve(FILE, { latencyMs: 25 });
    const source = await open(server, { concurrency: 3, gapBytes: 0 });
    server.clearLog();
    const ranges = Array.from({ length: 10 }, (_, i) => ({ offset: i * 20_000, length: 1000 }));
    const pieces = await source.readRanges(ranges);
    ranges.forEach(({ offset, length }, i) => expect(sameBytes(pieces[i], slice(offset, length))).toBe(true));
    expect(server.log).toHaveLength(10);
    expect(server.maxConcurrent).toBe(3);

    const serial = await open(server, { concurrency: 1, gapBytes: 0 });
    server.clearLog();
    await serial.readRanges(ranges);
    expect(server.maxConcurrent).toBe(1);
  });

  it("does not join past maxRequestBytes, and read is the one-range case", async () => {
    const server = await serve();
    const source = await open(server, { gapBytes: 1000, maxRequestBytes: 4096 });
    const pieces = await source.readRanges([
      { offset: 0, length: 3000 },
      { offset: 3000, length: 3000 },
    ]);
    expect(sameBytes(pieces[1], slice(3000, 3000))).toBe(true);
    expect(server.log.slice(1).map((entry) => entry.range)).toEqual(["bytes=0-2999", "bytes=3000-5999"]);
    const [one] = await source.readRanges([{ offset: 123, length: 456 }]);
    expect(sameBytes(one, await source.read(123, 456))).toBe(true);
    expect(server.log.slice(3).map((entry) => entry.range)).toEqual(["bytes=123-578", "bytes=123-578"]);
  });

  it("retries a failed group and reports a failure that persists", async () => {
    const server = await serve();
    const source = await open(server, { gapBytes: 0, concurrency: 2, maxAttempts: 2 });
    server.fail({ kind: "drop", afterBytes: 10 });
    const ranges = [
      { offset: 0, length: 1000 },
      { offset: 100_000, length: 1000 },
    ];
    const pieces = await source.readRanges(ranges);
    ranges.forEach(({ offset, length }, i) => expect(sameBytes(pieces[i], slice(offset, length))).toBe(true));
    expect(source.retries).toBe(1);

    server.fail({ kind: "status", status: 500 }, { kind: "status", status: 500 }, { kind: "status", status: 500 }, { kind: "status", status: 500 });
    expect(await codeOfAsync(source.readRanges(ranges))).toBe("IO_ERROR");
  });
});

describe("QansReader over HttpSource", () => {
  it("opens a file with one request and reads a tensor with one more", async () => {
    const file = await writeToMemory([
      { tensor: gaussianTensor("a", [256, 256], 1), encoding: { encoding: "float-planes" } },
      { tensor: gaussianTensor("b", [64, 64], 2), encoding: { encoding: "int-quant", bits: 4 } },
      { tensor: gaussianTensor("c", [32], 3, "BF16"), encoding: { encoding: "raw" } },
    ]);
    const server = await serve(file);
    const reader = await QansReader.open(await open(server));
    expect(server.log).toHaveLength(1);
    const memory = await QansReader.open(new MemorySource(file));
    const a = await reader.readTensor("a");
    expect(sameBytes(a.data, (await memory.readTensor("a")).data)).toBe(true);
    expect(server.log).toHaveLength(2);
    for (const name of ["b", "c"]) expect(sameBytes((await reader.readTensor(name)).data, (await memory.readTensor(name)).data)).toBe(true);
  });
});
