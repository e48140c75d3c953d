// ResNet-18 in incremental runs: `m2kd train --dataset folder --arch resnet18 --size N` end to
// end on a folder generated here (a few classes of small PNGs, upscaled by the loader) for
// m2kd (the teacher bank rebuilds ResNet-18 teachers), lwf-mc and ft; the ImageNet preset's
// recipe and headline metric; and `m2kd memory`, whose byte counts must equal what the runs
// themselves report after every step (the same functions count both).
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import sharp = require('sharp');
import { resolveConfig, PRESETS } from '../src/api';
import { readResults, comparisonTableData, perStepComparisonData, entriesOf } from '../src/report';
import { memoryPlan, parseMethods } from '../src/il';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-r18-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, M2KD_THREADS: '2' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** root/{train,val}/c<k>/<i>.png: 12x12 RGB images, one colour pattern per class plus noise. */
async function makeFolder(root: string, classes: number, perTrain: number, perTest: number): Promise<void> {
  const S = 12;
  for (const [split, n] of [['train', perTrain], ['val', perTest]] as const)
    for (let c = 0; c < classes; c++)
      for (let i = 0; i < n; i++) {
        const px = Buffer.alloc(S * S * 3);
        for (let p = 0; p < S * S; p++)
          for (let ch = 0; ch < 3; ch++) px[p * 3 + ch] = (((p * (c + 3) + ch * 71 + i * 13) * 37) ^ (c * 85)) & 0xff;
        const file = path.join(root, split, `c${c}`, `${i}.png`);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        await sharp(px, { raw: { width: S, height: S, channels: 3 } }).png().toFile(file);
      }
}

t.test('m2kd train --dataset folder --arch resnet18 --size 64: m2kd, lwf-mc and ft end to end', async (t) => {
  const root = path.join(tmp, 'folder');
  await makeFolder(root, 4, 6, 3);
  const out = path.join(tmp, 'run');
  const r = cli(['train', '--dataset', 'folder', '--data', root, '--arch', 'resnet18', '--size', '64', '--method', 'm2kd,lwf-mc,ft',
    '--classes-per-step', '2', '--epochs', '1', '--finetune-epochs', '1', '--batch', '8', '--memory', '10', '--out', out, '--no-plots']);
  t.equal(r.code, 0, `exit 0; stderr: ${r.err.slice(-1500)}`);
  const res = readResults(out);
  t.same(res.dataset.image_shape, [3, 64, 64], 'images resized to --size 64');
  t.same(Object.keys(res.methods), ['m2kd', 'lwf-mc', 'ft']);
  for (const m of Object.values(res.methods)) {
    t.equal(m.config.arch, 'resnet18', `${m.method}: ResNet-18 recorded in the config`);
    t.same(m.orders[0].steps.map((s) => s.classes_seen), [2, 4], `${m.method}: two steps`);
    for (const s of m.orders[0].steps) t.ok(Number.isFinite(s.top1) && s.top5 === 100, `${m.method} step ${s.step}: top-1 ${s.top1}, top-5 ${s.top5} (4 classes: top-5 is every class)`);
  }
  const occ = res.methods.m2kd.orders[0].steps[0].mask_occupancy!;
  for (const name of ['conv1.weight', 'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight', 'layer4.1.conv2.weight'])
    t.ok(occ[name] && occ[name].owned[0] > 0 && occ[name].free > 0, `${name} is masked and pruned (owned ${occ[name]?.owned[0].toFixed(2)}, free ${occ[name]?.free.toFixed(2)})`);
  t.ok(res.methods.m2kd.orders[0].steps[1].seconds.teachers > 0, 'step 2 of m2kd ran the ResNet-18 teacher bank');
  // memory: `m2kd memory`'s counts are the run's, step by step
  const plan = memoryPlan({ arch: 'resnet18', classes: 4, classesPerStep: 2, methods: parseMethods('m2kd,lwf-mc,ft'), imageBytes: 3 * 64 * 64, inChannels: 3 });
  for (const row of plan)
    row.perStep.forEach((want, i) => t.same(res.methods[row.method.name].orders[0].steps[i].memory, want, `${row.method.name} step ${i + 1}: memory plan == run (${want.total} bytes)`));
  t.ok(res.methods['lwf-mc'].orders[0].steps[1].memory.snapshots > 40e6, 'LwF-MC keeps a full ResNet-18 (> 40 MB)');
  t.ok(res.methods.m2kd.orders[0].steps[1].memory.masks > 0 && res.methods.m2kd.orders[0].steps[1].memory.snapshots === 0, 'M²KD keeps masks, no full model');
});

t.test('--arch defaults: resnet32 below 64 pixels, resnet18 from 64; bad values are clear errors', async (t) => {
  const root = path.join(tmp, 'small');
  await makeFolder(root, 2, 3, 1);
  const out = path.join(tmp, 'run32');
  const r = cli(['train', '--dataset', 'folder', '--data', root, '--method', 'ft', '--classes-per-step', '1', '--epochs', '1', '--batch', '2', '--out', out, '--no-plots']);
  t.equal(r.code, 0, r.err.slice(-800));
  t.equal(readResults(out).methods.ft.config.arch, 'resnet32', 'size 32 (default): ResNet-32');
  const bad = cli(['train', '--dataset', 'folder', '--data', root, '--arch', 'vgg', '--out', path.join(tmp, 'bad')]);
  t.not(bad.code, 0);
  t.match(bad.err, /unknown architecture "vgg"; valid: resnet32, resnet18/);
  const badSize = cli(['train', '--dataset', 'folder', '--data', root, '--size', '0', '--out', path.join(tmp, 'bad2')]);
  t.match(badSize.err, /--size must be an integer >= 1/);
});

t.test('--preset paper-imagenet100: the paper iILSVRC-small recipe, top-5 headline', async (t) => {
  const p = PRESETS['paper-imagenet100'];
  t.match(p, { dataset: 'folder', classesPerStep: 10, size: 224, headline: 'top5' });
  const c = resolveConfig({ preset: 'paper-imagenet100' }, 100);
  t.match(c, { epochs: 60, batchSize: 128, lr: 2.0, milestones: [20, 40], gamma: 0.2, finetuneEpochs: 30, flip: true, crop: 0, arch: 'resnet18', weightDecayFirst: 1e-5, weightDecayLater: 0, momentum: 0.9, ratio: 0.75 });
  // the headline in tables: a results.json with protocol.headline top5 leads with top-5
  const res = readResults(path.join(tmp, 'run'));
  const r5 = { ...res, protocol: { ...res.protocol, headline: 'top5' as const } };
  const cmp = comparisonTableData(r5);
  t.same(cmp.headers.slice(0, 3), ['method', 'avg inc. top-5', 'avg inc. top-1'], 'top-5 first, top-1 beside it');
  t.match(perStepComparisonData(entriesOf(r5)).title, /^Top-5 accuracy/);
  t.same(comparisonTableData(res).headers.slice(0, 3), ['method', 'avg inc. top-1', 'avg inc. top-5'], 'other runs: top-1 first');
});

t.test('m2kd memory: both Table 2 settings', async (t) => {
  const r32 = cli(['memory', '--arch', 'resnet32', '--classes', '100', '--classes-per-step', '10', '--json']);
  t.equal(r32.code, 0, r32.err);
  const j32 = JSON.parse(r32.out);
  t.equal(j32.steps, 10);
  const m = j32.methods.m2kd.final, l = j32.methods['lwf-mc'].final, ic = j32.methods.icarl.final;
  t.ok(m.masks > 0 && m.bn > 0 && m.heads > 0 && m.snapshots === 0 && m.exemplars === 0, 'M²KD: masks, BN and heads');
  t.ok(l.snapshots > 0 && l.masks === 0, 'LwF-MC: one full snapshot');
  t.equal(ic.exemplars, 2000 * 3072 + 4 * 2000, 'iCaRL: 2000 u8 32x32 RGB images and their labels');
  t.ok(m.total < ic.total, 'M²KD keeps less than iCaRL at 2000 exemplars');
  const r18 = cli(['memory', '--arch', 'resnet18', '--classes', '100', '--classes-per-step', '10']);
  t.equal(r18.code, 0, r18.err);
  t.match(r18.out, /resnet18, 100 classes, 10 per step/);
  t.match(r18.out, /M²KD/);
  t.match(r18.out, /paper-style/);
  const bad = cli(['memory', '--classes', '100', '--classes-per-step', '7']);
  t.match(bad.err, /100 classes cannot be split into steps of 7/);
});
