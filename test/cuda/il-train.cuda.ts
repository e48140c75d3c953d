// Incremental training on the CUDA device, end to end (npm run test:cuda; in CI on the emulated
// device): every method of `m2kd train --method` runs the same tiny MNIST protocol on the CPU and
// on the device from the same seed. Per step the accuracies must be equal, or differ only where
// float reassociation flipped a near-tied prediction (the largest logit difference is reported);
// the teacher bank built on the device from the CPU run's final state gives the CPU bank's outputs
// within 1e-4 relative; one training step makes exactly one host-to-device copy (the staged batch)
// and one device-to-host copy (the loss value); checkpoints written on one device resume on the
// other and end where an uninterrupted run on that device ends.
// Size (env): M2KD_IL_CUDA_TRAIN images per class (default 50), M2KD_IL_CUDA_TEST (10),
// M2KD_IL_CUDA_SIDE (image side; default 14: MNIST's 28x28 averaged 2x2, so the emulated device
// finishes every method in minutes), M2KD_IL_CUDA_METHODS (a comma list; default all).
import tap from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, tidy, noGrad, copyStats, withDevice } from '../../src/engine';
import type { Device } from '../../src/engine';
import { loadMnist } from '../../src/data';
import type { ImageDataset, ImageSet } from '../../src/data';
import { OrderRun, METHODS, defaultConfig, IlConfig, IlEvent } from '../../src/il';
import type { MethodSpec, ClassOrder } from '../../src/il';
import { saveRunState, loadRunState } from '../../src/il/checkpoint';
import { MaskedTeacherBank } from '../../src/prune';
import { ResNet32Aux } from '../../src/nn';

const TRAIN = Number(process.env.M2KD_IL_CUDA_TRAIN ?? 50);
const TEST = Number(process.env.M2KD_IL_CUDA_TEST ?? 10);
const SIDE = Number(process.env.M2KD_IL_CUDA_SIDE ?? 14);
const CLASSES = 6; // 3 steps of 2 classes
const ONLY = (process.env.M2KD_IL_CUDA_METHODS ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** The first `perClass` images of digits 0..5 of one split, averaged down to SIDE x SIDE. */
function subset(s: ImageSet, perClass: number): ImageSet {
  const f = s.height / SIDE;
  if (!Number.isInteger(f) || f < 1) throw new Error(`M2KD_IL_CUDA_SIDE ${SIDE} must divide ${s.height}`);
  const picks: number[] = [];
  for (let c = 0; c < CLASSES; c++) {
    let k = 0;
    for (let i = 0; i < s.n && k < perClass; i++) if (s.labels[i] === c) {
      picks.push(i);
      k++;
    }
  }
  const hw = s.height * s.width, o = SIDE * SIDE;
  const images = new Float32Array(picks.length * o);
  const labels = new Int32Array(picks.length);
  picks.forEach((i, j) => {
    labels[j] = s.labels[i];
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        let a = 0;
        for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) a += s.images[i * hw + (y * f + dy) * s.width + x * f + dx];
        images[j * o + y * SIDE + x] = a / (f * f);
      }
  });
  return { images, labels, n: picks.length, channels: 1, height: SIDE, width: SIDE };
}

function tinyMnist(): ImageDataset {
  const d = loadMnist({ pad32: false });
  return { name: 'mnist', classes: CLASSES, classNames: d.classNames.slice(0, CLASSES), train: subset(d.train, TRAIN), test: subset(d.test, TEST) };
}

const ds = tinyMnist();
const order: ClassOrder = { order: [3, 0, 5, 1, 4, 2], seed: null, name: 'explicit' };
const cfg: IlConfig = {
  ...defaultConfig('mnist', 2),
  epochs: 1,
  milestones: [],
  finetuneEpochs: 1,
  batchSize: 25,
  evalBatchSize: 64,
  memory: 30,
};

interface Outcome {
  top1: number[];
  /** final model's main logits on the test images of all seen classes */
  logits: Float32Array;
  /** NME scores (iCaRL) are not logits: the test compares the head's logits always */
  batches: { h2d: number; d2h: number }[];
  /** checkpoint directory written after step 1 */
  ckpt: string;
  seconds: number;
}

function testImages(): Float32Array {
  return ds.test.images;
}

function logitsOf(run: OrderRun): Float32Array {
  const x = testImages();
  return noGrad(() => tidy(() => run.on(() => {
    run.model.eval();
    return run.model.forward(Tensor.fromArray(x, [ds.test.n, 1, SIDE, SIDE])).toFloat32();
  })));
}

async function runOn(device: Device, method: MethodSpec, resumeFrom?: string): Promise<Outcome> {
  const ckpt = fs.mkdtempSync(path.join(os.tmpdir(), `m2kd-il-${device}-`));
  const batches: { h2d: number; d2h: number }[] = [];
  let counting = false;
  const emit = (e: IlEvent) => {
    if (e.kind !== 'batch') return;
    // copies between two batch events are exactly those of the later batch's step
    if (counting && e.batch > 1) {
      const s = copyStats(true);
      batches.push({ h2d: s.h2d, d2h: s.d2h });
    } else copyStats(true);
    counting = e.batch < e.batches;
  };
  const run = new OrderRun({
    dataset: ds,
    method,
    order,
    orderIndex: 0,
    cfg,
    device,
    emit,
    onCheckpoint: (r, at) => {
      counting = false;
      if (at.phase === 'step' && r.position.stepsDone === 1 && !resumeFrom) saveRunState(ckpt, r, cfg);
    },
  });
  const t0 = Date.now();
  try {
    if (resumeFrom) loadRunState(resumeFrom, run);
    const steps = await run.run();
    return { top1: steps.map((s) => s.top1), logits: logitsOf(run), batches, ckpt, seconds: (Date.now() - t0) / 1000 };
  } finally {
    run.dispose();
  }
}

/** Largest |a - b| and, where the arg-max differs, the CPU run's top-2 margin of that row. */
function compareLogits(a: Float32Array, b: Float32Array, cols: number): { maxDiff: number; flips: number; maxFlipMargin: number } {
  let maxDiff = 0, flips = 0, maxFlipMargin = 0;
  const rows = a.length / cols;
  for (let i = 0; i < rows; i++) {
    let ia = 0, ib = 0;
    for (let j = 0; j < cols; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i * cols + j] - b[i * cols + j]));
      if (a[i * cols + j] > a[i * cols + ia]) ia = j;
      if (b[i * cols + j] > b[i * cols + ib]) ib = j;
    }
    if (ia !== ib) {
      flips++;
      maxFlipMargin = Math.max(maxFlipMargin, Math.abs(a[i * cols + ia] - a[i * cols + ib]));
    }
  }
  return { maxDiff, flips, maxFlipMargin };
}

const methods = Object.values(METHODS).filter((m) => ONLY.length === 0 || ONLY.includes(m.name));
const outcomes = new Map<string, { cpu: Outcome; gpu: Outcome }>();
const started = Date.now();

tap.test(`every method on cuda equals the cpu run (tiny MNIST: ${CLASSES} classes in 3 steps, ${TRAIN}/${TEST} images per class, ${SIDE}x${SIDE}, 1 epoch)`, async (t) => {
  for (const m of methods) {
    const cpu = await runOn('cpu', m);
    const gpu = await runOn('cuda', m);
    outcomes.set(m.name, { cpu, gpu });
    const cmp = compareLogits(cpu.logits, gpu.logits, CLASSES);
    const perImage = 100 / ds.test.n;
    const dTop1 = cpu.top1.map((v, i) => Math.abs(v - gpu.top1[i]));
    t.comment(`${m.name}: top-1 per step cpu ${cpu.top1.map((v) => v.toFixed(2)).join(' / ')}, cuda ${gpu.top1.map((v) => v.toFixed(2)).join(' / ')}; ` +
      `final logits max |cpu - cuda| ${cmp.maxDiff.toExponential(2)}, ${cmp.flips} flipped predictions; ${cpu.seconds.toFixed(1)} s cpu, ${gpu.seconds.toFixed(1)} s cuda`);
    t.equal(cpu.top1.length, 3, `${m.name}: 3 steps`);
    // accuracy may differ only by predictions that flip between near-tied classes: at most one
    // test image per step, and at the final step every flipped prediction is a near tie
    t.ok(dTop1.every((d) => d <= perImage + 1e-9), `${m.name}: per-step top-1 equal or one near-tied image apart (|diff| ${dTop1.map((d) => d.toFixed(2)).join(', ')})`);
    t.ok(cmp.maxDiff <= 1e-2, `${m.name}: final logits agree (max |diff| ${cmp.maxDiff.toExponential(2)} <= 1e-2)`);
    if (cmp.flips > 0) t.ok(cmp.maxFlipMargin <= 4 * cmp.maxDiff, `${m.name}: flipped predictions are near ties (margin ${cmp.maxFlipMargin.toExponential(2)})`);
    // iCaRL's accuracy is NME on features, not the head: the head's logits are compared above
    t.ok(gpu.batches.length > 0, `${m.name}: training steps were counted`);
    const bad = gpu.batches.filter((b) => b.h2d !== 1 || b.d2h !== 1);
    t.equal(bad.length, 0, `${m.name}: every training step on cuda made 1 host-to-device copy (the staged batch) and 1 device-to-host copy (the loss) (${gpu.batches.length} steps; exceptions ${JSON.stringify(bad.slice(0, 3))})`);
    const cpuCopies = cpu.batches.filter((b) => b.h2d !== 0 || b.d2h !== 0);
    t.equal(cpuCopies.length, 0, `${m.name}: a cpu run makes no device copies`);
  }
  t.comment(`all methods: ${((Date.now() - started) / 1000).toFixed(0)} s`);
});

tap.test('the teacher bank on cuda equals the cpu bank (the cpu run of m2kd, rebuilt on both devices)', async (t) => {
  const run = new OrderRun({ dataset: ds, method: METHODS.m2kd, order, orderIndex: 0, cfg, device: 'cpu' });
  try {
    await run.run();
    const x = ds.test.images.slice(0, 16 * SIDE * SIDE);
    const reqs = run.snapshots.map((s) => ({ step: s.step, start: 0, end: s.classesSeen }));
    t.ok(reqs.length >= 2, `teachers of steps ${reqs.map((r) => r.step).join(', ')}`);
    const outs = (device: Device): Float32Array[] =>
      tidy(() => withDevice(device, () => {
        const model = run.model;
        const masks = new Map<string, Tensor>();
        for (const [name, m] of run.masks!.masks) masks.set(name, m.to(device));
        // on the device: a model built there with the run's state copied over (explicitly)
        const bankModel = device === 'cpu' ? model : new ResNet32Aux(model.fc.classes, { inChannels: 1 });
        if (bankModel !== model) bankModel.loadStateDict(new Map([...model.stateDict()].map(([k, v]) => [k, v.to(device)])));
        const bank = new MaskedTeacherBank(bankModel, masks, run.snapshots);
        try {
          return bank.forward(Tensor.fromArray(x, [16, 1, SIDE, SIDE]), reqs).flatMap((o) => [o.main.toFloat32(), o.aux.toFloat32()]);
        } finally {
          bank.dispose();
          if (bankModel !== model) bankModel.dispose();
        }
      }));
    const a = outs('cpu'), b = outs('cuda');
    let worst = 0;
    a.forEach((v, i) => {
      let scale = 0;
      for (const y of v) scale = Math.max(scale, Math.abs(y));
      for (let j = 0; j < v.length; j++) worst = Math.max(worst, Math.abs(v[j] - b[i][j]) / Math.max(scale, 1e-6));
    });
    t.ok(worst <= 1e-4, `teacher bank outputs: max |cpu - cuda| / max |cpu| = ${worst.toExponential(2)} <= 1e-4`);
  } finally {
    run.dispose();
  }
});

tap.test('checkpoints written on one device resume on the other', async (t) => {
  const m = METHODS.m2kd;
  const o = outcomes.get('m2kd');
  if (!o) {
    t.pass('skipped: m2kd was not run (M2KD_IL_CUDA_METHODS)');
    return;
  }
  // a cuda checkpoint (after step 1) continued on the cpu ends where the cpu run ends, and back
  const onCpu = await runOn('cpu', m, o.gpu.ckpt);
  const onGpu = await runOn('cuda', m, o.cpu.ckpt);
  const perImage = 100 / ds.test.n;
  const cmpA = compareLogits(o.cpu.logits, onCpu.logits, CLASSES);
  const cmpB = compareLogits(o.gpu.logits, onGpu.logits, CLASSES);
  t.comment(`cuda step-1 checkpoint resumed on cpu: top-1 ${onCpu.top1.map((v) => v.toFixed(2)).join(' / ')} (uninterrupted cpu ${o.cpu.top1.map((v) => v.toFixed(2)).join(' / ')}), max logit diff ${cmpA.maxDiff.toExponential(2)}`);
  t.comment(`cpu step-1 checkpoint resumed on cuda: top-1 ${onGpu.top1.map((v) => v.toFixed(2)).join(' / ')} (uninterrupted cuda ${o.gpu.top1.map((v) => v.toFixed(2)).join(' / ')}), max logit diff ${cmpB.maxDiff.toExponential(2)}`);
  t.equal(onCpu.top1.length, 3, 'the resumed run reports all 3 steps');
  t.ok(onCpu.top1.every((v, i) => Math.abs(v - o.cpu.top1[i]) <= perImage + 1e-9), 'cuda -> cpu: per-step top-1 equal (or one near-tied image apart)');
  t.ok(onGpu.top1.every((v, i) => Math.abs(v - o.gpu.top1[i]) <= perImage + 1e-9), 'cpu -> cuda: per-step top-1 equal (or one near-tied image apart)');
  t.ok(cmpA.maxDiff <= 1e-2 && cmpB.maxDiff <= 1e-2, 'final logits agree after a cross-device resume');
  for (const d of [o.cpu.ckpt, o.gpu.ckpt, onCpu.ckpt, onGpu.ckpt]) fs.rmSync(d, { recursive: true, force: true });
});

tap.teardown(() => {
  for (const o of outcomes.values()) for (const d of [o.cpu.ckpt, o.gpu.ckpt]) fs.rmSync(d, { recursive: true, force: true });
});
