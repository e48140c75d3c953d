// m2kd sweep without a cluster: the grid as cells (sweep.json), the sbatch script (written with
// --dry-run, checked with bash -n), the local executor with --jobs, a killed sweep continued with
// --resume (finished cells skipped, the interrupted one resumed, numbers equal to an uninterrupted
// sweep), failed cells with their error line, and m2kd compare on a sweep folder.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { planSweep, resolveMethods } from '../src/api';
import { sbatchScript, readManifest, writeManifest, sweepStatus, mergeSweep, readSubmissions, readCellState, runCell, cellSteps, cellDir, planManifest } from '../src/sweep';
import { findRunState } from '../src/il/checkpoint';
import type { RunResults } from '../src/il/results';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const TINY = ['--classes-per-step', '5', '--epochs', '2', '--train-per-class', '20', '--test-per-class', '5', '--no-plots'];

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-sweep-'));
}
function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
function numbers(r: RunResults) {
  return Object.fromEntries(Object.entries(r.methods).map(([k, m]) => [k, m.orders.map((o) => o.steps.map((s) => [s.top1, s.top5, s.per_group, s.final_loss, s.confusion]))]));
}

t.test('the grid as cells: stable ids, one method and one order each, the train arguments', async (t) => {
  const m = await planSweep({ dataset: 'mnist', methods: 'm2kd,icarl,ft', classesPerStep: 5, epochs: 1, orders: 2, ratios: [0.5, 0.9], memories: [20, 40], trainPerClass: 20, testPerClass: 5, plots: false });
  t.same(m.cells.map((c) => c.id), ['m2kd-r0.5-o1', 'm2kd-r0.5-o2', 'm2kd-r0.9-o1', 'm2kd-r0.9-o2', 'icarl-m20-o1', 'icarl-m20-o2', 'icarl-m40-o1', 'icarl-m40-o2', 'ft-o1', 'ft-o2']);
  const c = m.cells[3];
  t.equal(c.name, 'm2kd[ratio=0.9]');
  t.equal(c.config.ratio, 0.9);
  t.same(c.args.slice(c.args.indexOf('--method')), ['--method', 'm2kd', '--ratio', '0.9', '--orders', '1', '--order-seed', '2']);
  t.ok(c.args.includes('--no-plots') && c.args.join(' ').includes('--train-per-class 20'), c.args.join(' '));
  t.equal(m.cells[5].config.memory, 20);
  t.same(m.cells[8].order, m.cells[0].order, 'same class order for every row');
  t.notSame(m.cells[9].order, m.cells[8].order);
  const again = await planSweep({ dataset: 'mnist', methods: 'm2kd,icarl,ft', classesPerStep: 5, epochs: 1, orders: 2, ratios: [0.5, 0.9], memories: [20, 40], trainPerClass: 20, testPerClass: 5, plots: false });
  t.same(again.cells, m.cells, 'planning is deterministic');
  const explicit = await planSweep({ dataset: 'mnist', methods: 'ft', order: '9,8,7,6,5,4,3,2,1,0', classesPerStep: 5 });
  t.same(explicit.cells[0].args.slice(-2), ['--order', '9,8,7,6,5,4,3,2,1,0']);
  const ft = resolveMethods('ft')[0];
  const dup = () => planManifest({ flags: {}, methods: [ft, ft], base: explicit.cells[0].config, orders: [{ order: explicit.cells[0].order, seed: null, name: 'explicit' }], dataset: 'mnist', classes: 10 }, { kind: 'local' });
  t.throws(dup, /share the id ft-o1/, 'a method given twice is an error');
});

t.test('sbatch script: one array task per cell, throttle, warning signal, resources, valid bash', async (t) => {
  const dir = tmpdir();
  const m = await planSweep({ dataset: 'mnist', methods: 'm2kd,ft', orders: 2, classesPerStep: 5, out: dir });
  writeManifest(dir, m);
  const s = sbatchScript(dir, m, [0, 2, 3], { partition: 'gpu', time: '4:00:00', cpusPerTask: 4, mem: '8G', gpusPerTask: 1, maxRunning: 2, signalSeconds: 600, sbatchArgs: ['--qos=high', '--account=lab'] });
  for (const line of ['--array=0,2,3%2', '--signal=B:USR1@600', '--requeue', '--partition=gpu', '--time=4:00:00', '--cpus-per-task=4', '--mem=8G', '--gpus-per-task=1', '--qos=high', '--account=lab'])
    t.match(s, new RegExp(`^#SBATCH ${line.replace(/[%$.*+?^()|[\]\\]/g, '\\$&')}$`, 'm'), line);
  t.match(s, /CELLS=\(m2kd-o1 m2kd-o2 ft-o1 ft-o2\)/);
  t.match(s, /sweep --run-cell .* --cell "\$CELL"/);
  t.match(s, /trap '.*kill -TERM \$child.*' USR1/);
  t.match(s, /scontrol requeue "\$TASK"/);
  const file = path.join(dir, 'x.sbatch');
  fs.writeFileSync(file, s);
  const bash = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  t.equal(bash.status, 0, `bash -n: ${bash.stderr}`);
  t.throws(() => sbatchScript(dir, m, [], {}), /no cells/);
  t.throws(() => sbatchScript(dir, m, [0], { maxRunning: 0 }), /--max-running/);
  fs.rmSync(dir, { recursive: true, force: true });
});

t.test('m2kd sweep --executor slurm --dry-run writes the script and records it; --status shows pending cells', async (t) => {
  const dir = path.join(tmpdir(), 'sw');
  const r = cli(['sweep', '--method', 'ft', '--orders', '2', ...TINY, '--out', dir, '--executor', 'slurm', '--dry-run', '--partition', 'short', '--sbatch-arg=--qos=high', '--max-running', '1']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /2 of 2 cells in .*sweep-1\.sbatch/);
  const sub = readSubmissions(dir);
  t.equal(sub.length, 1);
  t.equal(sub[0].job, null);
  t.match(fs.readFileSync(sub[0].script, 'utf8'), /#SBATCH --array=0,1%1\n[^]*#SBATCH --partition=short\n[^]*#SBATCH --qos=high\n/);
  t.equal(readManifest(dir).executor.kind, 'slurm');
  const st = cli(['sweep', '--status', dir]);
  t.equal(st.code, 0, st.err);
  t.match(st.out, /2 cells: 0 done, 0 running, 2 pending, 0 failed/);
  const again = cli(['sweep', '--method', 'ft', '--orders', '2', ...TINY, '--out', dir]);
  t.not(again.code, 0);
  t.match(again.err, /already holds a sweep.*--resume/);
  const other = cli(['sweep', '--method', 'm2kd', '--orders', '2', ...TINY, '--resume', dir]);
  t.not(other.code, 0);
  t.match(other.err, /different grid/);
  const none = cli(['sweep', '--resume', path.dirname(dir)]);
  t.match(none.err, /holds no sweep/);
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

t.test('a failed cell: state failed with its error line', async (t) => {
  const dir = tmpdir();
  const m = await planSweep({ dataset: 'mnist', methods: 'ft', classesPerStep: 5, out: dir });
  m.cells[0].args = ['--dataset', 'folder', '--data', path.join(dir, 'nowhere'), '--method', 'ft'];
  writeManifest(dir, m);
  const r = await runCell(dir, m.cells[0], cellSteps(m, m.cells[0]), { threads: 1 });
  t.equal(r.state, 'failed');
  t.match(r.error ?? '', /^m2kd: .*nowhere/, r.error ?? '');
  const row = sweepStatus(dir, m)[0];
  t.equal(row.state, 'failed');
  t.equal(row.detail, r.error);
  t.equal(readCellState(dir, m.cells[0].id)?.exit_code, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});

t.test('local executor: --jobs 2; a killed sweep continues with --resume and ends with the same numbers', async (t) => {
  const root = tmpdir();
  const ref = path.join(root, 'ref');
  const grid = ['--method', 'ft', '--orders', '2', ...TINY];
  const a = cli(['sweep', ...grid, '--out', ref, '--jobs', '2', '--threads', '2']);
  t.equal(a.code, 0, a.err);
  t.match(a.err, /2 at a time, 1 thread each/);
  t.match(a.out, /2\/2 cells done/);
  t.ok(fs.existsSync(path.join(ref, 'results.json')), 'merged results.json in the sweep folder');
  for (const c of readManifest(ref).cells) t.ok(fs.existsSync(path.join(cellDir(ref, c.id), 'results.json')), `${c.id} is a run folder`);

  // the same grid one cell at a time, killed while the second cell runs
  const dir = path.join(root, 'killed');
  const p = spawn(process.execPath, [CLI, 'sweep', ...grid, '--out', dir, '--jobs', '1', '--threads', '1'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((res) => p.on('exit', (c) => res(c)));
  const end = Date.now() + 240_000;
  while (!findRunState(path.join(cellDir(dir, 'ft-o2'), 'checkpoints', 'ft', 'order-0'))) {
    if (Date.now() > end) throw new Error('the second cell never wrote a checkpoint');
    await new Promise((r) => setTimeout(r, 100));
  }
  p.kill('SIGTERM');
  t.not(await exited, 0, 'the stopped sweep exits non-zero');
  const m = readManifest(dir);
  const rows = sweepStatus(dir, m);
  t.same(rows.map((r) => r.state), ['done', 'pending'], rows.map((r) => `${r.cell.id} ${r.state} ${r.progress} ${r.detail}`).join('; '));
  const partial = cli(['compare', dir]);
  t.equal(partial.code, 0, partial.err);
  t.match(partial.out, /1 of 2 cells done; missing: ft-o2/);
  t.equal(mergeSweep(dir).results!.methods.ft.orders.length, 1, 'a partial merge has the finished orders');

  const b = cli(['sweep', '--resume', dir]);
  t.equal(b.code, 0, b.err);
  t.equal(readCellState(dir, 'ft-o1')?.attempts, 1, 'the finished cell was skipped');
  t.equal(readCellState(dir, 'ft-o2')?.attempts, 2);
  t.ok(readCellState(dir, 'ft-o2')?.resumed, 'the interrupted cell resumed from its checkpoint');
  t.same(numbers(mergeSweep(dir).results!), numbers(mergeSweep(ref).results!), 'same numbers as the uninterrupted sweep');
  const cmp = cli(['compare', dir, '--markdown']);
  t.match(cmp.out, /2 of 2 cells done/);
  t.notMatch(cmp.out, /missing/);
  fs.rmSync(root, { recursive: true, force: true });
});
