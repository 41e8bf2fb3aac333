import type { ByteSource } from "../../sdk/index.js";

/** A ByteSource that counts what its reader fetched, to show how little a random read touches. */
export class CountingSource implements ByteSource {
  bytesRead = 0;
  reads = 0;

  constructor(private readonly inner: ByteSource) {}

  get size(): number {
    return this.inner.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const bytes = await this.inner.read(offset, length);
    this.bytesRead += bytes.length;
    this.reads++;
    return bytes;
  }

  reset(): void {
    this.bytesRead = 0;
    this.reads = 0;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
