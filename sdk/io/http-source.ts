import { constants as bufferConstants } from "node:buffer";
import { QansError } from "../errors.js";
import type { ByteRange, ByteSource } from "./source.js";

/** Options of `HttpSource.open`; every field has a default suited to a file served over a network. */
export interface HttpSourceOptions {
  /**
   * Bytes of the file's end fetched at open time, with a suffix range request, and kept: a reader's
   * first reads are the trailer and the index at the end of the file. 0 learns the size with a HEAD
   * request instead and keeps nothing. Default 65536.
   */
  tailBytes?: number;
  /** Attempts per request, the first included, on 5xx, 408, 429, network errors and short bodies. Default 4. */
  maxAttempts?: number;
  /** Delay before the first retry, in milliseconds; it doubles for each retry after. Default 100. */
  retryDelayMs?: number;
  /** Cap on any one retry delay, in milliseconds. Default 2000. */
  maxRetryDelayMs?: number;
  /** One attempt (response and body) is abandoned, and retried, after this many milliseconds. Default 60000. */
  timeoutMs?: number;
  /** `readRanges` joins two ranges into one request when at most this many bytes lie between them. Default 65536. */
  gapBytes?: number;
  /** `readRanges` never joins ranges into a request longer than this, unless a single range is. Default 16 MiB. */
  maxRequestBytes?: number;
  /** `readRanges` keeps at most this many requests in flight. Default 4. */
  concurrency?: number;
  /** Extra request headers, an Authorization header say. Range, If-Match and Accept-Encoding are set by the source. */
  headers?: Record<string, string>;
}


interface Settings {
  tailBytes: number;
  maxAttempts: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  timeoutMs: number;
  gapBytes: number;
  maxRequestBytes: number;
  concurrency: number;
  headers: Record<string, string>;
}

/** The version of the file that the source opened: later responses must carry the same one. */
interface Validator {
  etag: string | null;
  lastModified: string | null;
}

/** A failure that another attempt may cure: a 5xx, a dropped connection, a short body. */
class Transient extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULTS: Settings = {
  tailBytes: 64 * 1024,
  maxAttempts: 4,
  retryDelayMs: 100,
  maxRetryDelayMs: 2000,
  timeoutMs: 60_000,
  gapBytes: 64 * 1024,
  maxRequestBytes: 16 * 1024 * 1024,
  concurrency: 4,
  headers: {},
};

/**
 * A file on an HTTP(S) server, read with Range requests through Node's `fetch`.
 *
 * `open` costs one request: a suffix range for the file's last `tailBytes`, whose Content-Range
 * gives the size and whose bytes are kept, so a reader's trailer and (small) index reads need no
 * further request. Each `read` is one `Range: bytes=a-b` GET (or none, inside the kept tail);
 * `readRanges` joins near ranges and runs the requests in parallel.
 *
 * Every request after open carries `If-Match` with the ETag of the opened file, and every response's
 * ETag and total size are compared with it, so a file replaced on the server fails the read with
 * IO_ERROR ("changed") rather than mixing bytes of two versions. Server errors, dropped connections
 * and short bodies are retried with exponential backoff; a changed file never is. A server that
 * ignores Range (200) still gives correct bytes: the body is streamed, the range copied out, and the
 * rest discarded without being kept.
 */
export class HttpSource implements ByteSource {
  private requestCount = 0;
  private byteCount = 0;
  private retryCount = 0;
  private closed = false;
  private readonly inFlight = new Set<AbortController>();

  private constructor(
    /** The URL without credentials or query string: the name used in error messages. */
    readonly name: string,
    private readonly url: string,
    readonly size: number,
    private readonly validator: Validator,
    /** The file's last bytes, kept from open: bytes [size - tail.length, size). */
    private readonly tail: Uint8Array,
    private readonly settings: Settings,
  ) {}

  /** Opens `url`, learning its size and version with one request (see the class comment). */
  static async open(url: string, options: HttpSourceOptions = {}): Promise<HttpSource> {
    const settings = resolveOptions(options);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new QansError("INVALID_ARGUMENT", `not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new QansError("INVALID_ARGUMENT", `${displayName(parsed)}: only http and https URLs can be read`);
    }
    const name = displayName(parsed);
    if (parsed.username !== "" || parsed.password !== "") {
      // fetch refuses URLs with credentials: they travel as a Basic Authorization header instead.
      const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
      if (settings.headers.authorization === undefined) settings.headers = { ...settings.headers, authorization: `Basic ${Buffer.from(credentials).toString("base64")}` };
      parsed.username = "";
      parsed.password = "";
    }
    const opener = new HttpSource(name, parsed.href, 0, { etag: null, lastModified: null }, new Uint8Array(0), settings);
    const { size, validator, tail } = await opener.withRetries("size and end of file", (signal) => opener.openAttempt(signal));
    const source = new HttpSource(name, parsed.href, size, validator, tail, settings);
    source.requestCount = opener.requestCount;
    source.byteCount = opener.byteCount;
    source.retryCount = opener.retryCount;
    return source;
  }

  /** HTTP requests sent, retries and the one at open included. */
  get requests(): number {
    return this.requestCount;
  }

  /** Response body bytes received, including any that a server ignoring Range sent and that were discarded. */
  get bytesReceived(): number {
    return this.byteCount;
  }

  /** Requests that were retries of a failed attempt. */
  get retries(): number {
    return this.retryCount;
  }

  /** The opened file's ETag, or null when the server sent none. */
  get etag(): string | null {
    return this.validator.etag;
  }

  async read(offset: number, length: number, what = "data"): Promise<Uint8Array> {
    this.checkRange(offset, length, what);
    if (length === 0) return new Uint8Array(0);
    const cached = this.fromTail(offset, length);
    if (cached) return cached;
    return this.fetchSpan(offset, offset + length, what);
  }

  /**
   * Reads several ranges, returned in the order given. Ranges at most `gapBytes` apart are fetched
   * with one request (the bytes between them are received and dropped), and at most `concurrency`
   * requests run at once. Pieces may share memory with each other.
   */
  async readRanges(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    for (const { offset, length, what = "data" } of ranges) this.checkRange(offset, length, what);
    const out: Uint8Array[] = new Array(ranges.length);
    const pending: number[] = [];
    ranges.forEach(({ offset, length }, i) => {
      const cached = length === 0 ? new Uint8Array(0) : this.fromTail(offset, length);
      if (cached) out[i] = cached;
      else pending.push(i);
    });
    pending.sort((a, b) => ranges[a].offset - ranges[b].offset);

    const groups: { start: number; end: number; members: number[] }[] = [];
    for (const i of pending) {
      const { offset, length } = ranges[i];
      const end = offset + length;
      const last = groups[groups.length - 1];
      if (last && offset <= last.end + this.settings.gapBytes && Math.max(end, last.end) - last.start <= this.settings.maxRequestBytes) {
        last.end = Math.max(last.end, end);
        last.members.push(i);
      } else {
        groups.push({ start: offset, end, members: [i] });
      }
    }

    let next = 0;
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < groups.length) {
        const group = groups[next++];
        const what = group.members.length === 1 ? (ranges[group.members[0]].what ?? "data") : `${group.members.length} ranges`;
        try {
          const bytes = await this.fetchSpan(group.start, group.end, what);
          for (const i of group.members) {
            const from = ranges[i].offset - group.start;
            out[i] = bytes.subarray(from, from + ranges[i].length);
          }
        } catch (error) {
          failure ??= error;
        }
      }
    };
    const workers = Math.min(this.settings.concurrency, groups.length);
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure !== undefined) throw failure;
    return out;
  }

  /** Ends requests in flight; later reads fail with IO_ERROR. */
  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.inFlight) controller.abort();
  }

  /** The ByteSource contract: a range is checked against the size before anything is allocated for it. */
  private checkRange(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new QansError("INVALID_ARGUMENT", `${this.name}: bad read of ${what} (offset ${offset}, length ${length})`);
    }
    if (offset + length > this.size) {
      throw new QansError("TRUNCATED", `${this.name}: ${what} needs bytes ${offset}..${offset + length} but the file has ${this.size} bytes`);
    }
    if (length > bufferConstants.MAX_LENGTH) {
      throw new QansError("LIMIT_EXCEEDED", `${this.name}: ${what} at offset ${offset} is ${length} bytes, more than one buffer can hold`);
    }
    if (this.closed) throw new QansError("IO_ERROR", `${this.name}: read of ${what} after close`);
  }

  /** A copy of the range when the kept tail holds all of it. */
  private fromTail(offset: number, length: number): Uint8Array | undefined {
    const tailStart = this.size - this.tail.length;
    if (this.tail.length === 0 || offset < tailStart) return undefined;
    return this.tail.slice(offset - tailStart, offset - tailStart + length);
  }

  /**
   * Bytes [start, end) in a new buffer of exactly that length: the part before the kept tail comes
   * from the server, the rest (if any) from the tail.
   */
  private async fetchSpan(start: number, end: number, what: string): Promise<Uint8Array> {
    const out = new Uint8Array(end - start);
    const tailStart = this.size - this.tail.length;
    const fetchEnd = this.tail.length === 0 ? end : Math.min(end, tailStart);
    const into = out.subarray(0, fetchEnd - start);
    await this.withRetries(what, (signal) => this.rangeAttempt(start, into, what, signal));
    if (end > fetchEnd) out.set(this.tail.subarray(fetchEnd - tailStart, end - tailStart), fetchEnd - start);
    return out;
  }

  /** Runs `attempt` until it succeeds, fails for good, or `maxAttempts` transient failures have happened. */
  private async withRetries<T>(what: string, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      if (this.closed) throw new QansError("IO_ERROR", `${this.name}: read of ${what} after close`);
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.settings.timeoutMs);
      this.inFlight.add(controller);
      try {
        return await attempt(controller.signal);
      } catch (error) {
        const failure = classify(error, timedOut, this.closed, this.settings.timeoutMs);
        if (failure instanceof QansError) throw failure;
        if (n >= this.settings.maxAttempts) {
          throw new QansError("IO_ERROR", `${this.name}: reading ${what} failed after ${n} attempts: ${failure.message}`, { cause: failure });
        }
      } finally {
        clearTimeout(timer);
        this.inFlight.delete(controller);
      }
      const delay = Math.min(this.settings.maxRetryDelayMs, this.settings.retryDelayMs * 2 ** (n - 1));
      // Jitter spreads the retries of parallel requests apart.
      await sleep(delay * (0.5 + Math.random() / 2));
      this.retryCount++;
    }
  }

  private async send(method: "GET" | "HEAD", range: string | null, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { ...this.settings.headers, "accept-encoding": "identity" };
    if (range !== null) headers.range = range;
    if (this.validator.etag !== null && !this.validator.etag.startsWith("W/")) headers["if-match"] = this.validator.etag;
    else if (this.validator.lastModified !== null) headers["if-unmodified-since"] = this.validator.lastModified;
    this.requestCount++;
    return fetch(this.url, { method, headers, signal, redirect: "follow" });
  }

  private async openAttempt(signal: AbortSignal): Promise<{ size: number; validator: Validator; tail: Uint8Array }> {
    const { tailBytes } = this.settings;
    const response = await this.send(tailBytes === 0 ? "HEAD" : "GET", tailBytes === 0 ? null : `bytes=-${tailBytes}`, signal);
    const validator: Validator = { etag: response.headers.get("etag"), lastModified: response.headers.get("last-modified") };
    const what = "size and end of file";
    try {
      this.checkStatus(response, what, true);
      checkIdentity(response, this.name);
      if (response.status === 416) {
        // A suffix range of an empty file cannot be satisfied.
        const size = parseUnsatisfiedSize(response.headers.get("content-range"));
        if (size !== 0) throw new QansError("IO_ERROR", `${this.name}: HTTP 416 for the last ${tailBytes} bytes of a ${size ?? "unknown"}-byte file`);
        return { size: 0, validator, tail: new Uint8Array(0) };
      }
      if (response.status === 206) {
        const range = parseContentRange(response.headers.get("content-range"));
        if (!range) throw new QansError("IO_ERROR", `${this.name}: HTTP 206 without a valid Content-Range (${response.headers.get("content-range")})`);
        const { start, end, total } = range;
        if (end !== total - 1 || start !== Math.max(0, total - tailBytes)) {
          throw new QansError("IO_ERROR", `${this.name}: asked for the last ${tailBytes} bytes, got Content-Range ${response.headers.get("content-range")}`);
        }
        const tail = await this.readBody(response, 0, end - start + 1, end - start + 1, what);
        return { size: total, validator, tail };
      }
      // 200: no ranges here (or HEAD). Content-Length gives the size; a small file is kept whole.
      const declared = contentLength(response);
      if (declared !== null) {
        if (tailBytes === 0 || declared > tailBytes) {
          await response.body?.cancel().catch(() => undefined);
          return { size: declared, validator, tail: new Uint8Array(0) };
        }
        return { size: declared, validator, tail: await this.readBody(response, 0, declared, declared, what) };
      }
      if (tailBytes === 0) throw new QansError("IO_ERROR", `${this.name}: HEAD response gives no Content-Length, so the file's size is unknown`);
      return { ...(await this.readSizeAndTail(response, tailBytes)), validator };
    } catch (error) {
      await response.body?.cancel().catch(() => undefined);
      throw error;
    }
  }

  /** One GET for the bytes at `offset` that fill `into`. */
  private async rangeAttempt(offset: number, into: Uint8Array, what: string, signal: AbortSignal): Promise<void> {
    const length = into.length;
    const last = offset + length - 1;
    const response = await this.send("GET", `bytes=${offset}-${last}`, signal);
    try {
      this.checkStatus(response, what, false);
      checkIdentity(response, this.name);
      this.checkVersion(response, what);
      if (response.status === 206) {
        const header = response.headers.get("content-range");
        const range = parseContentRange(header);
        if (range && range.total !== this.size) throw this.changed(what, `its size went from ${this.size} to ${range.total} bytes`);
        if (!range || range.start !== offset || range.end !== last) {
          throw new QansError("IO_ERROR", `${this.name}: asked for bytes ${offset}-${last} of ${what}, got Content-Range ${header}`);
        }
        const declared = contentLength(response);
        if (declared !== null && declared > length) {
          throw new QansError("IO_ERROR", `${this.name}: ${what}: ${declared}-byte body for a ${length}-byte range`);
        }
        if (declared !== null && declared < length) throw new Transient(`short body: ${declared} of ${length} bytes of ${what}`);
        await this.readBody(response, 0, length, length, what, into);
        return;
      }
      // 200: the server ignored Range and sends the whole file from the start.
      const declared = contentLength(response);
      if (declared !== null && declared !== this.size) throw this.changed(what, `its size went from ${this.size} to ${declared} bytes`);
      await this.readBody(response, offset, length, this.size, what, into);
    } catch (error) {
      await response.body?.cancel().catch(() => undefined);
      throw error;
    }
  }

  /** Throws for any status but 200 and 206 (and 416 at open): retryable ones as Transient. */
  private checkStatus(response: Response, what: string, opening: boolean): void {
    const { status } = response;
    if (status === 200 || status === 206 || (opening && status === 416)) return;
    if (status === 412) throw this.changed(what, "the server's copy no longer matches the opened version (HTTP 412)");
    if (status === 416) {
      throw new QansError("TRUNCATED", `${this.name}: HTTP 416 for ${what}: the range passes the end of the file on the server (${response.headers.get("content-range") ?? "no Content-Range"})`);
    }
    const message = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ""} from ${this.name}`;
    if (status >= 500 || status === 408 || status === 429) throw new Transient(message, status);
    throw new QansError("IO_ERROR", `${message} while reading ${what}`);
  }

  /** A response must be of the version opened: same ETag (or Last-Modified when there is no ETag). */
  private checkVersion(response: Response, what: string): void {
    const etag = response.headers.get("etag");
    if (this.validator.etag !== null) {
      if (etag !== null && etag !== this.validator.etag) throw this.changed(what, `its ETag went from ${this.validator.etag} to ${etag}`);
      return;
    }
    const lastModified = response.headers.get("last-modified");
    if (this.validator.lastModified !== null && lastModified !== null && lastModified !== this.validator.lastModified) {
      throw this.changed(what, `its Last-Modified went from ${this.validator.lastModified} to ${lastModified}`);
    }
  }

  private changed(what: string, detail: string): QansError {
    return new QansError("IO_ERROR", `${this.name}: the file changed on the server while it was being read (${what}): ${detail}`);
  }

  /**
   * Copies body bytes [skip, skip + length) into `out` (a new `length`-byte buffer when not given),
   * and checks that the body is `bodyLength` bytes long. Bytes before `skip` are dropped as they
   * arrive; when the body goes on past the range, the rest is not downloaded (the response is
   * cancelled).
   */
  private async readBody(response: Response, skip: number, length: number, bodyLength: number, what: string, out: Uint8Array = new Uint8Array(length)): Promise<Uint8Array> {
    const body = response.body;
    if (!body) {
      if (bodyLength === 0) return out;
      throw new Transient(`no body for ${what}`);
    }
    const reader = body.getReader();
    let position = 0;
    try {
      for (;;) {
        const bytes = await this.nextChunk(reader, () => `connection lost after ${position} of ${bodyLength} body bytes of ${what}`);
        if (!bytes) break;
        if (position + bytes.length > bodyLength) {
          throw new QansError("IO_ERROR", `${this.name}: the body for ${what} is longer than the ${bodyLength} bytes expected`);
        }
        const from = Math.max(skip, position);
        const to = Math.min(skip + length, position + bytes.length);
        if (from < to) out.set(bytes.subarray(from - position, to - position), from - skip);
        position += bytes.length;
        if (position >= skip + length && bodyLength > skip + length) {
          // Whatever follows the range is not needed.
          await reader.cancel().catch(() => undefined);
          return out;
        }
      }
    } finally {
      reader.releaseLock();
    }
    if (position < bodyLength) throw new Transient(`short body: ${position} of ${bodyLength} bytes of ${what}`);
    return out;
  }

  /**
   * The next chunk of a response body, counted in `bytesReceived`, or undefined at its end. A
   * connection lost mid-body is a Transient failure, described by `lost`.
   */
  private async nextChunk(reader: ReadableStreamDefaultReader<Uint8Array>, lost: () => string): Promise<Uint8Array | undefined> {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw new Transient(lost(), undefined, { cause: error });
    }
    if (chunk.done) return undefined;
    this.byteCount += chunk.value.length;
    return chunk.value;
  }

  /** A 200 without Content-Length: the whole body is streamed to learn its size, keeping only its end. */
  private async readSizeAndTail(response: Response, tailBytes: number): Promise<{ size: number; tail: Uint8Array }> {
    const chunks: Uint8Array[] = [];
    let kept = 0;
    let size = 0;
    const reader = response.body?.getReader();
    if (reader) {
      try {
        for (;;) {
          const bytes = await this.nextChunk(reader, () => `connection lost after ${size} body bytes`);
          if (!bytes) break;
          size += bytes.length;
          chunks.push(bytes);
          kept += bytes.length;
          while (kept - chunks[0].length >= tailBytes) kept -= chunks.shift()!.length;
        }
      } finally {
        reader.releaseLock();
      }
    }
    const all = Buffer.concat(chunks, kept);
    const tail = new Uint8Array(all.subarray(Math.max(0, kept - tailBytes)));
    if (!Number.isSafeInteger(size)) throw new QansError("IO_ERROR", `${this.name}: body too long`);
    return { size, tail };
  }
}

function resolveOptions(options: HttpSourceOptions): Settings {
  const settings: Settings = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof Settings)[]) {
    const value = options[key];
    if (value !== undefined) (settings as unknown as Record<string, unknown>)[key] = value;
  }
  const counts: [keyof Settings, number][] = [
    ["tailBytes", 0],
    ["maxAttempts", 1],
    ["retryDelayMs", 0],
    ["maxRetryDelayMs", 0],
    ["timeoutMs", 1],
    ["gapBytes", 0],
    ["maxRequestBytes", 1],
    ["concurrency", 1],
  ];
  for (const [key, min] of counts) {
    const value = settings[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
      throw new QansError("INVALID_ARGUMENT", `HttpSource option ${key} must be an integer of at least ${min}, not ${String(value)}`);
    }
  }
  // Header names are case-insensitive; the ones the source sets itself are not taken from options.
  const own = new Set(["range", "if-match", "if-unmodified-since", "accept-encoding"]);
  settings.headers = Object.fromEntries(
    Object.entries(settings.headers)
      .map(([key, value]) => [key.toLowerCase(), value] as const)
      .filter(([key]) => !own.has(key)),
  );
  if (settings.tailBytes > bufferConstants.MAX_LENGTH) {
    throw new QansError("INVALID_ARGUMENT", `HttpSource option tailBytes is ${settings.tailBytes}, more than one buffer can hold`);
  }
  return settings;
}

/** A URL as shown in messages: no user name, password, query or fragment, which may hold secrets. */
function displayName(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** A body in a content coding would not be the file's bytes, and its ranges would not be the file's. */
function checkIdentity(response: Response, name: string): void {
  const coding = response.headers.get("content-encoding");
  if (coding !== null && coding.trim() !== "" && coding.trim().toLowerCase() !== "identity") {
    throw new QansError("IO_ERROR", `${name}: the server sent the file with Content-Encoding ${coding}, not as its bytes`);
  }
}

function contentLength(response: Response): number | null {
  const value = response.headers.get("content-length");
  if (value === null || !/^\d+$/.test(value.trim())) return null;
  const n = Number(value.trim());
  return Number.isSafeInteger(n) ? n : null;
}

/** `bytes a-b/total`, with total known; null for anything else. */
function parseContentRange(value: string | null): { start: number; end: number; total: number } | null {
  const match = value === null ? null : /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(value);
  if (!match) return null;
  const [start, end, total] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (![start, end, total].every(Number.isSafeInteger) || start > end || end >= total) return null;
  return { start, end, total };
}

/** The size in a 416's `bytes *\/total`, or null. */
function parseUnsatisfiedSize(value: string | null): number | null {
  const match = value === null ? null : /^\s*bytes\s+\*\/(\d+)\s*$/i.exec(value);
  if (!match) return null;
  const total = Number(match[1]);
  return Number.isSafeInteger(total) ? total : null;
}

/** What a failed attempt means: a QansError ends the read, a Transient is retried. */
function classify(error: unknown, timedOut: boolean, closed: boolean, timeoutMs: number): QansError | Transient {
  if (closed) return new QansError("IO_ERROR", "the source was closed during the read", { cause: error });
  if (error instanceof QansError || error instanceof Transient) return error;
  if (timedOut) return new Transient(`no complete response within ${timeoutMs} ms`, undefined, { cause: error });
  // fetch rejects with a TypeError for refused or reset connections and DNS failures.
  const detail = error instanceof Error ? `${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ""}` : String(error);
  return new Transient(`network error: ${detail}`, undefined, { cause: error });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
