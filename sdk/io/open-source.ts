import { HttpSource } from "./http-source.js";
import { FileSource, type ByteSource } from "./source.js";

/** Whether `location` names an HTTP(S) URL rather than a local path. */
export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** A byte source for a local path or an http:// or https:// URL (read with range requests). */
export async function openSource(location: string): Promise<ByteSource> {
  return isUrl(location) ? HttpSource.open(location) : FileSource.open(location);
}
