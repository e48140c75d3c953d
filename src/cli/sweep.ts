// `m2kd sweep`: flags → a grid of cells (sweep.json) run by the local executor (--jobs N child
// processes) or submitted as a Slurm job array (--executor slurm); --status DIR prints the cells'
// table; --resume DIR continues a sweep. `--run-cell DIR --cell ID` is what each Slurm task runs.
// Holds no math: planning is in api.ts, executors and cell state in src/sweep.
import * as path from 'path';
import { Flags, parseArgs } from './args';
import { trainOptions } from './train';
import { planSweep, runSweep, SweepOptions } from '../api';
import { runtimeInfo } from '../engine';
import {
  readManifest, writeManifest, isSweepDir, sameCells, sweepStatus, countStates, slurmView, submitSlurm, runCell, cellSteps, mergeSweep,
  SweepManifest, SlurmOptions, CellStatus, SweepExecutorRecord,
} from '../sweep';
import { renderTable, comparisonTable, perStepComparisonTable, fmtSeconds } from '../report';

export const SWEEP_USAGE = `  m2kd sweep [train options] [--ratio R,R,...] [--memory M,M,...] --out DIR
                                    method × order × ratio (× memory) grids, e.g. Table 1 / Fig. 9: the grid goes to
                                    DIR/sweep.json, each (row, order) cell is a run folder DIR/cells/<id>
      --jobs N (1)  cells at once (local executor), the threads (--threads, all cores) divided among them
      --executor local|slurm (local)   slurm: one job array, one task per unfinished cell
        --partition P  --time T  --cpus-per-task N (1)  --mem M  --gpus-per-task N  --max-running N (% throttle)
        --signal-seconds S (300: USR1 this long before the time limit → checkpoint, requeue)
        --sbatch-arg=ARG (repeatable, passed through as #SBATCH ARG)  --job-name NAME  --dry-run (write the script only)
  m2kd sweep --status DIR           every cell: pending / running / done / failed, the step it reached, the error line
  m2kd sweep --resume DIR [--jobs N | --executor slurm ...]
                                    continue: skips done cells, resumes the others from their checkpoints
                                    (slurm: resubmits only the cells that are neither done nor queued)`;

const EXECUTOR_FLAGS = new Set(['jobs', 'threads', 'executor', 'partition', 'time', 'cpus-per-task', 'mem', 'gpus-per-task', 'max-running', 'signal-seconds', 'sbatch-arg', 'job-name', 'dry-run', 'resume', 'out', 'no-plots']);

function list(f: Flags, name: string): number[] | undefined {
  const s = f.str(name, '');
  if (!s) return undefined;
  return s.split(',').map((p) => {
    const v = Number(p.trim());
    if (!Number.isFinite(v)) throw new Error(`--${name}: '${p}' is not a number`);
    return v;
  });
}

/** Every value of a repeatable flag, in order (`--name=value` or `--name value`). */
function repeated(argv: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith(`--${name}=`)) out.push(argv[i].slice(name.length + 3));
    else if (argv[i] === `--${name}`) {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value; write --${name}=--qos=high for a value that starts with --`);
      out.push(v);
      i++;
    }
  }
  return out;
}

function slurmOptions(f: Flags, argv: string[], prev?: Record<string, unknown>): SlurmOptions {
  const p = (prev ?? {}) as SlurmOptions;
  const str = (n: string, d?: string) => f.str(n, '') || d;
  const int = (n: string, d?: number) => (f.str(n, '') ? f.int(n, 1, 1) : d);
  f.str('sbatch-arg', '');
  const extra = repeated(argv, 'sbatch-arg');
  return {
    partition: str('partition', p.partition),
    time: str('time', p.time),
    cpusPerTask: int('cpus-per-task', p.cpusPerTask),
    mem: str('mem', p.mem),
    gpusPerTask: int('gpus-per-task', p.gpusPerTask),
    maxRunning: int('max-running', p.maxRunning),
    signalSeconds: int('signal-seconds', p.signalSeconds),
    jobName: str('job-name', p.jobName),
    sbatchArgs: extra.length ? extra : p.sbatchArgs,
  };
}

export function statusTable(rows: CellStatus[]): string {
  const n = countStates(rows);
  return renderTable({
    title: `${rows.length} cells: ${n.done} done, ${n.running} running, ${n.pending} pending, ${n.failed} failed`,
    headers: ['cell', 'method', 'order', 'state', 'step', 'detail'],
    align: ['left', 'left', 'right', 'left', 'left', 'left'],
    rows: rows.map((r) => [r.cell.id, r.cell.name, String(r.cell.order_index + 1), r.state, r.progress, r.detail]),
  });
}

function printStatus(dir: string): void {
  const m = readManifest(dir);
  const view = m.executor.kind === 'slurm' ? slurmView(dir) : undefined;
  console.log(statusTable(sweepStatus(dir, m, view)));
}

/** One cell, as a Slurm array task runs it; SIGTERM / SIGUSR1 / SIGINT stop it with a checkpoint. */
async function runCellCommand(dir: string, f: Flags): Promise<void> {
  const id = f.str('cell', '');
  const threads = f.str('threads', '') ? f.int('threads', 1) : undefined;
  f.done();
  if (!id) throw new Error('--run-cell DIR needs --cell ID');
  const m = readManifest(dir);
  const cell = m.cells.find((c) => c.id === id);
  if (!cell) throw new Error(`sweep ${dir} has no cell '${id}'`);
  const ac = new AbortController();
  const stop = (sig: string) => {
    console.error(`m2kd sweep: ${sig}: stopping cell ${id} (it continues from its checkpoint on --resume)`);
    ac.abort();
  };
  const sigs = ['SIGTERM', 'SIGUSR1', 'SIGINT'] as const;
  for (const s of sigs) process.on(s, stop);
  const job = process.env.SLURM_ARRAY_JOB_ID ? `${process.env.SLURM_ARRAY_JOB_ID}_${process.env.SLURM_ARRAY_TASK_ID}` : process.env.SLURM_JOB_ID ?? null;
  try {
    const r = await runCell(dir, cell, cellSteps(m, cell), { threads, signal: ac.signal, slurmJob: job });
    console.log(`cell ${id}: ${r.state}${r.error ? `: ${r.error}` : ''} (${fmtSeconds(r.seconds)})`);
    // a non-zero exit for anything but done: the batch script requeues a stopped cell on USR1
    if (r.state === 'stopped') throw new Error(`cell ${id} stopped before its end; it continues from its checkpoint`);
    if (r.state !== 'done') throw new Error(`cell ${id} failed: ${r.error ?? 'see its log.txt'}`);
  } finally {
    for (const s of sigs) process.off(s, stop);
  }
}

function printMerged(dir: string): void {
  const merged = mergeSweep(dir);
  if (merged.results) {
    console.log('\n' + comparisonTable(merged.results));
    console.log(perStepComparisonTable(merged.results));
  }
  if (merged.missing.length) console.log(`missing cells (not done): ${merged.missing.join(', ')}; m2kd sweep --status ${dir} says why`);
}

async function runLocalCommand(dir: string, m: SweepManifest, jobs: number, threads: number | undefined, plots: boolean): Promise<void> {
  const total = m.cells.length;
  let started = 0;
  const ac = new AbortController();
  const stop = () => {
    if (!ac.signal.aborted) console.error(`\nm2kd sweep: stopping the running cells (they checkpoint); m2kd sweep --resume ${dir} continues`);
    ac.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const t0 = Date.now();
  try {
    const r = await runSweep(dir, {
      jobs,
      threads,
      plots,
      signal: ac.signal,
      onCell: (e) => {
        if (e.kind === 'start') console.error(`[${++started}] cell ${e.cell.id} started (${e.threads} thread${e.threads === 1 ? '' : 's'}; log: ${path.join(dir, 'cells', e.cell.id, 'log.txt')})`);
        else console.error(`cell ${e.cell.id}: ${e.outcome.state}${e.outcome.error ? `: ${e.outcome.error}` : ''} (${fmtSeconds(e.outcome.seconds)})`);
      },
    });
    console.log('\n' + comparisonTable(r.results));
    console.log(perStepComparisonTable(r.results));
    console.log(`${total - r.missing.length}/${total} cells done, ${fmtSeconds((Date.now() - t0) / 1000)} in all; merged results and plots in ${dir}`);
    if (r.missing.length) throw new Error(`${r.missing.length} cell${r.missing.length === 1 ? '' : 's'} not done (${r.missing.join(', ')}): m2kd sweep --status ${dir} shows why, m2kd sweep --resume ${dir} continues`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export async function sweepCommand(f: Flags, argv: string[]): Promise<void> {
  let raw = parseArgs(argv).flags;
  const status = raw.get('status');
  if (status !== undefined) {
    const dir = f.str('status', '');
    f.done();
    return printStatus(dir);
  }
  if (raw.get('run-cell') !== undefined) return runCellCommand(f.str('run-cell', ''), f);

  const resumeRaw = raw.get('resume');
  if (typeof resumeRaw === 'string' && !['true', 'false', '1', '0'].includes(resumeRaw)) {
    // `--resume DIR`: the same as `--out DIR --resume`
    if (raw.has('out') && path.resolve(String(raw.get('out'))) !== path.resolve(resumeRaw)) throw new Error(`--resume ${resumeRaw} and --out ${raw.get('out')} name different folders`);
    const norm: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--resume' && argv[i + 1] === resumeRaw) i++;
      else if (argv[i] !== `--resume=${resumeRaw}`) {
        norm.push(argv[i]);
        continue;
      }
      norm.push('--resume=true');
      if (!raw.has('out')) norm.push('--out', resumeRaw);
    }
    argv = norm;
    raw = parseArgs(argv).flags;
    f = new Flags(raw);
  }
  const resume = f.bool('resume');
  const gridGiven = [...raw.keys()].some((k) => !EXECUTOR_FLAGS.has(k));
  const executorFlag = f.str('executor', '');
  if (executorFlag && executorFlag !== 'local' && executorFlag !== 'slurm') throw new Error(`--executor must be local or slurm, got '${executorFlag}'`);
  const jobsGiven = f.str('jobs', '') !== '';
  const jobs = jobsGiven ? f.int('jobs', 1) : undefined;
  const dryRun = f.bool('dry-run');

  let dir: string;
  let m: SweepManifest;
  if (resume && !gridGiven) {
    dir = f.str('out', '');
    if (!dir) throw new Error('--resume needs the sweep folder: m2kd sweep --resume DIR');
    if (!isSweepDir(dir)) throw new Error(`--resume: ${dir} holds no sweep (no sweep.json) to continue`);
    m = readManifest(dir);
  } else {
    const opts: SweepOptions = { ...trainOptions(f, argv, true), ratios: list(f, 'ratio'), memories: list(f, 'memory')?.map((v) => Math.round(v)) };
    if (!opts.out) throw new Error('m2kd sweep needs --out DIR (the sweep folder: sweep.json, cells/<id>/, merged results)');
    dir = opts.out;
    m = await planSweep(opts);
    if (isSweepDir(dir)) {
      const old = readManifest(dir);
      if (!resume) throw new Error(`${dir} already holds a sweep (sweep.json): continue it with m2kd sweep --resume ${dir}, or choose another folder`);
      if (!sameCells(old.cells, m.cells)) throw new Error(`${dir} holds a different grid (its sweep.json): resume it without grid options, or choose another folder`);
      m = old;
    } else if (resume) throw new Error(`--resume: ${dir} holds no sweep (no sweep.json) to continue`);
  }
  const kind = (executorFlag || m.executor.kind || 'local') as 'local' | 'slurm';
  const threads = f.str('threads', '') ? f.int('threads', 1) : undefined;
  const plots = !f.bool('no-plots');
  if (kind === 'slurm') {
    const so = slurmOptions(f, argv, m.executor.kind === 'slurm' ? m.executor.slurm : undefined);
    f.done();
    if (jobs !== undefined) throw new Error('--jobs is for the local executor; with slurm use --max-running');
    const rec: SweepExecutorRecord = { kind: 'slurm', slurm: { ...so } };
    writeManifest(dir, { ...m, executor: rec });
    const sub = submitSlurm(dir, m, { ...so, dryRun });
    if (!sub) {
      console.log(`every cell of ${dir} is done or already queued; nothing to submit`);
      printStatus(dir);
      return printMerged(dir);
    }
    console.log(`${sub.cells.length} of ${m.cells.length} cells in ${sub.script}`);
    if (sub.job === null) console.log(`--dry-run: not submitted (sbatch ${sub.script} submits it)`);
    else
      console.log(
        `submitted job array ${sub.job} (tasks ${sub.cells.map((c) => c.index).join(',')}); follow it with m2kd sweep --status ${dir} ` +
          `(or squeue -j ${sub.job}); task logs in ${path.join(dir, 'slurm')}, cell logs in ${path.join(dir, 'cells', '<id>', 'log.txt')}; ` +
          `m2kd compare ${dir} merges the finished cells`,
      );
    return;
  }
  for (const k of ['partition', 'time', 'cpus-per-task', 'mem', 'gpus-per-task', 'max-running', 'signal-seconds', 'sbatch-arg', 'job-name']) f.str(k, '');
  f.done();
  if (dryRun) throw new Error('--dry-run is for --executor slurm');
  const j = jobs ?? (m.executor.kind === 'local' ? m.executor.jobs : undefined) ?? 1;
  const t = threads ?? (m.executor.kind === 'local' ? m.executor.threads : undefined) ?? runtimeInfo().threads;
  writeManifest(dir, { ...m, executor: { kind: 'local', jobs: j, threads: t } });
  console.error(`sweep ${dir}: ${m.cells.length} cells, ${j} at a time, ${Math.max(1, Math.floor(t / j))} thread${Math.floor(t / j) > 1 ? 's' : ''} each`);
  await runLocalCommand(dir, m, j, t, plots);
}

