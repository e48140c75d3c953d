// The training loop of one phase of a step ('train': the step's epochs; 'finetune': the pruning
// methods' fine-tuning of the weights the step kept): the optimiser with its freeze masks and lr
// schedule, then epochs of shuffled, augmented batches, each a forward, backward and SGD step.
// Resumes inside a phase (epochs done, momentum) from the run's position; emits a 'batch' event
// per batch and an 'epoch' event and a checkpoint call per epoch.
import { Tensor, Rng, tidy } from '../engine';
import { SGD, MultiStepLR } from '../optim';
import { ImageSet, imageSize, drawAugment, applyAugment, isStreamed, gatherImagesAsync } from '../data';
import { scaleMilestones } from './config';
import { Phase, PURPOSE, streamOf, yieldToLoop } from './run';
import { hostTargets, targetParts, stagedTargets, lossFromTargets, DeviceTargets } from './targets';
import { needsTeachers } from './methods';
import { guardLossValue } from './guard';
import type { OrderRun } from './trainer';

/** The optimiser of a phase: SGD with the freeze masks of the pruning methods and the lr schedule. */
export function makeOptimizer(run: OrderRun, t: number, phase: Phase): { opt: SGD; sched: MultiStepLR | null; freeze: Map<string, Tensor> | null } {
  const cfg = run.o.cfg;
  const wd = t === 1 ? cfg.weightDecayFirst : cfg.weightDecayLater;
  const opt = new SGD(run.model.parameters(), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: wd });
  let freeze: Map<string, Tensor> | null = null;
  if (run.masks) {
    const params = new Map(run.model.namedParameters());
    if (phase === 'train') for (const [name, m] of run.masks.masks) opt.setFrozenMask(params.get(name)!, m);
    else {
      freeze = run.masks.finetuneFreezeMasks(t);
      for (const [name, m] of freeze) opt.setFrozenMask(params.get(name)!, m);
    }
  }
  let sched: MultiStepLR | null;
  if (phase === 'train') sched = new MultiStepLR(opt, cfg.milestones, cfg.gamma);
  else if (cfg.finetuneLr === 'restart') sched = new MultiStepLR(opt, scaleMilestones(cfg.milestones, cfg.epochs, cfg.finetuneEpochs), cfg.gamma);
  else {
    opt.lr = cfg.lr * Math.pow(cfg.gamma, cfg.milestones.filter((m) => m <= cfg.epochs).length);
    sched = null;
  }
  return { opt, sched, freeze };
}

/** Runs (or resumes) the epochs of one phase of step t on the step's training set. */
export async function trainPhase(run: OrderRun, set: ImageSet, t: number, phase: Phase): Promise<void> {
  const cfg = run.o.cfg;
  const epochs = phase === 'train' ? cfg.epochs : cfg.finetuneEpochs;
  const { opt, sched, freeze } = makeOptimizer(run, t, phase);
  run.opt = opt;
  try {
    // resume: restore momentum and schedule position
    const start = run.position.phase === phase ? run.position.epochsDone : 0;
    if (run.pendingMomentum) {
      for (const [i, b] of run.pendingMomentum) opt.setMomentumBuffer(i, b);
      for (const b of run.pendingMomentum.values()) b.dispose();
      run.pendingMomentum = null;
    }
    if (sched) for (let e = 0; e < start; e++) sched.step();
    run.model.train();
    const sz = imageSize(set);
    const bs = cfg.batchSize;
    for (let e = start; e < epochs; e++) {
      const t0 = Date.now();
      const perm = new Rng(cfg.seed, streamOf(PURPOSE.shuffle, run.o.orderIndex, t, phase === 'train' ? 0 : 1, e)).permutation(set.n);
      const augRng = new Rng(cfg.seed, streamOf(PURPOSE.flip, run.o.orderIndex, t, phase === 'train' ? 0 : 1, e));
      const nb = set.n >= bs ? Math.floor(set.n / bs) + (set.n % bs >= 2 ? 1 : 0) : set.n >= 2 ? 1 : 0;
      let lossSum = 0, seen = 0;
      // a streamed set: the next batch is read while this one trains
      const streamed = isStreamed(set);
      const batchIndex = (b: number) => perm.subarray(b * bs, b * bs + Math.min(bs, set.n - b * bs));
      let next: Promise<Float32Array> | null = streamed && nb > 0 ? gatherImagesAsync(set, batchIndex(0)) : null;
      next?.catch(() => undefined); // a failed read is reported when awaited, not as an unhandled rejection
      // the batch loop
      for (let b = 0; b < nb; b++) {
        run.checkAbort();
        const n = Math.min(bs, set.n - b * bs);
        const index = perm.subarray(b * bs, b * bs + n);
        let raw: Float32Array;
        const cols = new Int32Array(n);
        if (next) {
          raw = await next;
          next = b + 1 < nb ? gatherImagesAsync(set, batchIndex(b + 1)) : null;
          next?.catch(() => undefined);
          for (let j = 0; j < n; j++) cols[j] = set.labels[index[j]];
        } else {
          raw = new Float32Array(n * sz);
          for (let j = 0; j < n; j++) {
            const i = index[j];
            raw.set(set.images.subarray(i * sz, (i + 1) * sz), j * sz);
            cols[j] = set.labels[i];
          }
        }
        const aug = drawAugment(n, { flip: cfg.flip, crop: cfg.crop }, augRng);
        const images = cfg.flip || cfg.crop > 0 ? applyAugment(raw, { n, channels: set.channels, height: set.height, width: set.width }, aug) : raw;
        const flips = aug.flip;
        const shape = [n, set.channels, set.height, set.width];
        const l = tidy(() =>
          run.on(() => {
            // the batch's images and targets reach the run's device in one staged copy
            // (teachers run on the fly without the cache: then the images go first, the targets after)
            let x: Tensor, tg: DeviceTargets;
            if (needsTeachers(run.o.method, t) && !run.teachers.cached) {
              [x] = run.staging.upload([{ data: images, shape }]);
              const h = hostTargets(run, cols, run.teachers.batchTargets(x, index, flips, t), t);
              tg = stagedTargets(h, run.staging.upload(targetParts(run, h, t)));
            } else {
              const teach = needsTeachers(run.o.method, t) ? run.teachers.batchTargets(null, index, flips, t) : null;
              const h = hostTargets(run, cols, teach, t);
              const up = run.staging.upload([{ data: images, shape }, ...targetParts(run, h, t)]);
              x = up[0];
              tg = stagedTargets(h, up.slice(1));
            }
            const site = { method: run.label, order: run.o.orderIndex, step: t, phase, epoch: e + 1, batch: b + 1, lr: cfg.lr };
            // a NaN/Inf loss stops the run before the update reaches the weights, naming where;
            // its value is the one explicit read-back of a step (progress bar, guard)
            const { loss, value } = guardLossValue(site, () => lossFromTargets(run, x, tg, t));
            opt.zeroGrad();
            loss.backward();
            opt.step();
            return value;
          }),
        );
        lossSum += l * n;
        seen += n;
        run.emit({ kind: 'batch', method: run.label, order: run.o.orderIndex, step: t, steps: run.steps, phase, epoch: e + 1, epochs, batch: b + 1, batches: nb, loss: l, elapsed: (Date.now() - t0) / 1000 });
        await yieldToLoop();
      }
      opt.zeroGrad();
      sched?.step();
      const secs = (Date.now() - t0) / 1000;
      run.stepSeconds[phase] += secs;
      run.lastLoss = seen ? lossSum / seen : 0;
      run.position = { stepsDone: t - 1, phase, epochsDone: e + 1 };
      run.emit({ kind: 'epoch', method: run.label, order: run.o.orderIndex, step: t, phase, epoch: e + 1, epochs, loss: run.lastLoss, lr: opt.lr, seconds: secs });
      run.o.onCheckpoint?.(run, { phase, epoch: e + 1 });
    }
  } finally {
    run.opt = null;
    if (freeze) for (const f of freeze.values()) f.dispose();
  }
}
