import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";

/**
 * A temporary directory for the tests of the calling file: created before they run and removed,
 * with everything in it, after. With `each`, every test gets a fresh, empty directory of its own.
 * Call it at the top level of a test file, before hooks that fill the directory.
 * Returns the current directory's path.
 */
export function useTempDir(prefix: string, { each = false }: { each?: boolean } = {}): () => string {
  let dir: string | undefined;
  const [before, after] = each ? [beforeEach, afterEach] : [beforeAll, afterAll];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new Error(`the ${prefix} temporary directory exists only while tests run`);
    return dir;
  };
}
