// Numeric faults: a NaN or infinite loss stops the run before the update, naming method, order,
// step, epoch and batch and suggesting a lower --lr; non-finite weights are never checkpointed, so
// the last good checkpoint stays byte-for-byte; `m2kd train --lr <huge>` ends with a clear message.
import t from 'tap';
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../src/engine';
import type { ImageDataset, ImageSet } from '../src/data';
import { OrderRun, METHODS, defaultConfig, randomOrder } from '../src/il';
import { saveRunState, findRunState } from '../src/il/checkpoint';
import { checkLoss, NumericFaultError } from '../src/il/guard';
import { tmpdir, cliSync, listTree } from './reliability-util';

function synthetic(perClass: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const n = 4 * perClass, hw = 8;
  const images = rng.normal(n * hw * hw, 0, 0.3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 4;
    images[i * hw * hw + (i % 4) * 9] += 2;
  }
  return { images, labels, n, channels: 1, height: hw, width: hw };
}
const dataset: ImageDataset = { name: 'synthetic', classes: 4, classNames: ['a', 'b', 'c', 'd'], train: synthetic(8, 1), test: synthetic(3, 2) };

t.test('checkLoss: finite passes; NaN and ±Infinity name the site and suggest a lower lr', async (t) => {
  const site = { method: 'm2kd', order: 0, step: 2, phase: 'finetune', epoch: 3, batch: 7, lr: 2 };
  checkLoss(0.5, site);
  for (const v of [NaN, Infinity, -Infinity]) {
    const e = t.throws(() => checkLoss(v, site)) as NumericFaultError;
    t.ok(e instanceof NumericFaultError);
    t.match(e.message, /^m2kd · order 1 · step 2 · fine-tune epoch 3 · batch 7: the loss is (NaN|Infinity|-Infinity) \(lr 2\)/);
    t.match(e.message, /last good checkpoint is kept/);
    t.match(e.message, /try a lower --lr \(e\.g\. --lr 0\.2\)/);
    t.equal(e.suggestedLr, 0.2);
  }
});

t.test('a weight turned NaN mid-run: the run stops at the next batch and the last checkpoint stays intact', async (t) => {
  const dir = path.join(tmpdir('guard'), 'order-0');
  const cfg = { ...defaultConfig('synthetic', 2), epochs: 3, milestones: [], finetuneEpochs: 1, batchSize: 8, lr: 0.1, evalBatchSize: 16, flip: false };
  let saved = 0;
  let before: Record<string, Buffer> = {};
  const run = new OrderRun({
    dataset,
    method: METHODS.m2kd,
    order: randomOrder(4, 1),
    orderIndex: 0,
    cfg,
    onCheckpoint: (r) => {
      saveRunState(dir, r, cfg);
      saved++;
      if (saved === 2) {
        // the second checkpoint (step 1, epoch 2) is good; then a fault appears in the weights
        before = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
        const w = r.model.fc.weight.toFloat32();
        w[3] = NaN;
        r.model.fc.weight.set(w);
      }
    },
  });
  try {
    const err = (await run.run().then(() => null, (e: unknown) => e)) as NumericFaultError;
    t.ok(err instanceof NumericFaultError, `NumericFaultError: ${String(err)}`);
    t.match(err.message, /^m2kd · order 1 · step 1 · train epoch 3 · batch 1: the loss is NaN \(lr 0\.1\)/);
    t.equal(saved, 2, 'no checkpoint after the fault');
    t.equal(findRunState(dir), dir);
    const after = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
    t.same(Object.keys(after).sort(), Object.keys(before).sort());
    for (const f of Object.keys(before)) t.ok(after[f].equals(before[f]), `${f} unchanged`);
    // and saving the poisoned model is refused, leaving the checkpoint as it was
    t.throws(() => saveRunState(dir, run, cfg), /m2kd · order 1 · step 1 · train epoch 2: the weights diverged \(lr 0\.1\): 'fc\.weight' holds NaN/);
    for (const f of Object.keys(before)) t.ok(fs.readFileSync(path.join(dir, f)).equals(before[f]), `${f} still unchanged`);
    t.same(listTree(path.dirname(dir)), ['order-0', ...Object.keys(before).map((f) => `order-0/${f}`).sort()], 'no temp folder left');
  } finally {
    run.dispose();
  }
});

t.test('m2kd train with a far too high --lr: a clear message, the last good checkpoint, a lower-lr command', async (t) => {
  const out = tmpdir('guard');
  const r = cliSync(['train', '--method', 'm2kd', '--classes-per-step', '5', '--epochs', '3', '--train-per-class', '30', '--test-per-class', '10', '--no-plots', '--out', out, '--lr', '1e8']);
  t.equal(r.code, 1);
  t.match(r.err, /m2kd: m2kd · order 1 · step 1 · train epoch \d+(?: · batch \d+: the loss is (NaN|-?Infinity)|: the weights diverged)/);
  t.match(r.err, /try a lower --lr \(e\.g\. --lr 10000000\)/);
  t.match(r.err, /Start again with a lower learning rate:\n\s+m2kd train .* --lr 10000000\n/);
  t.notMatch(r.err, /\n\s+at /, 'no stack trace');
  const ck = path.join(out, 'checkpoints', 'm2kd', 'order-0');
  if (fs.existsSync(ck)) {
    const st = JSON.parse(fs.readFileSync(path.join(ck, 'state.json'), 'utf8')) as { position: unknown };
    t.ok(st.position, 'the checkpoint on disk is complete');
  }
  t.notOk(fs.existsSync(path.join(out, 'm2kd.lock')), 'lock released');
});
