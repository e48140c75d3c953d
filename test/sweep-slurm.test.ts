// m2kd sweep --executor slurm against a real Slurm (scripts/ci-slurm.sh starts munge, slurmctld and
// slurmd on this host and sets M2KD_SLURM_TEST=1; without it this file says it is skipped). A 2 × 2
// grid (m2kd, ft × 2 class orders, MNIST, tiny settings) runs as a job array; one task is cancelled
// mid-cell (scancel), another gets the time-limit warning (USR1 → checkpoint → scontrol requeue);
// `m2kd sweep --resume` resubmits the unfinished cell; the merged numbers must equal a local run of
// the same grid, step by step.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import { mergeSweep, readManifest, sweepStatus, slurmView, readSubmissions, readCellState, cellDir } from '../src/sweep';
import { findRunState, readRunStateJson } from '../src/il/checkpoint';
import type { RunResults } from '../src/il/results';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const GRID = ['--method', 'm2kd,ft', '--orders', '2', '--classes-per-step', '5', '--epochs', '2', '--train-per-class', '40', '--test-per-class', '5', '--no-plots'];

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
function sh(cmd: string, args: string[]): string {
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0) return r.stdout;
    // a task between states ("Job can not be altered now, try again later"): retry shortly
    if (attempt < 20 && /try again later/.test(r.stderr)) spawnSync('sleep', ['0.2']);
    else throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await sleep(150);
  }
}
function queued(job: string): string[] {
  return sh('squeue', ['-h', '-r', '-j', job, '-o', '%i %T']).split('\n').filter(Boolean);
}
function stepsDone(dir: string, id: string, method: string): number {
  const f = findRunState(path.join(cellDir(dir, id), 'checkpoints', method, 'order-0'));
  return f ? readRunStateJson(f).position.stepsDone : 0;
}
function numbers(r: RunResults) {
  return Object.fromEntries(
    Object.entries(r.methods).map(([k, m]) => [k, m.orders.map((o) => ({ order: o.order, steps: o.steps.map((s) => [s.top1, s.top5, s.per_group, s.final_loss, s.confusion]) }))]),
  );
}

const enabled = process.env.M2KD_SLURM_TEST === '1';
t.test('sweep on a real Slurm: job array, scancel + --resume, USR1 requeue, merged = local', { skip: enabled ? false : 'needs a running Slurm: bash scripts/ci-slurm.sh (sets M2KD_SLURM_TEST=1)' }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-slurm-test-'));
  fs.chmodSync(root, 0o755);
  const local = path.join(root, 'local');
  const sl = path.join(root, 'slurm');

  // the reference: the same grid, local executor, 1 thread per cell (as each Slurm task)
  const t0 = Date.now();
  const L = cli(['sweep', ...GRID, '--out', local, '--jobs', '2', '--threads', '2']);
  t.equal(L.code, 0, `local sweep: ${L.err.split('\n').slice(-3).join(' | ')}`);
  t.comment(`local sweep (--jobs 2): ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const S = cli(['sweep', ...GRID, '--out', sl, '--executor', 'slurm', '--cpus-per-task', '1', '--max-running', '2', '--signal-seconds', '60', '--time', '10:00']);
  t.equal(S.code, 0, `submitted: ${S.out.trim()} ${S.err.trim()}`);
  const sub = readSubmissions(sl)[0];
  t.teardown(() => {
    // never leave tasks behind, whatever failed
    const ids = readSubmissions(sl).map((x) => x.job).filter((j): j is string => !!j);
    if (ids.length) spawnSync('scancel', ids);
  });
  t.match(sub?.job ?? '', /^\d+$/, 'job id recorded in slurm/jobs.json');
  const script = fs.readFileSync(sub.script, 'utf8');
  t.match(script, /#SBATCH --array=0,1,2,3%2\n/, 'one array task per cell, % throttle');
  t.match(script, /#SBATCH --signal=B:USR1@60\n/, 'asks for USR1 before the time limit');
  t.match(script, /#SBATCH --time=10:00\n/);
  t.comment(`job array ${sub.job}: ${script.match(/#SBATCH --array=.*/)![0]}`);
  const m = readManifest(sl);
  const [cancelled, requeued] = [m.cells[0], m.cells[1]];

  // while the array runs: the time-limit warning on task 1 as soon as its cell has a checkpoint
  // (USR1 to the batch shell → SIGTERM to the cell → exit → scontrol requeue), and scancel on task 0
  // in the middle of its cell (after its first step). scancel runs in the background: it may
  // block for seconds retrying ("try again later") while the cells go on.
  let signalled = false, cancelledAt = '', lastUsr1 = 0, released = false, usr1InFlight = false;
  let usr1Proc: ChildProcess | null = null;
  const bg = (cmd: string, args: string[]) => spawn(cmd, args, { stdio: 'ignore' }).on('error', () => undefined);
  const taskOut = path.join(sl, 'slurm', `${sub.job}_1.out`);
  const taskLogHas = (re: RegExp) => fs.existsSync(taskOut) && re.test(fs.readFileSync(taskOut, 'utf8'));
  await until('the USR1, the requeue and the scancel', () => {
    if (!cancelledAt && stepsDone(sl, cancelled.id, cancelled.method) >= 1) {
      const running = sweepStatus(sl, m, slurmView(sl)).find((r) => r.cell.id === cancelled.id)!;
      t.equal(running.state, 'running', `status while it runs: ${running.state} ${running.progress} ${running.detail}`);
      bg('scancel', [`${sub.job}_0`]);
      cancelledAt = running.progress;
      t.comment(`scancel ${sub.job}_0 at step ${running.progress} of cell ${cancelled.id}`);
    }
    if (!signalled && findRunState(path.join(cellDir(sl, requeued.id), 'checkpoints', requeued.method, 'order-0'))) {
      // scancel may answer "try again later" and still deliver: the task's log says whether it did
      if (taskLogHas(/USR1/)) {
        // a scancel still retrying would deliver a second USR1 to the requeued task: stop it
        if (usr1Proc && usr1Proc.exitCode === null) usr1Proc.kill('SIGKILL');
        signalled = true;
        t.comment(`USR1 to ${sub.job}_1 (cell ${requeued.id}) after its first checkpoint`);
      } else if (!usr1InFlight && Date.now() - lastUsr1 > 3000) {
        // once at a time: a second USR1 would reach the requeued task too
        usr1InFlight = true;
        usr1Proc = bg('scancel', ['--batch', '--signal=USR1', `${sub.job}_1`]).on('exit', () => {
          usr1InFlight = false;
          lastUsr1 = Date.now();
        });
      }
    }
    if (signalled && !released && taskLogHas(/requeueing/) && queued(sub.job!).some((l) => l.startsWith(`${sub.job}_1 PENDING`))) {
      // Slurm holds a requeued task back (BeginTime, about 2 minutes); let it start now
      spawnSync('scontrol', ['update', `JobId=${sub.job}_1`, 'StartTime=now']);
      released = true;
      t.comment(`${sub.job}_1 requeued (pending); StartTime=now`);
    }
    return signalled && released && cancelledAt !== '';
  }, 240);

  await until(`job ${sub.job} to leave the queue`, () => queued(sub.job!).length === 0, 240);
  const after = sweepStatus(sl, m, slurmView(sl));
  t.comment('status after the first job array:\n' + after.map((r) => `  ${r.cell.id.padEnd(8)} ${r.state.padEnd(8)} ${r.progress.padEnd(22)} ${r.detail}`).join('\n'));
  const st = (id: string) => after.find((r) => r.cell.id === id)!;
  t.equal(st(cancelled.id).state, 'pending', 'the cancelled cell is not done');
  t.ok(st(cancelled.id).stepsDone >= 1, 'it kept its checkpoint');
  t.equal(st(requeued.id).state, 'done', 'the USR1 cell was requeued and finished');
  t.ok((readCellState(sl, requeued.id)?.attempts ?? 0) >= 2 && readCellState(sl, requeued.id)?.resumed, 'requeued task resumed its cell');
  const taskLog = fs.readFileSync(path.join(sl, 'slurm', `${sub.job}_1.out`), 'utf8');
  t.match(taskLog, /requeueing/, 'the batch script requeued the task');
  t.comment('task 1 log: ' + taskLog.split('\n').filter((l) => l.startsWith('==')).join(' | '));
  t.equal(st(m.cells[2].id).state, 'done');
  t.equal(st(m.cells[3].id).state, 'done');
  const partial = cli(['compare', sl]);
  t.match(partial.out, new RegExp(`missing: ${cancelled.id}`), 'compare names the missing cell');

  // --resume resubmits only the unfinished cell
  const R = cli(['sweep', '--resume', sl]);
  t.equal(R.code, 0, `resubmitted: ${R.out.trim()} ${R.err.trim()}`);
  const sub2 = readSubmissions(sl)[1];
  t.match(fs.readFileSync(sub2.script, 'utf8'), /#SBATCH --array=0%2\n/, 'only cell 0 resubmitted');
  await until(`job ${sub2.job} to finish`, () => queued(sub2.job!).length === 0, 180);
  t.ok(readCellState(sl, cancelled.id)?.resumed, 'the cancelled cell resumed from its checkpoint');
  const log0 = fs.readFileSync(path.join(cellDir(sl, cancelled.id), 'log.txt'), 'utf8').split(/\n== /);
  t.match(log0[log0.length - 1], /--resume/, 'the resubmitted task ran m2kd train --resume');
  t.notMatch(log0[log0.length - 1], /step 1\/2/, 'and did not redo step 1');
  const finalStatus = cli(['sweep', '--status', sl]);
  t.match(finalStatus.out, /4 cells: 4 done/, finalStatus.out);
  t.comment('\n' + finalStatus.out);

  const a = mergeSweep(local), b = mergeSweep(sl);
  t.same(b.missing, [], 'every cell done');
  t.same(numbers(b.results!), numbers(a.results!), 'merged Slurm results (with a cancelled+resumed and a requeued cell) equal the local run, step by step');
  const cmp = cli(['compare', sl]);
  t.comment('\n' + cmp.out);
  fs.rmSync(root, { recursive: true, force: true });
});
