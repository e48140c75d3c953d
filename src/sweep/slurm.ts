// The Slurm executor: one sbatch script per submission, a job array with one task per unfinished
// cell (array index = the cell's index in sweep.json, `%` throttle from maxRunning), resources
// passed through. Each task runs `m2kd sweep --run-cell DIR --cell ID` (which runs the cell with
// --resume when it has checkpoints). Preemption: the task asks for USR1 `signalSeconds` before its
// time limit (--signal=B:USR1@s); the batch shell traps USR1, sends SIGTERM to the cell (which
// checkpoints, or loses at most the epoch in progress), waits, and requeues the task if the cell
// is not done. A plain SIGTERM (scancel, preemption) is forwarded the same way but not requeued by
// the script (Slurm's own preemption requeues; scancel means stop). Submissions are recorded in
// slurm/jobs.json; the status reads them back through squeue.
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { writeFileAtomic } from '../io/atomic';
import { SweepManifest } from './grid';
import { SchedulerView, sweepStatus } from './status';
import { defaultCli } from './cell';

export interface SlurmOptions {
  partition?: string;
  /** time limit per task, Slurm's syntax (e.g. 4:00:00) */
  time?: string;
  cpusPerTask?: number;
  /** memory per node, Slurm's syntax (e.g. 8G) */
  mem?: string;
  gpusPerTask?: number;
  /** tasks running at once (the array's % throttle) */
  maxRunning?: number;
  /** seconds before the time limit at which the task is told to checkpoint and requeue (default 300) */
  signalSeconds?: number;
  jobName?: string;
  /** further #SBATCH arguments, passed through as given */
  sbatchArgs?: string[];
  /** write the script, do not submit */
  dryRun?: boolean;
  cli?: string;
  /** the sbatch command (default: sbatch on the PATH) */
  sbatch?: string;
}

export interface SlurmSubmission {
  /** the array job id, or null for a dry run */
  job: string | null;
  script: string;
  cells: { index: number; id: string }[];
  submitted: string;
  dry_run: boolean;
}

const JOBS_FILE = 'jobs.json';

function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The sbatch script of a job array over the given cell indices. */
export function sbatchScript(dir: string, m: SweepManifest, indices: number[], o: SlurmOptions): string {
  if (indices.length === 0) throw new Error('sbatch script: no cells to run');
  const abs = path.resolve(dir);
  const cli = path.resolve(o.cli ?? defaultCli());
  const sig = o.signalSeconds ?? 300;
  if (!Number.isInteger(sig) || sig < 1) throw new Error(`--signal-seconds must be a positive integer, got ${sig}`);
  if (o.maxRunning !== undefined && (!Number.isInteger(o.maxRunning) || o.maxRunning < 1)) throw new Error(`--max-running must be a positive integer, got ${o.maxRunning}`);
  const cpus = o.cpusPerTask ?? 1;
  const lines = [
    '#!/bin/bash',
    `# m2kd sweep ${abs}: ${indices.length} of ${m.cells.length} cells, one array task each (index = the cell's index in sweep.json)`,
    `#SBATCH --job-name=${shq(o.jobName ?? `m2kd-${path.basename(abs)}`)}`,
    `#SBATCH --array=${indices.join(',')}${o.maxRunning ? `%${o.maxRunning}` : ''}`,
    `#SBATCH --output=${shq(path.join(abs, 'slurm', '%A_%a.out'))}`,
    '#SBATCH --open-mode=append',
    `#SBATCH --signal=B:USR1@${sig}`,
    '#SBATCH --requeue',
    '#SBATCH --ntasks=1',
    `#SBATCH --cpus-per-task=${cpus}`,
  ];
  if (o.partition) lines.push(`#SBATCH --partition=${shq(o.partition)}`);
  if (o.time) lines.push(`#SBATCH --time=${shq(o.time)}`);
  if (o.mem) lines.push(`#SBATCH --mem=${shq(o.mem)}`);
  if (o.gpusPerTask) lines.push(`#SBATCH --gpus-per-task=${o.gpusPerTask}`);
  for (const a of o.sbatchArgs ?? []) lines.push(`#SBATCH ${a}`);
  lines.push(
    '',
    `CELLS=(${m.cells.map((c) => shq(c.id)).join(' ')})`,
    'CELL=${CELLS[$SLURM_ARRAY_TASK_ID]}',
    'if [ -z "$CELL" ]; then echo "m2kd: array index $SLURM_ARRAY_TASK_ID names no cell" >&2; exit 2; fi',
    'TASK="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    `echo "== $(date -u +%FT%TZ) task $TASK (restart \${SLURM_RESTART_COUNT:-0}) on $(hostname): cell $CELL"`,
    `${shq(process.execPath)} ${shq(cli)} sweep --run-cell ${shq(abs)} --cell "$CELL" --threads "\${SLURM_CPUS_PER_TASK:-${cpus}}" &`,
    'child=$!',
    'requeue=0',
    "trap 'requeue=1; echo \"== $(date -u +%FT%TZ) USR1: time limit near, checkpointing cell $CELL\"; kill -TERM $child 2>/dev/null' USR1",
    "trap 'echo \"== $(date -u +%FT%TZ) SIGTERM: stopping cell $CELL\"; kill -TERM $child 2>/dev/null' TERM",
    'wait $child; rc=$?',
    'while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done',
    'echo "== $(date -u +%FT%TZ) cell $CELL exited $rc"',
    'if [ "$rc" -ne 0 ] && [ "$requeue" -eq 1 ]; then',
    '  echo "== requeueing $TASK: cell $CELL is not done"',
    '  scontrol requeue "$TASK"',
    'fi',
    'exit $rc',
    '',
  );
  return lines.join('\n');
}

function jobsFile(dir: string): string {
  return path.join(dir, 'slurm', JOBS_FILE);
}

export function readSubmissions(dir: string): SlurmSubmission[] {
  try {
    return JSON.parse(fs.readFileSync(jobsFile(dir), 'utf8')) as SlurmSubmission[];
  } catch {
    return [];
  }
}

/** Queued or running tasks of this sweep's jobs, by cell id (undefined where squeue cannot answer). */
export function slurmView(dir: string): SchedulerView | undefined {
  const subs = readSubmissions(dir).filter((s) => s.job);
  if (subs.length === 0) return undefined;
  const r = spawnSync('squeue', ['-h', '-r', '-j', subs.map((s) => s.job).join(','), '-o', '%i %T %R'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  const byTask = new Map<string, { state: 'pending' | 'running'; note: string }>();
  for (const line of r.stdout.split('\n')) {
    const [task, st, ...why] = line.trim().split(/\s+/);
    if (!task || !st) continue;
    const [job, idx] = task.split('_');
    const sub = subs.find((s) => s.job === job);
    const cell = sub?.cells.find((c) => String(c.index) === idx);
    if (!cell) continue;
    const running = st === 'RUNNING' || st === 'COMPLETING' || st === 'SUSPENDED';
    byTask.set(cell.id, { state: running ? 'running' : 'pending', note: `slurm ${task} ${st}${why.length ? ` ${why.join(' ')}` : ''}` });
  }
  return { get: (id) => byTask.get(id) };
}

/** Writes the sbatch script for every cell that is neither done nor queued/running, and submits it. */
export function submitSlurm(dir: string, m: SweepManifest, o: SlurmOptions): SlurmSubmission | null {
  const view = slurmView(dir);
  const rows = sweepStatus(dir, m, view);
  const indices = rows.map((r, i) => (r.state === 'done' || r.state === 'running' || view?.get(r.cell.id) ? -1 : i)).filter((i) => i >= 0);
  if (indices.length === 0) return null;
  const subs = readSubmissions(dir);
  const sdir = path.join(dir, 'slurm');
  fs.mkdirSync(sdir, { recursive: true });
  const script = path.join(sdir, `sweep-${subs.length + 1}.sbatch`);
  writeFileAtomic(script, sbatchScript(dir, m, indices, o));
  fs.chmodSync(script, 0o755);
  let job: string | null = null;
  if (!o.dryRun) {
    const r = spawnSync(o.sbatch ?? 'sbatch', ['--parsable', script], { encoding: 'utf8', cwd: dir });
    if (r.error) throw new Error(`sbatch: cannot run it (${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed or not on the PATH' : r.error.message}); the script is in ${script}`);
    if (r.status !== 0) throw new Error(`sbatch failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}; the script is in ${script}`);
    job = r.stdout.trim().split(';')[0];
    if (!/^\d+$/.test(job)) throw new Error(`sbatch answered '${r.stdout.trim()}', not a job id`);
  }
  const sub: SlurmSubmission = { job, script, cells: indices.map((i) => ({ index: i, id: m.cells[i].id })), submitted: new Date().toISOString(), dry_run: !!o.dryRun };
  writeFileAtomic(jobsFile(dir), JSON.stringify([...subs, sub], null, 2) + '\n');
  return sub;
}
