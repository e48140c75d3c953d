// A terminal progress bar with rate and ETA; on a non-TTY it prints a line every 10%.
export class ProgressBar {
  private lastPct = -1;
  constructor(private readonly label: string, private readonly total: number, private readonly out: NodeJS.WriteStream = process.stderr) {}

  /** done: units finished; elapsed: seconds since the work started. */
  update(done: number, elapsed: number, extra = ''): void {
    const frac = Math.min(1, done / this.total);
    const el = elapsed;
    const eta = frac > 0 ? el * (1 - frac) / frac : 0;
    const text = `${this.label} ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${this.total} ${fmtTime(el)} elapsed, ETA ${fmtTime(eta)} ${extra}`;
    if (this.out.isTTY) {
      const width = 24;
      const fill = Math.round(frac * width);
      this.out.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${text}\x1b[K`);
      if (done >= this.total) this.out.write('\n');
    } else {
      const pct = Math.floor(frac * 10);
      if (pct !== this.lastPct || done >= this.total) {
        this.lastPct = pct;
        this.out.write(text + '\n');
      }
    }
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60), r = Math.round(s % 60);
  return m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}
