// End-to-end incremental runs on a small synthetic dataset: every method runs; the teacher
// cache gives exactly the losses of computing teachers on the fly; a killed and resumed run
// ends with the same numbers; a teacher rebuilt by the bank equals the full snapshot of its
// step; memory accounting follows what is stored; bad input is a clear error.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Rng, Tensor, noGrad, tidy } from '../src/engine';
import type { ImageDataset, ImageSet } from '../src/data';
import { OrderRun, cloneModel, IlEvent, Experiment, parseMethods, METHODS, defaultConfig, IlConfig, randomOrder, teacherRequests } from '../src/il';
import { MaskedTeacherBank } from '../src/prune';
import { saveRunState, loadRunState } from '../src/il/checkpoint';

/** 4 classes of 1x12x12 images: a class-dependent bright quadrant plus noise (learnable). */
function synthetic(perClass: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const n = 4 * perClass, hw = 12;
  const images = rng.normal(n * hw * hw, 0, 0.3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels[i] = c;
    const oy = c < 2 ? 0 : 6, ox = c % 2 ? 6 : 0;
    for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) images[i * hw * hw + (oy + y) * hw + ox + x] += 1.5;
  }
  return { images, labels, n, channels: 1, height: hw, width: hw };
}

function dataset(perClass = 12): ImageDataset {
  return { name: 'synthetic', classes: 4, classNames: ['a', 'b', 'c', 'd'], train: synthetic(perClass, 1), test: synthetic(6, 2) };
}

function config(over: Partial<IlConfig> = {}): IlConfig {
  return { ...defaultConfig('synthetic', 2), epochs: 2, milestones: [1], finetuneEpochs: 1, batchSize: 16, lr: 0.5, memory: 8, evalBatchSize: 16, flip: true, ...over };
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-ilrun-'));
}

async function runOrder(method: string, cfg: IlConfig, opts: { events?: IlEvent[]; ckpt?: string; stopAfterEpochs?: number; perClass?: number } = {}) {
  const ds = dataset(opts.perClass);
  const ctrl = new AbortController();
  let epochs = 0;
  const run = new OrderRun({
    dataset: ds,
    method: METHODS[method],
    order: randomOrder(4, 7),
    orderIndex: 0,
    cfg,
    signal: ctrl.signal,
    emit: (e) => opts.events?.push(e),
    onCheckpoint: (r, at) => {
      if (opts.ckpt) saveRunState(opts.ckpt, r, cfg);
      if (at.phase !== 'step' && opts.stopAfterEpochs !== undefined && ++epochs >= opts.stopAfterEpochs) ctrl.abort();
    },
  });
  return { run, ds };
}

t.test('every method runs two steps and reports complete results', async (t) => {
  for (const name of Object.keys(METHODS)) {
    const { run } = await runOrder(name, config());
    const steps = await run.run();
    t.equal(steps.length, 2, `${name}: two steps`);
    const s = steps[1];
    t.equal(s.classes_seen, 4);
    t.ok(s.top1 >= 0 && s.top1 <= 100 && s.top5 === 100, `${name}: top1 ${s.top1}, top5 ${s.top5} (top-4 of 4 classes)`);
    t.equal(s.per_group.length, 2);
    t.equal(s.confusion.length, 4);
    t.equal(s.confusion.flat().reduce((a, b) => a + b, 0), 24, `${name}: confusion counts every test image`);
    t.equal(s.forgetting.length, 1);
    const m = METHODS[name];
    if (m.prune) {
      t.ok(s.memory.masks > 0 && s.memory.bn > 0 && s.memory.heads > 0 && s.memory.snapshots === 0, `${name}: masks + BN + heads`);
      t.ok(s.mask_occupancy && Object.keys(s.mask_occupancy).length === 31, `${name}: occupancy per conv layer`);
    } else if (m.distill !== 'none') t.ok(s.memory.snapshots > 0 && s.memory.masks === 0, `${name}: full snapshots`);
    else t.equal(s.memory.total - s.memory.exemplars, 0, `${name}: nothing kept`);
    if (m.exemplars) t.equal(s.memory.exemplars, 8 * (144 + 4), `${name}: 8 exemplars as u8 pixels + labels`);
    t.equal(s.memory.total, s.memory.masks + s.memory.bn + s.memory.heads + s.memory.snapshots + s.memory.exemplars);
    run.dispose();
  }
});

t.test('the learning signal is real: FT on step 1 learns the two classes', async (t) => {
  const { run } = await runOrder('ft', config({ epochs: 5, milestones: [4], lr: 0.2 }), { perClass: 64 });
  const steps = await run.run();
  t.ok(steps[0].top1 >= 90, `step 1 top-1 ${steps[0].top1} >= 90`);
  t.ok(steps[1].per_group[0] < steps[0].per_group[0], `FT forgets group 1 (${steps[0].per_group[0]} -> ${steps[1].per_group[0]})`);
  run.dispose();
});

t.test('teacher cache and on-the-fly teachers give identical losses', async (t) => {
  for (const method of ['m2kd', 'lwf-mc', 'icarl-m2kd']) {
    const losses: number[][] = [];
    for (const cache of [true, false]) {
      const events: IlEvent[] = [];
      const { run } = await runOrder(method, config({ teacherCache: cache }), { events });
      await run.run();
      losses.push(events.filter((e) => e.kind === 'batch').map((e) => (e as { loss: number }).loss));
      run.dispose();
    }
    t.equal(losses[0].length, losses[1].length);
    t.same(losses[0], losses[1], `${method}: every batch loss identical with and without the cache`);
  }
});

t.test('a killed run resumes from its checkpoint to the same final numbers', async (t) => {
  for (const method of ['m2kd', 'icarl', 'lwf-mc-mmd']) {
    const cfg = config();
    const full = await runOrder(method, cfg);
    const want = await full.run.run();
    full.run.dispose();
    for (const stopAt of METHODS[method].prune ? [1, 3, 4] : [1, 3]) {
      const dir = path.join(tmpdir(), 'ckpt');
      const a = await runOrder(method, cfg, { ckpt: dir, stopAfterEpochs: stopAt });
      await t.rejects(a.run.run(), /aborted/, `${method}: killed after ${stopAt} epochs`);
      a.run.dispose();
      const b = await runOrder(method, cfg, { ckpt: dir });
      loadRunState(dir, b.run);
      const got = await b.run.run();
      b.run.dispose();
      t.same(got.map((s) => [s.top1, s.top5, s.final_loss, s.per_group]), want.map((s) => [s.top1, s.top5, s.final_loss, s.per_group]), `${method}: resumed after ${stopAt} epochs = uninterrupted`);
    }
  }
});

t.test('resume from a truncated checkpoint is a clear error', async (t) => {
  const dir = path.join(tmpdir(), 'ckpt');
  const cfg = config();
  const a = await runOrder('m2kd', cfg, { ckpt: dir, stopAfterEpochs: 2 });
  await t.rejects(a.run.run(), /aborted/);
  a.run.dispose();
  const model = path.join(dir, 'model.safetensors');
  fs.truncateSync(model, Math.floor(fs.statSync(model).size / 2));
  const b = await runOrder('m2kd', cfg);
  t.throws(() => loadRunState(dir, b.run), /cannot resume: .*model\.safetensors/);
  fs.writeFileSync(path.join(dir, 'state.json'), '{"format": "m2kd-run-st');
  t.throws(() => loadRunState(dir, b.run), /cannot resume: .*state\.json is unreadable or truncated/);
  b.run.dispose();
});

t.test('a teacher rebuilt by the bank equals the full snapshot saved at its step', async (t) => {
  // 4 steps of 1 class: at steps 2..4 every earlier teacher is checked against the full model saved at its step
  const cfg = config({ classesPerStep: 1, epochs: 2 });
  const ds = dataset();
  const saved = new Map<number, ReturnType<typeof cloneModel>>();
  let checked = 0;
  const run: OrderRun = new OrderRun({
    dataset: ds,
    method: METHODS.m2kd,
    order: randomOrder(4, 7),
    orderIndex: 0,
    cfg,
    onCheckpoint: (r, at) => {
      if (at.phase === 'step') saved.set(r.position.stepsDone, cloneModel(r.model));
      if (at.phase === 'train' && at.epoch === 2 && r.position.stepsDone >= 1) {
        // step t has trained: shared weights and BN changed; teacher k must still be step k's model
        const t0 = r.position.stepsDone + 1;
        const bank = new MaskedTeacherBank(r.model, r.masks!.masks, r.snapshots);
        const x = Tensor.fromArray(ds.test.images.slice(0, 8 * 144), [8, 1, 12, 12]);
        for (let k = 1; k < t0; k++) {
          const snap = saved.get(k)!;
          const [o] = bank.forward(x, [{ step: k, start: 0, end: k }]);
          const want = noGrad(() => tidy(() => snap.forwardAux(x).logits.toFloat32()));
          const wantAux = noGrad(() => tidy(() => snap.forwardAux(x).auxLogits.toFloat32()));
          const got = o.main.toFloat32(), gotAux = o.aux.toFloat32();
          let d = 0;
          for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]), Math.abs(gotAux[i] - wantAux[i]));
          t.ok(d <= 1e-5, `step ${t0}, teacher ${k}: max |bank - snapshot| = ${d} <= 1e-5`);
          if (k === t0 - 1) {
            const live = noGrad(() => tidy(() => r.model.forwardAux(x).logits.toFloat32()));
            let dl = 0;
            for (let i = 0; i < 8; i++) for (let j = 0; j < k; j++) dl = Math.max(dl, Math.abs(live[i * t0 + j] - want[i * k + j]));
            t.ok(dl > 1e-3, `the live model has moved away from step ${k} (${dl}), so the check is not vacuous`);
          }
          o.main.dispose();
          o.aux.dispose();
          checked++;
        }
        x.dispose();
        bank.dispose();
      }
    },
  });
  await run.run();
  t.equal(checked, 6, 'teachers 1; 1,2; 1,2,3 checked');
  for (const m of saved.values()) m.dispose();
  run.dispose();
});

t.test('methods, teacher assignment and bad input', async (t) => {
  t.same(parseMethods('m2kd, ft').map((m) => m.name), ['m2kd', 'ft']);
  t.throws(() => parseMethods('m2kd,lwf'), /unknown method 'lwf': valid methods are ft, lwf-mc/);
  t.throws(() => parseMethods(''), /no method/);
  const cols: [number, number][] = [[0, 2], [2, 4], [4, 6], [6, 8], [8, 10]];
  t.same(teacherRequests(METHODS['lwf-mc'], 4, cols), [{ step: 3, start: 0, end: 6 }], 'LwF-MC: the last model on all old classes');
  t.same(teacherRequests(METHODS.m2kd, 4, cols), [{ step: 1, start: 0, end: 2 }, { step: 2, start: 2, end: 4 }, { step: 3, start: 4, end: 6 }], 'MMD: group k from teacher k');
  t.same(teacherRequests(METHODS['m2kd-skip1'], 4, cols), [{ step: 2, start: 0, end: 4 }, { step: 3, start: 4, end: 6 }], 'skip1: group 1 from teacher 2');
  t.same(teacherRequests(METHODS['m2kd-skip2'], 5, cols), [{ step: 3, start: 0, end: 6 }, { step: 4, start: 6, end: 8 }], 'skip2: groups 1-2 from teacher 3');
  const ds = dataset();
  t.throws(() => new Experiment({ dataset: ds, methods: parseMethods('ft'), orders: [randomOrder(4, 1)], config: config({ classesPerStep: 3 }) }), /cannot be split into groups of 3: 4 is not divisible by 3/);
  const file = path.join(tmpdir(), 'a-file');
  fs.writeFileSync(file, 'x');
  t.throws(() => new Experiment({ dataset: ds, methods: parseMethods('ft'), orders: [randomOrder(4, 1)], config: config(), out: path.join(file, 'sub') }), /output folder .* is not writable/);
  t.throws(() => new Experiment({ dataset: ds, methods: parseMethods('icarl'), orders: [randomOrder(4, 1)], config: config({ memory: 3 }) }), /memory 3 holds fewer exemplars than the 4 classes/);
  t.throws(() => new Experiment({ dataset: ds, methods: parseMethods('ft'), orders: [randomOrder(4, 1)], config: config({ ratio: 1 }) }), /ratio must be in \[0, 1\)/);
});

t.test('Experiment aggregates orders into mean ± std and writes checkpoints', async (t) => {
  const out = tmpdir();
  const ex = new Experiment({ dataset: dataset(), methods: parseMethods('ft,m2kd'), orders: [randomOrder(4, 1), randomOrder(4, 2)], config: config({ epochs: 1, milestones: [], finetuneEpochs: 1 }), out, checkpointEvery: 'step' });
  const partial: number[] = [];
  ex.on('partial', (r) => partial.push(Object.keys(r.methods).length));
  const r = await ex.run();
  t.same(Object.keys(r.methods), ['ft', 'm2kd']);
  const m = r.methods.m2kd;
  t.equal(m.orders.length, 2);
  const avgs = m.orders.map((o) => o.avg_incremental_top1);
  t.ok(Math.abs(m.avg_incremental_top1.mean - (avgs[0] + avgs[1]) / 2) < 1e-9, 'mean over orders');
  t.ok(Math.abs(m.avg_incremental_top1.std - Math.abs(avgs[0] - avgs[1]) / Math.SQRT2) < 1e-9, 'sample std over orders');
  t.equal(m.top1_per_step.length, 2);
  t.same(partial, [1, 1, 2, 2], 'a partial result after every (method, order)');
  t.ok(fs.existsSync(path.join(out, 'checkpoints', 'm2kd', 'order-1', 'state.json')));
  t.ok(fs.existsSync(path.join(out, 'checkpoints', 'm2kd', 'order-1', 'masks.safetensors')));
});

t.test('BatchNorm recalibration: running statistics become the average over the step data, weights untouched', async (t) => {
  const { ops } = await import('../src/engine');
  const cfg = config({ bnRecalibrate: true, batchSize: 8, epochs: 1, milestones: [] });
  const { run } = await runOrder('ft', cfg);
  run.groups.length = 1; // one step
  await run.run();
  const set = run.stepTrainSet(1); // 24 images, 3 batches of 8
  const want = noGrad(() =>
    tidy(() => {
      const y = ops.conv2d(Tensor.fromArray(set.images, [set.n, 1, 12, 12]), run.model.conv1.weight, null, { padding: 1 }).toFloat32();
      const c = 16, hw = 144, mean = new Float64Array(c);
      for (let i = 0; i < set.n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < hw; p++) mean[ch] += y[(i * c + ch) * hw + p];
      return Array.from(mean, (m) => m / (set.n * hw));
    }),
  );
  const got = Array.from(run.model.bn1.runningMean.toFloat32());
  let d = 0;
  for (let ch = 0; ch < 16; ch++) d = Math.max(d, Math.abs(got[ch] - want[ch]));
  t.ok(d < 1e-5, `bn1 running mean = mean of conv1 outputs over the step's images (max diff ${d})`);
  t.equal(run.model.bn1.momentum, 0.1, 'momentum restored');
  run.dispose();
});
