/**
 * A progress bar on stderr, shown only when stderr is a terminal and the job has run for more than
 * a second, so pipes, logs and quick jobs stay clean.
 */
export class ProgressBar {
  private readonly started: number;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly stream: Pick<NodeJS.WriteStream, "isTTY" | "write"> = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  update(done: number, total: number): void {
    if (!this.stream.isTTY || this.now() - this.started < 1000 || total <= 0) return;
    const width = 30;
    const fraction = Math.min(1, done / total);
    const filled = Math.round(fraction * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    this.stream.write(`\r${this.label} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}%`);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) this.stream.write("\r\x1b[K");
  }
}
