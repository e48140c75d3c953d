// The local executor: runs the unfinished cells of a sweep as child processes, `jobs` at a time,
// the threads divided among them (each child gets floor(threads / jobs), at least 1). Finished
// cells are skipped and interrupted ones continue from their checkpoints, so a killed sweep rerun
// with --resume picks up where it stopped. An abort stops every child with SIGTERM.
import * as os from 'os';
import { SweepManifest, SweepCell, cellDir } from './grid';
import { runCell, CellOutcome } from './cell';
import { cellResultsDone, cellSteps } from './status';

export interface LocalOptions {
  /** cells at once (default 1) */
  jobs?: number;
  /** threads in all (default: the machine's cores) */
  threads?: number;
  cli?: string;
  signal?: AbortSignal;
  onStart?: (cell: SweepCell, threads: number) => void;
  onEnd?: (cell: SweepCell, o: CellOutcome) => void;
}

export interface LocalOutcome {
  outcomes: CellOutcome[];
  /** cells that were already done */
  skipped: string[];
  seconds: number;
}

export function threadsPerCell(jobs: number, threads?: number): number {
  const total = threads ?? os.cpus().length;
  return Math.max(1, Math.floor(total / Math.max(1, jobs)));
}

export async function runLocal(dir: string, m: SweepManifest, o: LocalOptions = {}): Promise<LocalOutcome> {
  const jobs = o.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a positive integer, got ${jobs}`);
  const t0 = Date.now();
  const per = threadsPerCell(jobs, o.threads);
  const skipped: string[] = [];
  const queue: SweepCell[] = [];
  for (const c of m.cells) {
    if (cellResultsDone(cellDir(dir, c.id), c, cellSteps(m, c))) skipped.push(c.id);
    else queue.push(c);
  }
  const outcomes: CellOutcome[] = [];
  const worker = async () => {
    for (;;) {
      if (o.signal?.aborted) return;
      const cell = queue.shift();
      if (!cell) return;
      o.onStart?.(cell, per);
      const r = await runCell(dir, cell, cellSteps(m, cell), { threads: per, cli: o.cli, signal: o.signal });
      outcomes.push(r);
      o.onEnd?.(cell, r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, queue.length)) }, worker));
  return { outcomes, skipped, seconds: (Date.now() - t0) / 1000 };
}
