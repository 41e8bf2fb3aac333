import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the server does to one request, instead of answering it plainly:
 * - `drop`: sends the headers and `afterBytes` bytes of the body, then cuts the connection;
 * - `reset`: cuts the connection before any response;
 * - `status`: answers `status` (503, say) with an empty body;
 * - `short`: answers 206 with the Content-Range asked for but only `bytes` bytes of body (and a
 *   Content-Length saying so);
 * - `ignore-range`: answers 200 with the whole file;
 * - `change`: replaces the file (new ETag) before answering the request as usual;
 * - `wrong-range`: answers 206 with the range shifted by one byte.
 */
export type Fault =
  | { kind: "drop"; afterBytes: number }
  | { kind: "reset" }
  | { kind: "status"; status: number }
  | { kind: "short"; bytes: number }
  | { kind: "ignore-range" }
  | { kind: "change"; content: Uint8Array }
  | { kind: "wrong-range" };

export interface RequestLogEntry {
  method: string;
  /** The Range request header, or null. */
  range: string | null;
  ifMatch: string | null;
  /** The status sent, or 0 when the connection was cut before a response. */
  status: number;
  /** Body bytes written, cut short by a fault or by the client going away. */
  bytes: number;
  /** The fault applied to this request, if any. */
  fault: Fault["kind"] | null;
}

export interface TestServerOptions {
  /** Answers Range requests (default); false answers every GET with 200 and the whole file. */
  ranges?: boolean;
  /** Sends an ETag (default) and honours If-Match with 412. */
  etag?: boolean;
  /** Honours If-Match (default). False still sends ETags, so only the client's own check catches a change. */
  honorIfMatch?: boolean;
  /** Waits this long before answering each request, so parallel requests overlap. */
  latencyMs?: number;
  /** Writes bodies in chunks of this size. Default 16 KiB. */
  chunkBytes?: number;
  /** Sends Content-Length on 200 responses (default); false sends them chunked, size unannounced. */
  contentLength?: boolean;
}

/**
 * A loopback HTTP server for one file's bytes, with single-range support, ETag/If-Match, scriptable
 * faults, and a log of every request. Faults queued with `fail` apply to the next requests in order.
 */
export class TestHttpServer {
  readonly log: RequestLogEntry[] = [];
  /** The most requests that were being answered at once. */
  maxConcurrent = 0;
  private active = 0;
  private readonly faults: Fault[] = [];
  private version = 0;
  private content: Uint8Array;
  private tag = "";

  private constructor(
    private readonly server: Server,
    content: Uint8Array,
    readonly options: Required<TestServerOptions>,
  ) {
    this.content = content;
    this.retag();
  }

  static async start(content: Uint8Array, options: TestServerOptions = {}): Promise<TestHttpServer> {
    const settings: Required<TestServerOptions> = { ranges: true, etag: true, honorIfMatch: true, latencyMs: 0, chunkBytes: 16 * 1024, contentLength: true, ...options };
    let self: TestHttpServer | undefined;
    const server = createServer((request, response) => {
      self!.handle(request, response).catch(() => response.destroy());
    });
    self = new TestHttpServer(server, content, settings);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return self;
  }

  /** The file's URL; `path` is ignored by the server, which serves one file at every path. */
  url(path = "/model.qans"): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}${path}`;
  }

  get etag(): string {
    return this.tag;
  }

  get bytes(): Uint8Array {
    return this.content;
  }

  /** Queues faults for the next requests, one request each. */
  fail(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  /** Replaces the file now: later requests see the new bytes and a new ETag. */
  setContent(content: Uint8Array): void {
    this.content = content;
    this.retag();
  }

  clearLog(): void {
    this.log.length = 0;
    this.maxConcurrent = 0;
  }

  /** Request log entries with a body, i.e. the GETs. */
  get gets(): RequestLogEntry[] {
    return this.log.filter((entry) => entry.method === "GET");
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private retag(): void {
    this.version++;
    this.tag = `"${createHash("sha256").update(this.content).digest("hex").slice(0, 16)}-${this.version}"`;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const fault = this.faults.shift() ?? null;
    const entry: RequestLogEntry = {
      method: request.method ?? "",
      range: header(request, "range"),
      ifMatch: header(request, "if-match"),
      status: 0,
      bytes: 0,
      fault: fault?.kind ?? null,
    };
    this.log.push(entry);
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    try {
      await this.answer(request, response, entry, fault);
    } finally {
      this.active--;
    }
  }

  private async answer(request: IncomingMessage, response: ServerResponse, entry: RequestLogEntry, fault: Fault | null): Promise<void> {
    request.resume();
    if (this.options.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.latencyMs));
    if (fault?.kind === "change") this.setContent(fault.content);
    if (fault?.kind === "reset") {
      request.socket.destroy();
      return;
    }
    const size = this.content.length;
    const headers: Record<string, string> = { "accept-ranges": this.options.ranges ? "bytes" : "none", "content-type": "application/octet-stream" };
    if (this.options.etag) headers.etag = this.tag;
    const send = (status: number, body: Uint8Array, extra: Record<string, string> = {}, cutAfter?: number): Promise<void> => {
      entry.status = status;
      const all: Record<string, string> = { ...headers, "content-length": String(body.length), ...extra };
      if (status === 200 && !this.options.contentLength) delete all["content-length"];
      response.writeHead(status, all);
      return this.writeBody(request, response, entry, body, cutAfter);
    };

    if (request.method !== "GET" && request.method !== "HEAD") return send(405, new Uint8Array(0));
    if (fault?.kind === "status") return send(fault.status, new Uint8Array(0));
    const ifMatch = entry.ifMatch;
    if (this.options.etag && this.options.honorIfMatch && ifMatch !== null && ifMatch !== "*" && !ifMatch.split(",").some((tag) => tag.trim() === this.tag)) {
      return send(412, new Uint8Array(0));
    }
    const head = request.method === "HEAD";
    const whole = (): Promise<void> => send(200, head ? new Uint8Array(0) : this.content, { "content-length": String(size) });
    if (!this.options.ranges || fault?.kind === "ignore-range" || entry.range === null) {
      return fault?.kind === "drop" ? send(200, this.content, {}, fault.afterBytes) : whole();
    }
    const range = parseRange(entry.range, size);
    if (range === "ignore") return whole();
    if (range === "unsatisfiable") return send(416, new Uint8Array(0), { "content-range": `bytes */${size}` });
    let { start, end } = range;
    if (fault?.kind === "wrong-range") {
      start = Math.min(start + 1, end);
    }
    const body = this.content.subarray(start, end + 1);
    const contentRange = { "content-range": `bytes ${start}-${end}/${size}` };
    if (head) return send(206, new Uint8Array(0), { ...contentRange, "content-length": String(body.length) });
    if (fault?.kind === "short") return send(206, body.subarray(0, Math.min(fault.bytes, body.length)), contentRange);
    if (fault?.kind === "drop") return send(206, body, contentRange, fault.afterBytes);
    return send(206, body, contentRange);
  }

  /** Writes `body` in chunks, counting what was written; `cutAfter` cuts the connection after that many bytes. */
  private async writeBody(request: IncomingMessage, response: ServerResponse, entry: RequestLogEntry, body: Uint8Array, cutAfter?: number): Promise<void> {
    const limit = cutAfter === undefined ? body.length : Math.min(cutAfter, body.length);
    for (let at = 0; at < limit; at += this.options.chunkBytes) {
      if (response.destroyed) return;
      const chunk = body.subarray(at, Math.min(limit, at + this.options.chunkBytes));
      if (cutAfter !== undefined) {
        // Each chunk is flushed before the next, so that all of them leave before the cut.
        await new Promise<void>((resolve) => response.write(chunk, () => resolve()));
        entry.bytes += chunk.length;
        continue;
      }
      const more = response.write(chunk);
      entry.bytes += chunk.length;
      if (!more) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            response.off("drain", done);
            response.off("close", done);
            resolve();
          };
          response.on("drain", done);
          response.on("close", done);
        });
      }
    }
    if (cutAfter !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      request.socket.destroy();
      return;
    }
    response.end();
  }
}

function header(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

/** One `bytes=` range, resolved against `size` as RFC 9110 does; several ranges are ignored (200). */
function parseRange(value: string, size: number): { start: number; end: number } | "ignore" | "unsatisfiable" {
  const match = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!match || (match[1] === "" && match[2] === "")) return "ignore";
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || (match[2] !== "" && Number(match[2]) < start)) return start >= size ? "unsatisfiable" : "ignore";
  return { start, end };
}
