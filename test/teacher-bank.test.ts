// The teacher bank against full snapshots. Three steps of a ResNet32Aux are simulated the way a
// run produces them: "train" (new random values for every free weight, BatchNorm and head),
// prune (in each conv the free weights are ranked by magnitude: the top 25% become owned by the
// step, the rest are set to zero and stay free), "fine-tune" (owned-by-this-step weights,
// BatchNorm and heads change again), then the step's snapshot is taken together with a deep
// copy of the whole model: that copy is the model as it was at the end of its own step. The
// bank built during step 3 from the live model, its masks and the snapshots must reproduce
// every copy (main and auxiliary logits, max abs diff <= 1e-5), so must rebuildTeacherModel,
// and SnapshotTeachers over the copies. The same for ResNet-18 (7x7 stride-2 stem, max pooling,
// option-B 1x1 downsample convs, all pruned) on 64x64 inputs, whole and in chunks of images.
import t from 'tap';
import { Rng, Tensor, noGrad, setSimd, ops, memory } from '../src/engine';
import { ResNet32Aux, createAuxModel, type AuxResNet, type Arch } from '../src/nn';
import { BatchNorm2d } from '../src/nn/layers';
import { MaskedTeacherBank, SnapshotTeachers, rebuildTeacherModel, takeStepSnapshot } from '../src/prune/teacherBank';
import { pruneLayer } from '../src/prune/masks';
import type { StepSnapshot } from '../src/prune/types';
import { BEST, LEVELS } from './helpers';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Every conv weight (rank 4): ResNet-18's stem and downsample convs included. */
function convNames(model: AuxResNet): string[] {
  return model.namedParameters().filter(([, p]) => p.rank === 4).map(([k]) => k);
}

function bns(model: AuxResNet): BatchNorm2d[] {
  const out: BatchNorm2d[] = [];
  const walk = (m: import('../src/nn').Module) => {
    if (m instanceof BatchNorm2d) out.push(m);
    for (const [, c] of m.namedChildren()) walk(c);
  };
  walk(model);
  return out;
}

/** "Training" of a step: new values for free weights (mask 0), every BatchNorm and both heads. */
function train(model: AuxResNet, masks: Map<string, Uint8Array>, rng: Rng): void {
  const sd = model.stateDict();
  for (const name of convNames(model)) {
    const w = sd.get(name)!;
    const v = w.toFloat32(), m = masks.get(name)!;
    const fanIn = w.shape[1] * w.shape[2] * w.shape[3];
    const r = rng.normal(v.length, 0, Math.sqrt(2 / fanIn));
    for (let i = 0; i < v.length; i++) if (m[i] === 0) v[i] = r[i];
    w.set(v);
  }
  for (const bn of bns(model)) {
    const c = bn.channels;
    bn.weight.set(rng.uniform(c, 0.3, 0.8));
    bn.bias.set(rng.normal(c, 0, 0.1));
    bn.runningMean.set(rng.normal(c, 0, 0.2));
    bn.runningVar.set(rng.uniform(c, 0.5, 2));
  }
  for (const head of [model.fc, model.auxfc]) {
    head.weight.set(rng.normal(head.weight.size, 0, 0.2));
    head.bias.set(rng.normal(head.bias.size, 0, 0.1));
  }
}

/** Pruning at the end of step s: top (1-ratio) of the free weights by magnitude become owned by s, the rest zero. */
function prune(model: AuxResNet, masks: Map<string, Uint8Array>, s: number, ratio = 0.75, block = 1): void {
  const sd = model.stateDict();
  for (const name of convNames(model)) {
    const w = sd.get(name)!;
    const v = w.toFloat32(), m = masks.get(name)!;
    if (block > 1) {
      // --prune-block: blocks of `block` output channels by block norm (src/prune/masks.ts)
      pruneLayer(v, m, w.shape, s, ratio, block);
      w.set(v);
      continue;
    }
    const free: number[] = [];
    for (let i = 0; i < v.length; i++) if (m[i] === 0) free.push(i);
    free.sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]));
    const keep = Math.round((1 - ratio) * free.length);
    free.forEach((i, r) => {
      if (r < keep) m[i] = s;
      else v[i] = 0;
    });
    w.set(v);
  }
}

/** Fine-tuning after pruning: weights owned by s change, freed ones stay zero; BN and heads change. */
function fineTune(model: AuxResNet, masks: Map<string, Uint8Array>, s: number, rng: Rng): void {
  const sd = model.stateDict();
  for (const name of convNames(model)) {
    const w = sd.get(name)!;
    const v = w.toFloat32(), m = masks.get(name)!;
    const r = rng.normal(v.length, 1, 0.05);
    for (let i = 0; i < v.length; i++) if (m[i] === s) v[i] *= r[i];
    w.set(v);
  }
  for (const bn of bns(model)) bn.runningMean.set(rng.normal(bn.channels, 0, 0.2));
  model.fc.bias.set(rng.normal(model.fc.bias.size, 0, 0.1));
}

function deepCopy(model: AuxResNet): AuxResNet {
  const c = createAuxModel(model.arch, model.fc.classes, { inChannels: model.conv1.inChannels });
  c.loadStateDict(model.stateDict());
  return c.eval();
}

interface Sim {
  model: AuxResNet;
  masks: Map<string, Tensor>;
  maskArrays: Map<string, Uint8Array>;
  snaps: StepSnapshot[];
  copies: Map<number, AuxResNet>;
}

/** Steps 1 and 2 complete (2 classes each), step 3 in training; block > 1: block-pruned masks. */
function simulate(block = 1, arch: Arch = 'resnet32'): Sim {
  const rng = new Rng(2024);
  const model = createAuxModel(arch, 2, { inChannels: 3, seed: 7 });
  const maskArrays = new Map<string, Uint8Array>();
  for (const name of convNames(model)) maskArrays.set(name, new Uint8Array(model.stateDict().get(name)!.size));
  const snaps: StepSnapshot[] = [];
  const copies = new Map<number, AuxResNet>();
  for (let s = 1; s <= 2; s++) {
    if (s > 1) model.growClasses(2);
    train(model, maskArrays, rng);
    prune(model, maskArrays, s, 0.75, block);
    fineTune(model, maskArrays, s, rng);
    snaps.push(takeStepSnapshot(model, s));
    copies.set(s, deepCopy(model));
  }
  // step 3 is under way: new classes, free weights, BN and heads all move
  model.growClasses(2);
  train(model, maskArrays, rng);
  const masks = new Map<string, Tensor>();
  for (const [name, m] of maskArrays) masks.set(name, Tensor.fromArray(m, model.stateDict().get(name)!.shape));
  return { model, masks, maskArrays, snaps, copies };
}

t.test('the bank rebuilds every past model exactly as it was saved (block masks, B = 4 and 16)', async (t) => {
  for (const block of [4, 16]) {
    const sim = simulate(block);
    const rng = new Rng(9);
    const x = Tensor.fromArray(rng.normal(3 * 3 * 32 * 32), [3, 3, 32, 32]);
    const bank = new MaskedTeacherBank(sim.model, sim.masks, sim.snaps);
    const requests = [
      { step: 1, start: 0, end: 2 },
      { step: 2, start: 0, end: 4 },
    ];
    for (const level of LEVELS) {
      setSimd(level);
      try {
        const outs = bank.forward(x, requests);
        requests.forEach((r, i) => {
          const want = noGrad(() => sim.copies.get(r.step)!.forwardAux(x));
          const dm = maxAbsDiff(outs[i].main.toFloat32(), want.logits.toFloat32());
          const da = maxAbsDiff(outs[i].aux.toFloat32(), want.auxLogits.toFloat32());
          t.ok(dm <= 1e-5 && da <= 1e-5, `[${level}] B=${block} teacher ${r.step}: max |diff| main ${dm.toExponential(2)} aux ${da.toExponential(2)} <= 1e-5`);
        });
      } finally {
        setSimd(BEST);
      }
    }
    bank.dispose();
    sim.model.dispose();
    for (const c of sim.copies.values()) c.dispose();
    for (const m of sim.masks.values()) m.dispose();
  }
});

t.test('the bank rebuilds every past model exactly as it was saved at its own step', async (t) => {
  const sim = simulate();
  const rng = new Rng(9);
  const x = Tensor.fromArray(rng.normal(5 * 3 * 32 * 32), [5, 3, 32, 32]);
  const bank = new MaskedTeacherBank(sim.model, sim.masks, sim.snaps);
  t.same(bank.steps, [1, 2]);
  const requests = [
    { step: 1, start: 0, end: 2 },
    { step: 2, start: 0, end: 4 },
    { step: 2, start: 2, end: 4 },
  ];
  for (const level of LEVELS) {
    setSimd(level);
    try {
      const outs = bank.forward(x, requests);
      t.equal(outs.length, 3);
      requests.forEach((r, i) => {
        const want = noGrad(() => sim.copies.get(r.step)!.forwardAux(x));
        const wm = ops.sliceColumns(want.logits, r.start, r.end).toFloat32();
        const wa = ops.sliceColumns(want.auxLogits, r.start, r.end).toFloat32();
        t.same([...outs[i].main.shape], [5, r.end - r.start], 'main logits shape');
        const dm = maxAbsDiff(outs[i].main.toFloat32(), wm), da = maxAbsDiff(outs[i].aux.toFloat32(), wa);
        t.ok(dm <= 1e-5, `[${level}] teacher ${r.step} cols ${r.start}..${r.end}: main logits max |diff| ${dm.toExponential(2)} <= 1e-5`);
        t.ok(da <= 1e-5, `[${level}] teacher ${r.step} cols ${r.start}..${r.end}: aux logits max |diff| ${da.toExponential(2)} <= 1e-5`);
        t.notOk(outs[i].main.requiresGrad, 'no gradient recorded');
      });
      // one teacher alone gives the same as within the group
      const solo = bank.forward(x, [{ step: 1, start: 0, end: 2 }])[0];
      t.ok(maxAbsDiff(solo.main.toFloat32(), outs[0].main.toFloat32()) <= 1e-6, `[${level}] teacher 1 alone == teacher 1 in the group`);
    } finally {
      setSimd(BEST);
    }
  }
  // sanity: the live model (step 3) is a different function from teacher 2
  const live = noGrad(() => sim.model.eval().forwardAux(x)).logits.toFloat32();
  const two = noGrad(() => sim.copies.get(2)!.forwardAux(x)).logits.toFloat32();
  t.ok(maxAbsDiff(live.subarray(0, 4), two.subarray(0, 4)) > 1e-2 || live.length !== two.length, 'the step-3 model differs from teacher 2');
  // native memory does not grow across forwards (outputs released by the caller)
  const release = (outs: { main: Tensor; aux: Tensor }[]) => outs.forEach((o) => (o.main.dispose(), o.aux.dispose()));
  release(bank.forward(x, requests));
  const before = memory().liveBytes;
  for (let i = 0; i < 2; i++) release(bank.forward(x, requests));
  t.equal(memory().liveBytes, before, 'live native bytes unchanged after more forwards');
  bank.dispose();
  t.throws(() => bank.forward(x, requests), /disposed/);
});

t.test('ResNet-18: the bank rebuilds every past model as it was saved (stem 7x7/2, max pool, option-B downsample)', async (t) => {
  const sim = simulate(1, 'resnet18');
  t.ok(sim.maskArrays.has('conv1.weight') && sim.maskArrays.has('layer2.0.downsample.0.weight'), 'the stem and the downsample convs carry masks');
  t.ok([...sim.maskArrays.get('layer3.0.downsample.0.weight')!].some((v) => v === 1), 'the downsample convs are pruned (weights owned by step 1)');
  const rng = new Rng(9);
  const x = Tensor.fromArray(rng.normal(5 * 3 * 64 * 64), [5, 3, 64, 64]);
  const bank = new MaskedTeacherBank(sim.model, sim.masks, sim.snaps);
  const requests = [
    { step: 1, start: 0, end: 2 },
    { step: 2, start: 0, end: 4 },
  ];
  const want = new Map([...sim.copies].map(([s, m]) => [s, noGrad(() => m.forwardAux(x))]));
  let worst = 0;
  for (const level of LEVELS) {
    setSimd(level);
    try {
      const outs = bank.forward(x, requests);
      requests.forEach((r, i) => {
        const w = want.get(r.step)!;
        const dm = maxAbsDiff(outs[i].main.toFloat32(), w.logits.toFloat32());
        const da = maxAbsDiff(outs[i].aux.toFloat32(), w.auxLogits.toFloat32());
        worst = Math.max(worst, dm, da);
        t.ok(dm <= 1e-5 && da <= 1e-5, `[${level}] ResNet-18 teacher ${r.step}: max |diff| main ${dm.toExponential(2)} aux ${da.toExponential(2)} <= 1e-5`);
      });
    } finally {
      setSimd(BEST);
    }
  }
  t.comment(`ResNet-18 bank vs snapshots at 64x64: worst max |diff| ${worst.toExponential(2)}`);
  // a batch larger than a chunk runs in chunks of whole vectors of images: same outputs
  const xb = Tensor.fromArray(rng.normal(21 * 3 * 64 * 64), [21, 3, 64, 64]);
  const small = new MaskedTeacherBank(sim.model, sim.masks, sim.snaps, { chunkBytes: 1 });
  t.ok(small.chunkImages(2, 64, 64) < 21, `chunked: ${small.chunkImages(2, 64, 64)} images per chunk`);
  const whole = bank.forward(xb, requests), parts = small.forward(xb, requests);
  requests.forEach((r, i) => {
    t.same([...parts[i].main.shape], [21, r.end - r.start], 'chunked output shape');
    t.ok(maxAbsDiff(parts[i].main.toFloat32(), whole[i].main.toFloat32()) <= 1e-6 && maxAbsDiff(parts[i].aux.toFloat32(), whole[i].aux.toFloat32()) <= 1e-6, `teacher ${r.step}: chunked == whole`);
  });
  // rebuildTeacherModel gives the saved copy exactly
  const rebuilt = rebuildTeacherModel(sim.model, sim.masks, sim.snaps[0]);
  t.ok(rebuilt instanceof ResNet32Aux === false && rebuilt.arch === 'resnet18', 'rebuilt as a ResNet-18');
  let wp = 0;
  const sdC = sim.copies.get(1)!.stateDict(), sdR = rebuilt.stateDict();
  for (const [k, v] of sdC) wp = Math.max(wp, maxAbsDiff(sdR.get(k)!.toFloat32(), v.toFloat32()));
  t.equal(wp, 0, 'rebuilt teacher 1: every parameter and buffer equals the saved copy');
  rebuilt.dispose();
  t.throws(() => new MaskedTeacherBank(sim.model, sim.masks, sim.snaps, { chunkBytes: 0 }), /chunkBytes must be a positive number/);
  small.dispose();
  bank.dispose();
  sim.model.dispose();
  for (const c of sim.copies.values()) c.dispose();
});

t.test('rebuildTeacherModel and SnapshotTeachers match the saved copies', async (t) => {
  const sim = simulate();
  const x = Tensor.fromArray(new Rng(4).normal(3 * 3 * 32 * 32), [3, 3, 32, 32]);
  for (const snap of sim.snaps) {
    const rebuilt = rebuildTeacherModel(sim.model, sim.masks, snap);
    const copy = sim.copies.get(snap.step)!;
    const sdR = rebuilt.stateDict(), sdC = copy.stateDict();
    let worst = 0;
    for (const [k, v] of sdC) worst = Math.max(worst, maxAbsDiff(sdR.get(k)!.toFloat32(), v.toFloat32()));
    t.equal(worst, 0, `step ${snap.step}: every parameter and buffer equals the saved copy`);
    const a = noGrad(() => rebuilt.forwardAux(x)), b = noGrad(() => copy.forwardAux(x));
    t.ok(maxAbsDiff(a.logits.toFloat32(), b.logits.toFloat32()) === 0, `step ${snap.step}: same logits`);
    rebuilt.dispose();
  }
  const src = new SnapshotTeachers(new Map([...sim.copies].map(([s, m]) => [s, deepCopy(m)])));
  t.same(src.steps, [1, 2]);
  const outs = src.forward(x, [{ step: 2, start: 2, end: 4 }, { step: 1, start: 1, end: 2 }]);
  const want2 = noGrad(() => sim.copies.get(2)!.forwardAux(x));
  t.ok(maxAbsDiff(outs[0].main.toFloat32(), ops.sliceColumns(want2.logits, 2, 4).toFloat32()) === 0, 'snapshot teacher 2, columns 2..4');
  t.ok(maxAbsDiff(outs[0].aux.toFloat32(), ops.sliceColumns(want2.auxLogits, 2, 4).toFloat32()) === 0, 'snapshot teacher 2 aux');
  t.same([...outs[1].main.shape], [3, 1]);
  src.dispose();
});

t.test('teacher sources: bad input is a clear error', async (t) => {
  const sim = simulate();
  const x = Tensor.zeros([2, 3, 32, 32]);
  const { masks, model, snaps } = sim;
  const drop = new Map(masks);
  drop.delete('stage2.3.conv1.weight');
  t.throws(() => new MaskedTeacherBank(model, drop, snaps), /no step mask for 'stage2.3.conv1.weight'/);
  const badType = new Map(masks);
  badType.set('conv1.weight', Tensor.zeros(model.conv1.weight.shape));
  t.throws(() => new MaskedTeacherBank(model, badType, snaps), /mask 'conv1.weight' must be u8/);
  const badShape = new Map(masks);
  badShape.set('conv1.weight', Tensor.fromArray(new Uint8Array(16 * 27), [16, 27, 1, 1]));
  t.throws(() => new MaskedTeacherBank(model, badShape, snaps), /mask 'conv1.weight' has shape \[16,27,1,1\]/);
  const extra = new Map(masks);
  extra.set('fc.weight', Tensor.fromArray(new Uint8Array(4), [4]));
  t.throws(() => new MaskedTeacherBank(model, extra, snaps), /mask 'fc.weight' names no conv weight/);
  t.throws(() => new MaskedTeacherBank(model, masks, []), /at least one step snapshot/);
  t.throws(() => new MaskedTeacherBank(model, masks, [snaps[0], snaps[0]]), /two snapshots for step 1/);
  const broken = { ...snaps[1], bn: { ...snaps[1].bn } };
  delete broken.bn['stage3.4.bn2'];
  t.throws(() => new MaskedTeacherBank(model, masks, [broken]), /no BatchNorm 'stage3.4.bn2'/);
  const bank = new MaskedTeacherBank(model, masks, snaps);
  t.throws(() => bank.forward(x, [{ step: 3, start: 0, end: 2 }]), /no teacher for step 3/);
  t.throws(() => bank.forward(x, [{ step: 1, start: 0, end: 3 }]), /columns \[0, 3\) but that teacher has 2 classes/);
  t.throws(() => bank.forward(Tensor.zeros([2, 1, 32, 32]), [{ step: 1, start: 0, end: 2 }]), /x must be f32 \[N, 3, H, W\]/);
  t.same(bank.forward(x, []), []);
  bank.dispose();
  t.throws(() => new SnapshotTeachers(new Map()), /non-empty Map/);
});
