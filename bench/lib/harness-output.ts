/** One measurement line of bench/native/harness.cc: `codec=qans level=avx2 block=131072 ...`. */
export interface HarnessRow {
  codec: string;
  level: string;
  block: number;
  input: number;
  output: number;
  encMBs: number;
  decMBs: number;
}

export function parseHarnessOutput(text: string): HarnessRow[] {
  const rows: HarnessRow[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("codec=")) continue;
    const fields = Object.fromEntries(line.trim().split(/\s+/).map((pair) => pair.split("=") as [string, string]));
    rows.push({
      codec: fields.codec,
      level: fields.level,
      block: Number(fields.block),
      input: Number(fields.input),
      output: Number(fields.output),
      encMBs: Number(fields.enc_mbs),
      decMBs: Number(fields.dec_mbs),
    });
  }
  return rows;
}
