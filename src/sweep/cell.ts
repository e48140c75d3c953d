// Runs one cell of a sweep: `m2kd train <cell args> --out cells/<id> [--resume] [--threads N]` as a
// child process, its output appended to cells/<id>/log.txt, its state in cells/<id>/cell.json
// (running → done / failed / stopped, with the pid, the host, the exit code and the error line).
// The child owns the run folder (and its lock); this wrapper only launches, records and forwards
// SIGTERM. A cell with checkpoints is always continued with --resume, never restarted.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { writeFileAtomic } from '../io/atomic';
import { SweepCell, cellDir } from './grid';
import { cellResultsDone } from './status';

export const CELL_STATE_FILE = 'cell.json';
export const CELL_LOG_FILE = 'log.txt';

export type CellRunState = 'running' | 'done' | 'failed' | 'stopped';

export interface CellStateRecord {
  state: CellRunState;
  /** pid of the `m2kd train` child */
  pid: number | null;
  host: string;
  started: string;
  ended: string | null;
  exit_code: number | null;
  signal: string | null;
  /** the error line of a failed run */
  error: string | null;
  /** `<array job>_<task>` when run by Slurm */
  slurm_job: string | null;
  /** how many times this cell was started */
  attempts: number;
  resumed: boolean;
  threads: number | null;
}

/** The `m2kd` entry point this build ships (dist/src/cli/main.js). */
export function defaultCli(): string {
  return path.resolve(__dirname, '..', 'cli', 'main.js');
}

export function readCellState(dir: string, id: string): CellStateRecord | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(cellDir(dir, id), CELL_STATE_FILE), 'utf8')) as CellStateRecord;
  } catch {
    return null;
  }
}

function writeCellState(dir: string, id: string, s: CellStateRecord): void {
  writeFileAtomic(path.join(cellDir(dir, id), CELL_STATE_FILE), JSON.stringify(s, null, 2) + '\n');
}

/** The line that says why a run failed: the last `m2kd: ...` line of its log, else its last line. */
export function errorLine(logFile: string): string | null {
  let text: string;
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const n = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, size - n);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const lines = text.split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean);
  const m = lines.filter((l) => l.startsWith('m2kd:'));
  return m.length ? m[m.length - 1] : lines.length ? lines[lines.length - 1] : null;
}

export interface RunCellOptions {
  /** threads of the child (`--threads`) */
  threads?: number;
  /** the m2kd entry point (default: this build's) */
  cli?: string;
  slurmJob?: string | null;
  /** stop the child (SIGTERM: it checkpoints, or loses at most the epoch in progress) */
  signal?: AbortSignal;
  /** also copy the child's output here (besides log.txt) */
  echo?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

export interface CellOutcome {
  id: string;
  state: CellRunState;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  seconds: number;
}

/** Runs (or continues) one cell to its end; resolves with how it ended, never rejects for a failed run. */
export async function runCell(dir: string, cell: SweepCell, steps: number, o: RunCellOptions = {}): Promise<CellOutcome> {
  const cdir = cellDir(dir, cell.id);
  fs.mkdirSync(cdir, { recursive: true });
  const t0 = Date.now();
  if (cellResultsDone(cdir, cell, steps)) return { id: cell.id, state: 'done', exitCode: 0, signal: null, error: null, seconds: 0 };
  const resume = fs.existsSync(path.join(cdir, 'checkpoints'));
  const args = [o.cli ?? defaultCli(), 'train', ...cell.args, '--out', cdir];
  if (resume) args.push('--resume');
  if (o.threads) args.push('--threads', String(o.threads));
  const logFile = path.join(cdir, CELL_LOG_FILE);
  const prev = readCellState(dir, cell.id);
  const fd = fs.openSync(logFile, 'a');
  fs.writeSync(fd, `\n== ${new Date().toISOString()} ${os.hostname()}${o.slurmJob ? ` slurm ${o.slurmJob}` : ''}: m2kd ${args.slice(1).join(' ')}\n`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env: o.env ?? process.env });
  fs.closeSync(fd);
  const rec: CellStateRecord = {
    state: 'running',
    pid: child.pid ?? null,
    host: os.hostname(),
    started: new Date().toISOString(),
    ended: null,
    exit_code: null,
    signal: null,
    error: null,
    slurm_job: o.slurmJob ?? null,
    attempts: (prev?.attempts ?? 0) + 1,
    resumed: resume,
    threads: o.threads ?? null,
  };
  writeCellState(dir, cell.id, rec);
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  if (o.signal?.aborted) stop();
  o.signal?.addEventListener('abort', stop);
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('error', (e) => {
      fs.appendFileSync(logFile, `m2kd: cannot start ${process.execPath}: ${e.message}\n`);
      resolve([127, null]);
    });
    child.on('exit', (c, s) => resolve([c, s]));
  });
  o.signal?.removeEventListener('abort', stop);
  const done = code === 0 && cellResultsDone(cdir, cell, steps);
  const stopped = !done && (sig !== null || code === 143 || code === 130 || o.signal?.aborted === true);
  rec.state = done ? 'done' : stopped ? 'stopped' : 'failed';
  rec.ended = new Date().toISOString();
  rec.exit_code = code;
  rec.signal = sig;
  rec.error = rec.state === 'failed' ? (code === 0 ? 'exited 0 but results.json is incomplete' : errorLine(logFile) ?? `exit code ${code}`) : null;
  writeCellState(dir, cell.id, rec);
  return { id: cell.id, state: rec.state, exitCode: code, signal: sig, error: rec.error, seconds: (Date.now() - t0) / 1000 };
}
