// Recipe knobs: --loss-norm dataset|seen (every BCE term's denominator), --milestones and
// --gamma (the lr schedule, taken as given), and the default learning rate that follows the
// dataset's class count (2.0 × D / 100; under 'seen' 2.0 × C_1 / 100): flags, API fields,
// validation, the loss scale of a real batch, and the lines in results.json's config.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { Rng, Tensor, tidy } from '../src/engine';
import type { ImageDataset, ImageSet } from '../src/data';
import { OrderRun, METHODS, defaultConfig, defaultLr, IlConfig, randomOrder, validateConfig } from '../src/il';
import { batchLoss } from '../src/il/targets';
import { train, resolveConfig } from '../src/api';
import { trainOptions } from '../src/cli/train';
import { Flags, parseArgs } from '../src/cli/args';
import { readResults } from '../src/report';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');

t.test('the default lr follows the class count', async (t) => {
  t.equal(defaultLr(100, 10), 2.0, 'CIFAR-100: the paper\'s 2.0');
  t.equal(defaultLr(10, 2), 0.2, '10 classes: 0.2');
  t.equal(defaultLr(20, 5), 0.4, '20 classes (CIFAR-100 coarse)');
  t.equal(defaultLr(100, 10, 'seen'), 0.2, "'seen': 2.0 × C_1 / 100");
  t.equal(defaultConfig('mnist', 2).lr, 0.2, 'mnist keeps its measured 0.2 (= the rule at D = 10)');
  t.equal(defaultConfig('fashion-mnist', 2).lr, 0.2);
  t.equal(defaultConfig('cifar10', 2).lr, 0.2);
  t.equal(defaultConfig('cifar100', 10).lr, 2.0);
  t.equal(defaultConfig('folder', 2, 6).lr, 0.12, 'a 6-class folder');
  t.equal(defaultConfig('folder', 2).lr, 2.0, 'no count given: D = 100');
  t.equal(defaultConfig('cifar100', 10).lossNorm, 'dataset');
  t.equal(resolveConfig({ dataset: 'folder' }, 20).lr, 0.4, 'folders: from their class count');
  t.equal(resolveConfig({ dataset: 'cifar100', classesPerStep: 5 }, 20).lr, 0.4, 'CIFAR-100 coarse labels: 20 classes');
  t.equal(resolveConfig({ dataset: 'cifar100' }, 100).lr, 2.0);
  t.equal(resolveConfig({ dataset: 'mnist', lossNorm: 'seen' }, 10).lr, 0.04, "'seen': 2.0 × 2 / 100");
  t.equal(resolveConfig({ preset: 'paper-cifar100', lossNorm: 'seen' }, 100).lr, 0.2);
  t.equal(resolveConfig({ dataset: 'mnist', lossNorm: 'seen', lr: 0.5 }, 10).lr, 0.5, 'a given lr wins');
  t.equal(resolveConfig({ dataset: 'folder', lr: 1.5 }, 20).lr, 1.5);
});

t.test('--milestones and --gamma: taken as given, validated', async (t) => {
  const c = resolveConfig({ preset: 'paper-cifar100', epochs: 60, milestones: [20, 40], gamma: 0.2 }, 100);
  t.same(c.milestones, [20, 40], 'not rescaled with --epochs');
  t.equal(c.gamma, 0.2);
  t.same(resolveConfig({ preset: 'paper-cifar100', epochs: 60 }, 100).milestones, [30], 'without --milestones the default scales');
  t.same(resolveConfig({ dataset: 'mnist', milestones: [] }, 10).milestones, [], 'none');
  t.equal(resolveConfig({ dataset: 'mnist', gamma: 0.5 }, 10).gamma, 0.5);
  const base = defaultConfig('mnist', 2);
  for (const [over, re] of [
    [{ milestones: [4, 2] }, /milestones must be increasing positive integers/],
    [{ milestones: [0] }, /milestones must be increasing positive integers/],
    [{ milestones: [1.5] }, /milestones must be increasing/],
    [{ gamma: 0 }, /gamma must be a positive number/],
    [{ gamma: NaN }, /gamma must be a positive number/],
    [{ lossNorm: 'mean' }, /loss norm must be 'dataset' or 'seen'/],
  ] as [Partial<IlConfig>, RegExp][])
    t.throws(() => validateConfig({ ...base, ...over }), re, JSON.stringify(over));
  t.doesNotThrow(() => validateConfig({ ...base, milestones: [2, 5], gamma: 0.1, lossNorm: 'seen' }));
  // the flags
  const parse = (argv: string[]) => trainOptions(new Flags(parseArgs(argv).flags), argv, false);
  t.match(parse(['--loss-norm', 'seen', '--milestones', '20,40', '--gamma', '0.1', '--stream', 'on']), { lossNorm: 'seen', milestones: [20, 40], gamma: 0.1, stream: true });
  t.match(parse(['--milestones', 'none', '--stream', 'auto']), { milestones: [], stream: 'auto' });
  t.match(parse([]), { lossNorm: undefined, milestones: undefined, gamma: undefined, stream: undefined });
  t.throws(() => parse(['--loss-norm', 'mean']), /--loss-norm must be dataset or seen, got 'mean'/);
  t.throws(() => parse(['--milestones', '20,x']), /--milestones must be a comma list of epochs \(or none\), got '20,x'/);
  t.throws(() => parse(['--stream', 'maybe']), /--stream must be on, off or auto/);
  const r = spawnSync(process.execPath, [CLI, 'train', '--milestones', '5,3', '--out', fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-recipe-'))], { encoding: 'utf8' });
  t.not(r.status, 0);
  t.match(r.stderr, /milestones must be increasing positive integers \(epochs\), got \[5,3\]/, 'the CLI names the bad schedule');
});

/** 4 classes of 1x8x8 images (noise). */
function synthetic(n: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  return { images: rng.normal(n * 64, 0, 1), labels: Int32Array.from({ length: n }, (_, i) => i % 4), n, channels: 1, height: 8, width: 8 };
}

t.test("--loss-norm seen: every term divided by batch × classes seen instead of × the dataset's classes", async (t) => {
  const ds: ImageDataset = { name: 'synthetic', classes: 4, classNames: ['a', 'b', 'c', 'd'], train: synthetic(16, 1), test: synthetic(8, 2) };
  const lossOf = (lossNorm: 'dataset' | 'seen', method: string) => {
    const cfg: IlConfig = { ...defaultConfig('synthetic', 2), lossNorm, batchSize: 8, flip: false };
    const run = new OrderRun({ dataset: ds, method: METHODS[method], order: randomOrder(4, 1), orderIndex: 0, cfg });
    try {
      const x = ds.train.images.subarray(0, 8 * 64);
      return tidy(() => batchLoss(run, Tensor.fromArray(x.slice(), [8, 1, 8, 8]), Int32Array.from([0, 1, 0, 1, 1, 0, 0, 1]), new Uint8Array(8), Int32Array.from({ length: 8 }, (_, i) => i), 1).item());
    } finally {
      run.dispose();
    }
  };
  for (const method of ['ft', 'm2kd']) {
    const d = lossOf('dataset', method), s = lossOf('seen', method);
    // step 1: C_1 = 2 seen classes, D = 4: the 'seen' loss is D / C_1 = 2 times the 'dataset' one
    t.ok(Math.abs(s / d - 2) < 1e-5, `${method}${method === 'm2kd' ? ' (main + auxiliary terms)' : ''}: seen / dataset = ${(s / d).toFixed(6)}, expected 2`);
  }
});

t.test('results.json records the knobs', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-recipe-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  await train({ dataset: 'mnist', methods: 'ft', classesPerStep: 5, epochs: 2, trainPerClass: 6, testPerClass: 3, lossNorm: 'seen', milestones: [1], gamma: 0.5, out, plots: false });
  const cfg = readResults(out).methods.ft.config as Record<string, unknown>;
  t.match(cfg, { lossNorm: 'seen', milestones: [1], gamma: 0.5, lr: 0.1 }, "lossNorm, milestones, gamma and the 'seen' default lr (2.0 × 5 / 100)");
});
