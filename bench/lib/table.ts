/** Plain-text tables and number formats shared by the benches. Sizes use decimal units (1 MB = 10^6 bytes), as zstd's MB/s does. */

export type Align = "left" | "right";

/**
 * Lays out rows under a header with two spaces between columns. The first column is left-aligned
 * and the others right-aligned unless `align` says otherwise, because every other column is a number.
 */
export function formatTable(header: string[], rows: string[][], align: Align[] = []): string {
  const columns = header.length;
  for (const row of rows) {
    if (row.length !== columns) throw new Error(`table row has ${row.length} cells, header has ${columns}: ${row.join(" | ")}`);
  }
  const alignOf = (c: number): Align => align[c] ?? (c === 0 ? "left" : "right");
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (alignOf(c) === "left" ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** 1234567 → "1,234,567". */
export function formatInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Bytes in decimal units with three significant digits: "532 B", "14.2 kB", "6.41 MB". */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let u = 0;
  while (Math.abs(value) >= 1000 && u < units.length - 1) {
    value /= 1000;
    u++;
  }
  if (u === 0) return `${Math.round(value)} B`;
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[u]}`;
}

/** A fraction as a percentage: 0.6637 → "66.37%". */
export function formatPct(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A relative excess as a signed percentage: 0.0029 → "+0.29%". */
export function formatExcess(fraction: number, digits = 2): string {
  const text = formatPct(fraction, digits);
  return fraction >= 0 ? `+${text}` : text;
}

/** A speed with enough digits to compare a 2 MB/s codec with a 900 MB/s one. */
export function formatSpeed(mbPerSecond: number): string {
  if (!Number.isFinite(mbPerSecond)) return "-";
  return mbPerSecond >= 100 ? mbPerSecond.toFixed(0) : mbPerSecond >= 10 ? mbPerSecond.toFixed(1) : mbPerSecond.toFixed(2);
}
