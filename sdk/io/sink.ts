import { concatBytes } from "../format/bytes.js";

/** Where a writer's bytes go, strictly in order: a file, a pipe, or memory. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

export class MemorySink implements ByteSink {
  private readonly chunks: Uint8Array[] = [];

  async write(bytes: Uint8Array): Promise<void> {
    // Callers may reuse their buffers, so keep a copy.
    this.chunks.push(bytes.slice());
  }

  bytes(): Uint8Array {
    return concatBytes(this.chunks);
  }
}
