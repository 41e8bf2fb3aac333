import type { ByteSource } from "../io/source.js";

/** Wraps a ByteSource and records every read, to show and test how little random access touches. */
export class CountingSource implements ByteSource {
  readonly reads: { offset: number; length: number }[] = [];

  constructor(private readonly inner: ByteSource) {}

  get size(): number {
    return this.inner.size;
  }

  get bytesRead(): number {
    return this.reads.reduce((sum, r) => sum + r.length, 0);
  }

  async read(offset: number, length: number, what?: string): Promise<Uint8Array> {
    this.reads.push({ offset, length });
    return this.inner.read(offset, length, what);
  }

  reset(): void {
    this.reads.length = 0;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
