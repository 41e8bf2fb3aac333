import { QansError } from "../errors.js";
import { describe, type ByteRange, type ByteSource } from "./source.js";

export interface CachedSourceOptions {
  /** Most bytes of pages kept; the least recently used pages go first. */
  budgetBytes: number;
  /** Size of a cached page, a power of two; default 64 KiB. */
  pageBytes?: number;
}

/**
 * A ByteSource that keeps the pages it has read from another source, up to a byte budget, least
 * recently used out first: reading the same tensors again (a layer decoded on the fly at every
 * step, say) costs no further I/O. A read fetches only its missing pages, each run of consecutive
 * missing pages as one range of the underlying source. Reads larger than the budget go straight
 * through and are not cached.
 */
export class CachedSource implements ByteSource {
  private readonly pages = new Map<number, Uint8Array>();
  private cachedBytes = 0;
  private readonly pageBytes: number;
  private readonly budgetBytes: number;
  /** Pages served from the cache, and pages fetched from the underlying source. */
  hits = 0;
  misses = 0;

  constructor(
    private readonly inner: ByteSource,
    options: CachedSourceOptions,
  ) {
    const pageBytes = options.pageBytes ?? 64 * 1024;
    if (!Number.isSafeInteger(pageBytes) || pageBytes < 1 || (pageBytes & (pageBytes - 1)) !== 0) {
      throw new QansError("INVALID_ARGUMENT", `cache page size ${pageBytes} is not a power of two`);
    }
    if (!Number.isSafeInteger(options.budgetBytes) || options.budgetBytes < 0) {
      throw new QansError("INVALID_ARGUMENT", `cache budget ${options.budgetBytes} is not a byte count`);
    }
    this.pageBytes = pageBytes;
    this.budgetBytes = options.budgetBytes;
  }

  get size(): number {
    return this.inner.size;
  }

  get name(): string {
    return describe(this.inner);
  }

  /** Bytes of pages held now; never above the budget. */
  get heldBytes(): number {
    return this.cachedBytes;
  }

  async read(offset: number, length: number, what = "data"): Promise<Uint8Array> {
    // Invalid and out-of-range reads get the underlying source's errors; oversized ones bypass the cache.
    const cacheable = Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length > 0 && offset + length <= this.size;
    if (!cacheable || length > this.budgetBytes) return this.inner.read(offset, length, what);
    const first = Math.floor(offset / this.pageBytes);
    const last = Math.floor((offset + length - 1) / this.pageBytes);
    const held = new Map<number, Uint8Array>();
    const missing: number[] = [];
    for (let page = first; page <= last; page++) {
      const bytes = this.pages.get(page);
      if (bytes) {
        held.set(page, bytes);
        this.hits++;
      } else {
        missing.push(page);
      }
    }
    await this.fetch(missing, held, what);
    const out = new Uint8Array(length);
    for (let page = first; page <= last; page++) {
      const bytes = held.get(page)!;
      const pageStart = page * this.pageBytes;
      const from = Math.max(offset, pageStart);
      const to = Math.min(offset + length, pageStart + bytes.length);
      out.set(bytes.subarray(from - pageStart, to - pageStart), from - offset);
      this.touch(page, bytes);
    }
    return out;
  }

  async readRanges(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    return Promise.all(ranges.map(({ offset, length, what }) => this.read(offset, length, what)));
  }

  async close(): Promise<void> {
    this.pages.clear();
    this.cachedBytes = 0;
    await this.inner.close();
  }

  /** Reads `missing` pages (ascending), each run of consecutive pages as one range, into `held`. */
  private async fetch(missing: number[], held: Map<number, Uint8Array>, what: string): Promise<void> {
    const runs: [number, number][] = [];
    for (const page of missing) {
      const run = runs[runs.length - 1];
      if (run && run[1] === page) run[1] = page + 1;
      else runs.push([page, page + 1]);
    }
    const ranges = runs.map(([start, end]) => {
      const offset = start * this.pageBytes;
      return { offset, length: Math.min(end * this.pageBytes, this.size) - offset, what };
    });
    const fetched = this.inner.readRanges ? await this.inner.readRanges(ranges) : await Promise.all(ranges.map((r) => this.inner.read(r.offset, r.length, r.what)));
    runs.forEach(([start, end], i) => {
      for (let page = start; page < end; page++) {
        const from = (page - start) * this.pageBytes;
        held.set(page, fetched[i].slice(from, from + this.pageBytes));
        this.misses++;
      }
    });
  }

  /** Marks a page most recently used (a Map iterates in insertion order), then evicts over budget. */
  private touch(page: number, bytes: Uint8Array): void {
    if (this.pages.delete(page)) this.cachedBytes -= bytes.length;
    this.pages.set(page, bytes);
    this.cachedBytes += bytes.length;
    for (const [oldest, old] of this.pages) {
      if (this.cachedBytes <= this.budgetBytes) break;
      this.pages.delete(oldest);
      this.cachedBytes -= old.length;
    }
  }
}
