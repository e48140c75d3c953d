// The state of every cell of a sweep, read from its folder alone: done (results.json holds all
// steps), running (a live process owns it: cell.json or the run lock m2kd.lock, or Slurm says so),
// failed (with the error line), pending (not started, or interrupted: it resumes from its last
// checkpoint); plus the step and epoch its checkpoint reached. Reads files; changes nothing.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findRunState, readRunStateJson } from '../il/checkpoint';
import type { RunResults } from '../il/results';
import { SweepCell, SweepManifest, cellDir } from './grid';
import { readCellState } from './cell';

export type CellState = 'pending' | 'running' | 'done' | 'failed';

export interface CellStatus {
  cell: SweepCell;
  state: CellState;
  /** how far its checkpoint (or results) got, e.g. "2/5 · train epoch 3" */
  progress: string;
  /** steps done so far */
  stepsDone: number;
  steps: number;
  /** the error line (failed), the owner (running), or why it waits (pending) */
  detail: string;
}

/** Steps a cell runs: the dataset's classes over the classes per step. */
export function cellSteps(m: SweepManifest, cell: SweepCell): number {
  return Math.round(m.classes / cell.config.classesPerStep);
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** The cell's results.json, if it holds its method's full run. */
export function cellResults(cdir: string, cell: SweepCell, steps: number): RunResults | null {
  const r = readJson<RunResults>(path.join(cdir, 'results.json'));
  const m = r?.methods?.[cell.method];
  if (!r || !m || m.orders.length !== 1 || m.orders[0].steps.length !== steps) return null;
  return r;
}

export function cellResultsDone(cdir: string, cell: SweepCell, steps: number): boolean {
  return cellResults(cdir, cell, steps) !== null;
}

/** Is the process alive? (only answerable on its own host) */
function alive(pid: unknown, host: unknown): boolean | null {
  if (typeof pid !== 'number' || pid <= 0) return null;
  if (typeof host === 'string' && host !== os.hostname()) return null;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function checkpointProgress(cdir: string, cell: SweepCell): { stepsDone: number; text: string } | null {
  const found = findRunState(path.join(cdir, 'checkpoints', cell.method, 'order-0'));
  if (!found) return null;
  try {
    const st = readRunStateJson(found);
    const p = st.position;
    const within = p.epochsDone > 0 ? ` · ${p.phase === 'train' ? 'train' : 'fine-tune'} epoch ${p.epochsDone}` : '';
    return { stepsDone: p.stepsDone, text: `${p.stepsDone}${within}` };
  } catch {
    return null;
  }
}

export interface SchedulerView {
  /** cell id → 'pending' | 'running' with a note (e.g. the Slurm job and its state) */
  get(id: string): { state: 'pending' | 'running'; note: string } | undefined;
}

export function cellStatus(dir: string, m: SweepManifest, cell: SweepCell, sched?: SchedulerView): CellStatus {
  const cdir = cellDir(dir, cell.id);
  const steps = cellSteps(m, cell);
  if (cellResultsDone(cdir, cell, steps)) return { cell, state: 'done', progress: `${steps}/${steps}`, stepsDone: steps, steps, detail: '' };
  const ck = checkpointProgress(cdir, cell);
  const stepsDone = ck?.stepsDone ?? 0;
  const progress = ck ? `${ck.text.replace(/^(\d+)/, `$1/${steps}`)}` : `0/${steps}`;
  const rec = readCellState(dir, cell.id);
  const lock = readJson<{ pid?: number; host?: string }>(path.join(cdir, 'm2kd.lock'));
  const s = sched?.get(cell.id);
  const base = { cell, progress, stepsDone, steps };
  const owner = (pid: unknown, host: unknown) => `pid ${pid} on ${host}`;
  if (rec?.state === 'running' || lock) {
    const pid = rec?.state === 'running' ? rec.pid : lock?.pid;
    const host = rec?.state === 'running' ? rec.host : lock?.host;
    const a = alive(pid, host);
    if (a === true || (a === null && (s?.state === 'running' || !sched))) return { ...base, state: 'running', detail: [s?.note, owner(pid, host)].filter(Boolean).join(', ') };
  }
  if (s) return { ...base, state: s.state, detail: s.note };
  if (rec?.state === 'failed') return { ...base, state: 'failed', detail: rec.error ?? `exit code ${rec.exit_code}` };
  if (rec) return { ...base, state: 'pending', detail: `${rec.state === 'running' ? 'interrupted' : 'stopped'}${ck ? ', resumes from its checkpoint' : ''}` };
  return { ...base, state: 'pending', detail: '' };
}

export function sweepStatus(dir: string, m: SweepManifest, sched?: SchedulerView): CellStatus[] {
  return m.cells.map((c) => cellStatus(dir, m, c, sched));
}

export function countStates(rows: CellStatus[]): Record<CellState, number> {
  const n: Record<CellState, number> = { pending: 0, running: 0, done: 0, failed: 0 };
  for (const r of rows) n[r.state]++;
  return n;
}
