import { dirname, join } from "node:path";
import { QansError } from "../errors.js";
import { isShardFileName } from "../format/set-metadata.js";
import { isUrl, openSource } from "./open-source.js";
import type { ByteSource } from "./source.js";

/** Opens a shard of a set by its file name, as the set file lists it. */
export type ShardOpener = (file: string) => Promise<ByteSource>;

/**
 * Where a set's shard `file` lies (spec §16.1): beside the set file, in its directory, or for a URL
 * the set file's URL with the last path segment replaced (scheme, host, credentials and query kept).
 * The name is checked again against the shard-name rule, so nothing but a plain file name beside
 * the set file can ever be opened.
 */
export function shardLocation(setLocation: string, file: string): string {
  if (!isShardFileName(file)) {
    throw new QansError("BAD_METADATA", `shard file name ${JSON.stringify(file)} is not a plain file name of A-Z a-z 0-9 . _ -`);
  }
  if (!isUrl(setLocation)) return join(dirname(setLocation), file);
  let url: URL;
  try {
    url = new URL(setLocation);
  } catch {
    throw new QansError("INVALID_ARGUMENT", `not a URL: ${JSON.stringify(setLocation)}`);
  }
  url.hash = "";
  url.pathname = url.pathname.slice(0, url.pathname.lastIndexOf("/") + 1) + file;
  return url.href;
}

/** Opens shards beside the set file at `setLocation`, a path or an http(s) URL. */
export function shardOpener(setLocation: string): ShardOpener {
  return (file) => openSource(shardLocation(setLocation, file));
}
