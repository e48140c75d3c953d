// One incremental run: a method over the steps of one class order. Owns the model, the step
// masks and per-step snapshots (pruning methods), the full snapshots (other distillation
// methods), iCaRL's exemplars, the per-step teacher-output cache, and the run state that
// checkpoints hold. Losses follow the paper: sigmoid BCE with logits, summed over the seen
// units and divided by batch × the dataset's class count (iCaRL's fixed output layer scale);
// L = L_MMD(main) + λ (distillation of the auxiliary head on old groups + α · BCE(aux, labels)).
import { Tensor, Rng, tidy, noGrad, ops } from '../engine';
import { ResNet32Aux, BatchNorm2d, Module } from '../nn';
import { SGD, MultiStepLR } from '../optim';
import { ImageDataset, ImageSet, imageSize, drawAugment, applyAugment, subsetClasses } from '../data';
import { StepMasks } from '../prune/masks';
import { snapshotBytes } from '../prune/snapshot';
import { MaskedTeacherBank, SnapshotTeachers, takeStepSnapshot } from '../prune/teacherBank';
import type { StepSnapshot, TeacherSource, TeacherRequest } from '../prune/types';
import { MethodSpec, needsTeachers, teacherRequests, teachersKeptAfter } from './methods';
import { IlConfig } from './config';
import { ClassOrder, groupsOf, columnOf } from './protocol';
import type { StepResult, MemoryBreakdown } from './results';
import { Evaluator, forgettingSummary } from './metrics';
import { ExemplarMemory, selectExemplars, classMeans, extractFeatures, nmeScores } from './exemplars';

export type Phase = 'train' | 'finetune';

export type IlEvent =
  | { kind: 'step-start'; method: string; order: number; step: number; steps: number; classes: number[]; images: number }
  | { kind: 'teachers'; method: string; order: number; step: number; done: number; total: number; elapsed: number }
  | { kind: 'batch'; method: string; order: number; step: number; steps: number; phase: Phase; epoch: number; epochs: number; batch: number; batches: number; loss: number; elapsed: number }
  | { kind: 'epoch'; method: string; order: number; step: number; phase: Phase; epoch: number; epochs: number; loss: number; lr: number; seconds: number }
  | { kind: 'step'; method: string; order: number; result: StepResult }
  | { kind: 'checkpoint'; method: string; order: number; step: number; phase: Phase | 'step'; epoch: number; dir: string }
  | { kind: 'resumed'; method: string; order: number; step: number; phase: Phase; epoch: number };

/** Where a run stands: steps fully done, and inside the next step the phase and finished epochs. */
export interface RunPosition {
  stepsDone: number;
  phase: Phase;
  epochsDone: number;
}

/** Derives an rng stream id from labelled integers (deterministic, resumable without stored state). */
export function streamOf(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= (p >>> 16) & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
const PURPOSE = { init: 1, grow: 2, shuffle: 3, flip: 4, crop: 5 };

export interface OrderRunOptions {
  dataset: ImageDataset;
  method: MethodSpec;
  order: ClassOrder;
  orderIndex: number;
  cfg: IlConfig;
  emit?: (e: IlEvent) => void;
  /** called at the end of every epoch and step; the checkpoint layer persists the run there */
  onCheckpoint?: (run: OrderRun, at: { phase: Phase | 'step'; epoch: number }) => void;
  signal?: AbortSignal;
  /** teacher source factory for pruned methods (default: the fused teacher bank) */
  bankFactory?: (model: ResNet32Aux, masks: StepMasks, snapshots: StepSnapshot[], steps: number[]) => TeacherSource;
}

function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export class OrderRun {
  readonly groups: number[][];
  readonly column: Int32Array;
  readonly groupCols: [number, number][];
  model: ResNet32Aux;
  masks: StepMasks | null = null;
  snapshots: StepSnapshot[] = [];
  fullModels = new Map<number, ResNet32Aux>();
  exemplars: ExemplarMemory | null = null;
  results: StepResult[] = [];
  groupHistory: number[][] = [];
  position: RunPosition = { stepsDone: 0, phase: 'train', epochsDone: 0 };
  /** optimizer of the current phase (its momentum buffers are checkpointed) */
  opt: SGD | null = null;
  /** per-step timings accumulated so far (restored on resume) */
  stepSeconds = { train: 0, finetune: 0, teachers: 0, eval: 0 };
  lastLoss = 0;
  private teachers: TeacherSource | null = null;
  private cache: { main: Float32Array; aux: Float32Array; cold: number; flips: number } | null = null;

  constructor(readonly o: OrderRunOptions) {
    const { dataset, cfg, method } = o;
    this.groups = groupsOf(o.order.order, cfg.classesPerStep);
    this.column = columnOf(o.order.order, dataset.classes);
    this.groupCols = this.groups.map((_, k) => [k * cfg.classesPerStep, (k + 1) * cfg.classesPerStep]);
    this.model = new ResNet32Aux(cfg.classesPerStep, { inChannels: dataset.train.channels, seed: cfg.seed });
    if (method.prune) {
      if (this.groups.length > 255) throw new Error(`pruning supports at most 255 steps, this order has ${this.groups.length}`);
      this.masks = new StepMasks(this.model);
    }
    if (method.exemplars) this.exemplars = new ExemplarMemory(cfg.memory);
  }

  get steps(): number {
    return this.groups.length;
  }

  get label(): string {
    return this.o.method.name;
  }

  private emit(e: IlEvent): void {
    this.o.emit?.(e);
  }

  private checkAbort(): void {
    if (this.o.signal?.aborted) throw new Error('run aborted');
  }

  /** Runs (or continues) every remaining step. */
  async run(): Promise<StepResult[]> {
    while (this.position.stepsDone < this.steps) {
      await this.runStep(this.position.stepsDone + 1);
    }
    this.disposeTeachers();
    return this.results;
  }

  /** Classes seen after step t. */
  seenAfter(t: number): number {
    return t * this.o.cfg.classesPerStep;
  }

  /** A copy of a set with dataset labels replaced by head columns. */
  private toColumns(set: ImageSet): ImageSet {
    return { ...set, labels: set.labels.map((l) => this.column[l]) };
  }

  /** The training images of step t (labels = head columns), plus exemplars. */
  stepTrainSet(t: number): ImageSet {
    const fresh = subsetClasses(this.o.dataset.train, this.groups[t - 1]);
    const ex = this.exemplars && this.exemplars.size > 0 ? this.exemplars.imageSet() : null;
    if (!ex) return this.toColumns(fresh);
    const images = new Float32Array(fresh.images.length + ex.images.length);
    images.set(fresh.images);
    images.set(ex.images, fresh.images.length);
    const labels = new Int32Array(fresh.n + ex.n);
    labels.set(fresh.labels);
    labels.set(ex.labels, fresh.n);
    return this.toColumns({ ...fresh, images, labels, n: fresh.n + ex.n });
  }

  /** Test images of the classes seen after step t (labels = head columns). */
  testSet(t: number): ImageSet {
    return this.toColumns(subsetClasses(this.o.dataset.test, this.o.order.order.slice(0, this.seenAfter(t))));
  }

  private buildTeachers(t: number): void {
    this.disposeTeachers();
    const m = this.o.method;
    if (!needsTeachers(m, t)) return;
    const reqs = teacherRequests(m, t, this.groupCols);
    const steps = [...new Set(reqs.map((r) => r.step))];
    if (m.prune) {
      const snaps = this.snapshots.filter((s) => steps.includes(s.step));
      this.teachers = this.o.bankFactory ? this.o.bankFactory(this.model, this.masks!, snaps, steps) : new MaskedTeacherBank(this.model, this.masks!.masks, snaps);
    } else {
      const models = new Map<number, ResNet32Aux>();
      for (const s of steps) {
        const fm = this.fullModels.get(s);
        if (!fm) throw new Error(`${m.name}: the snapshot of step ${s} is missing`);
        models.set(s, fm);
      }
      // the full snapshots stay ours across steps: a non-owning view
      const view = new SnapshotTeachers(models);
      this.teachers = { steps: view.steps, forward: (x, r) => view.forward(x, r), dispose: () => {} };
    }
  }

  private disposeTeachers(): void {
    this.teachers?.dispose();
    this.teachers = null;
    this.cache = null;
  }

  /** Teacher probabilities (sigmoid) for old columns [0, C_{t-1}) of a batch: main and aux, [n * cold]. */
  private teacherTargets(x: Tensor, t: number): { main: Float32Array; aux: Float32Array } {
    const reqs: TeacherRequest[] = teacherRequests(this.o.method, t, this.groupCols);
    const cold = this.seenAfter(t - 1);
    const n = x.shape[0];
    const main = new Float32Array(n * cold);
    const aux = new Float32Array(n * cold);
    tidy(() => {
      const outs = this.teachers!.forward(x, reqs);
      reqs.forEach((r, q) => {
        const w = r.end - r.start;
        const pm = ops.sigmoid(outs[q].main).toFloat32();
        const pa = ops.sigmoid(outs[q].aux).toFloat32();
        for (let i = 0; i < n; i++)
          for (let j = 0; j < w; j++) {
            main[i * cold + r.start + j] = pm[i * w + j];
            aux[i * cold + r.start + j] = pa[i * w + j];
          }
        outs[q].main.dispose();
        outs[q].aux.dispose();
      });
    });
    return { main, aux };
  }

  /** Computes teacher outputs once per (image, flip) for the step's training set. */
  private async buildCache(set: ImageSet, t: number): Promise<void> {
    const t0 = Date.now();
    const cold = this.seenAfter(t - 1);
    const flips = this.o.cfg.flip ? 2 : 1;
    const main = new Float32Array(set.n * flips * cold);
    const aux = new Float32Array(set.n * flips * cold);
    const bs = this.o.cfg.evalBatchSize;
    const sz = imageSize(set);
    const total = Math.ceil(set.n / bs) * flips;
    let done = 0;
    for (let b = 0; b < set.n; b += bs) {
      const n = Math.min(bs, set.n - b);
      for (let f = 0; f < flips; f++) {
        this.checkAbort();
        const tt = tidy(() => {
          let x = Tensor.fromArray(set.images.slice(b * sz, (b + n) * sz), [n, set.channels, set.height, set.width]);
          if (f === 1) x = ops.hflip(x, null);
          return this.teacherTargets(x, t);
        });
        for (let i = 0; i < n; i++) {
          const dst = ((b + i) * flips + f) * cold;
          main.set(tt.main.subarray(i * cold, (i + 1) * cold), dst);
          aux.set(tt.aux.subarray(i * cold, (i + 1) * cold), dst);
        }
        done++;
        this.emit({ kind: 'teachers', method: this.label, order: this.o.orderIndex, step: t, done, total, elapsed: (Date.now() - t0) / 1000 });
        await yieldToLoop();
      }
    }
    this.cache = { main, aux, cold, flips };
  }

  private makeOptimizer(t: number, phase: Phase): { opt: SGD; sched: MultiStepLR | null; freeze: Map<string, Tensor> | null } {
    const cfg = this.o.cfg;
    const wd = t === 1 ? cfg.weightDecayFirst : cfg.weightDecayLater;
    const opt = new SGD(this.model.parameters(), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: wd });
    let freeze: Map<string, Tensor> | null = null;
    if (this.masks) {
      const params = new Map(this.model.namedParameters());
      if (phase === 'train') for (const [name, m] of this.masks.masks) opt.setFrozenMask(params.get(name)!, m);
      else {
        freeze = this.masks.finetuneFreezeMasks(t);
        for (const [name, m] of freeze) opt.setFrozenMask(params.get(name)!, m);
      }
    }
    let sched: MultiStepLR | null;
    if (phase === 'train') sched = new MultiStepLR(opt, cfg.milestones, cfg.gamma);
    else if (cfg.finetuneLr === 'restart') {
      const ms = cfg.milestones.map((m) => Math.max(1, Math.round((m * cfg.finetuneEpochs) / cfg.epochs))).filter((m) => m < cfg.finetuneEpochs);
      sched = new MultiStepLR(opt, ms, cfg.gamma);
    } else {
      opt.lr = cfg.lr * Math.pow(cfg.gamma, cfg.milestones.filter((m) => m <= cfg.epochs).length);
      sched = null;
    }
    return { opt, sched, freeze };
  }

  /** The loss of one batch (a 0-d tensor on the tape). */
  private batchLoss(x: Tensor, cols: Int32Array, flips: Uint8Array, index: Int32Array, t: number): Tensor {
    const cfg = this.o.cfg, m = this.o.method;
    const n = x.shape[0];
    const c = this.seenAfter(t);
    const cold = this.seenAfter(t - 1);
    const denom = n * this.o.dataset.classes;
    const distill = needsTeachers(m, t);
    let teach: { main: Float32Array; aux: Float32Array } | null = null;
    if (distill) {
      if (this.cache) {
        const { main, aux, flips: nf } = this.cache;
        const tm = new Float32Array(n * cold), ta = new Float32Array(n * cold);
        for (let i = 0; i < n; i++) {
          const src = (index[i] * nf + (nf === 2 ? flips[i] : 0)) * cold;
          tm.set(main.subarray(src, src + cold), i * cold);
          ta.set(aux.subarray(src, src + cold), i * cold);
        }
        teach = { main: tm, aux: ta };
      } else teach = noGrad(() => this.teacherTargets(x, t));
    }
    // main targets: teachers on old columns (distillation), labels elsewhere
    const tMain = new Float32Array(n * c);
    const y = new Float32Array(n * c);
    for (let i = 0; i < n; i++) {
      y[i * c + cols[i]] = 1;
      if (teach) {
        tMain.set(teach.main.subarray(i * cold, (i + 1) * cold), i * c);
        if (cols[i] >= cold) tMain[i * c + cols[i]] = 1;
      } else tMain[i * c + cols[i]] = 1;
    }
    const out = this.model.forwardAux(x);
    let loss = ops.bceWithLogits(out.logits, Tensor.fromArray(tMain, [n, c]), { denominator: denom });
    if (m.aux) {
      let lad = ops.scale(ops.bceWithLogits(out.auxLogits, Tensor.fromArray(y, [n, c]), { denominator: denom }), cfg.alpha);
      if (teach && cold > 0) {
        const dist = ops.bceWithLogits(ops.sliceColumns(out.auxLogits, 0, cold), Tensor.fromArray(teach.aux, [n, cold]), { denominator: denom });
        lad = ops.add(dist, lad);
      }
      loss = ops.add(loss, ops.scale(lad, cfg.lambda));
    }
    return loss;
  }

  private async trainPhase(set: ImageSet, t: number, phase: Phase): Promise<void> {
    const cfg = this.o.cfg;
    const epochs = phase === 'train' ? cfg.epochs : cfg.finetuneEpochs;
    const { opt, sched, freeze } = this.makeOptimizer(t, phase);
    this.opt = opt;
    try {
      // resume: restore momentum and schedule position
      const start = this.position.phase === phase ? this.position.epochsDone : 0;
      if (this.pendingMomentum) {
        for (const [i, b] of this.pendingMomentum) opt.setMomentumBuffer(i, b);
        for (const b of this.pendingMomentum.values()) b.dispose();
        this.pendingMomentum = null;
      }
      if (sched) for (let e = 0; e < start; e++) sched.step();
      this.model.train();
      const sz = imageSize(set);
      const bs = cfg.batchSize;
      for (let e = start; e < epochs; e++) {
        const t0 = Date.now();
        const perm = new Rng(cfg.seed, streamOf(PURPOSE.shuffle, this.o.orderIndex, t, phase === 'train' ? 0 : 1, e)).permutation(set.n);
        const augRng = new Rng(cfg.seed, streamOf(PURPOSE.flip, this.o.orderIndex, t, phase === 'train' ? 0 : 1, e));
        const nb = set.n >= bs ? Math.floor(set.n / bs) + (set.n % bs >= 2 ? 1 : 0) : set.n >= 2 ? 1 : 0;
        let lossSum = 0, seen = 0;
        for (let b = 0; b < nb; b++) {
          this.checkAbort();
          const n = Math.min(bs, set.n - b * bs);
          const index = perm.subarray(b * bs, b * bs + n);
          const raw = new Float32Array(n * sz);
          const cols = new Int32Array(n);
          for (let j = 0; j < n; j++) {
            const i = index[j];
            raw.set(set.images.subarray(i * sz, (i + 1) * sz), j * sz);
            cols[j] = set.labels[i];
          }
          const aug = drawAugment(n, { flip: cfg.flip, crop: cfg.crop }, augRng);
          const images = cfg.flip || cfg.crop > 0 ? applyAugment(raw, { n, channels: set.channels, height: set.height, width: set.width }, aug) : raw;
          const flips = aug.flip;
          const l = tidy(() => {
            const x = Tensor.fromArray(images, [n, set.channels, set.height, set.width]);
            const loss = this.batchLoss(x, cols, flips, index, t);
            opt.zeroGrad();
            loss.backward();
            opt.step();
            return loss.item();
          });
          lossSum += l * n;
          seen += n;
          this.emit({ kind: 'batch', method: this.label, order: this.o.orderIndex, step: t, steps: this.steps, phase, epoch: e + 1, epochs, batch: b + 1, batches: nb, loss: l, elapsed: (Date.now() - t0) / 1000 });
          await yieldToLoop();
        }
        opt.zeroGrad();
        sched?.step();
        const secs = (Date.now() - t0) / 1000;
        this.stepSeconds[phase] += secs;
        this.lastLoss = seen ? lossSum / seen : 0;
        this.position = { stepsDone: t - 1, phase, epochsDone: e + 1 };
        this.emit({ kind: 'epoch', method: this.label, order: this.o.orderIndex, step: t, phase, epoch: e + 1, epochs, loss: this.lastLoss, lr: opt.lr, seconds: secs });
        this.o.onCheckpoint?.(this, { phase, epoch: e + 1 });
      }
    } finally {
      this.opt = null;
      if (freeze) for (const f of freeze.values()) f.dispose();
    }
  }

  /** momentum restored from a checkpoint, applied when the phase's optimizer is built */
  pendingMomentum: Map<number, Tensor> | null = null;

  private async runStep(t: number): Promise<void> {
    const cfg = this.o.cfg, m = this.o.method;
    const resuming = this.position.stepsDone === t - 1 && (this.position.epochsDone > 0 || this.position.phase === 'finetune');
    if (!resuming) {
      this.stepSeconds = { train: 0, finetune: 0, teachers: 0, eval: 0 };
      if (t > 1) this.model.growClasses(cfg.classesPerStep, new Rng(cfg.seed, streamOf(PURPOSE.grow, t)));
      this.position = { stepsDone: t - 1, phase: 'train', epochsDone: 0 };
    } else this.emit({ kind: 'resumed', method: m.name, order: this.o.orderIndex, step: t, phase: this.position.phase, epoch: this.position.epochsDone });
    const set = this.stepTrainSet(t);
    this.emit({ kind: 'step-start', method: m.name, order: this.o.orderIndex, step: t, steps: this.steps, classes: this.groups[t - 1], images: set.n });
    const t0 = Date.now();
    this.buildTeachers(t);
    if (this.teachers && cfg.teacherCache && cfg.crop === 0) await this.buildCache(set, t);
    this.stepSeconds.teachers += (Date.now() - t0) / 1000;
    if (this.position.phase === 'train') await this.trainPhase(set, t, 'train');
    if (this.masks) {
      if (this.position.phase === 'train') {
        this.masks.prune(this.model, t, cfg.ratio, cfg.pruneBlock ?? 1);
        this.position = { stepsDone: t - 1, phase: 'finetune', epochsDone: 0 };
      }
      if (cfg.finetuneEpochs > 0) await this.trainPhase(set, t, 'finetune');
    }
    this.disposeTeachers();
    if (cfg.bnRecalibrate) await this.recalibrateBatchNorm(set);
    // keep what later steps need
    const keepSteps = teachersKeptAfter(m, t);
    if (this.masks) {
      this.snapshots.push(takeStepSnapshot(this.model, t));
      this.snapshots = this.snapshots.filter((s) => keepSteps.includes(s.step));
    } else if (m.distill !== 'none') {
      this.fullModels.set(t, cloneModel(this.model));
      for (const [k, fm] of this.fullModels)
        if (!keepSteps.includes(k)) {
          fm.dispose();
          this.fullModels.delete(k);
        }
    }
    if (this.exemplars) await this.updateExemplars(t);
    const te = Date.now();
    const result = await this.evaluate(t);
    this.stepSeconds.eval += (Date.now() - te) / 1000;
    result.seconds = { ...this.stepSeconds, total: this.stepSeconds.train + this.stepSeconds.finetune + this.stepSeconds.teachers + this.stepSeconds.eval };
    this.results.push(result);
    this.position = { stepsDone: t, phase: 'train', epochsDone: 0 };
    this.emit({ kind: 'step', method: m.name, order: this.o.orderIndex, result });
    this.o.onCheckpoint?.(this, { phase: 'step', epoch: 0 });
  }

  /**
   * Re-estimates every BatchNorm's running statistics from the step's training images: reset,
   * then one pass in train mode without gradients with momentum 1/(i+1), i.e. the cumulative
   * average of the batch statistics (torch.optim.swa_utils.update_bn). No weight changes.
   */
  private async recalibrateBatchNorm(set: ImageSet): Promise<void> {
    const bns = batchNorms(this.model);
    const saved = bns.map((b) => ({ momentum: b.momentum, tracked: b.numBatchesTracked }));
    for (const b of bns) {
      b.runningMean.set(new Float32Array(b.channels));
      b.runningVar.set(new Float32Array(b.channels).fill(1));
    }
    this.model.train();
    const sz = imageSize(set);
    const bs = this.o.cfg.batchSize;
    try {
      let i = 0;
      for (let b = 0; b < set.n; b += bs, i++) {
        const n = Math.min(bs, set.n - b);
        if (n < 2) break;
        for (const l of bns) l.momentum = 1 / (i + 1);
        noGrad(() => tidy(() => void this.model.forward(Tensor.fromArray(set.images.slice(b * sz, (b + n) * sz), [n, set.channels, set.height, set.width]))));
        await yieldToLoop();
      }
    } finally {
      bns.forEach((b, j) => {
        b.momentum = saved[j].momentum;
        b.numBatchesTracked = saved[j].tracked;
      });
    }
  }

  private async updateExemplars(t: number): Promise<void> {
    const mem = this.exemplars!;
    const seen = this.seenAfter(t);
    const perClass = Math.floor(this.o.cfg.memory / seen);
    mem.reduce(perClass);
    for (const cls of this.groups[t - 1]) {
      const set = subsetClasses(this.o.dataset.train, [cls]);
      const { exemplars } = selectExemplars(this.model, set, Math.min(perClass, set.n), this.o.cfg.evalBatchSize);
      mem.add(cls, exemplars);
      await yieldToLoop();
    }
  }

  /** Evaluates on the test images of the seen classes: CNN (main head arg-max) or iCaRL's NME. */
  async evaluate(t: number): Promise<StepResult> {
    const test = this.testSet(t);
    const c = this.seenAfter(t);
    const groupOf = new Int32Array(c);
    for (let j = 0; j < c; j++) groupOf[j] = Math.floor(j / this.o.cfg.classesPerStep);
    const ev = new Evaluator({ classes: c, groupOf, groups: t });
    const sz = imageSize(test);
    const bs = this.o.cfg.evalBatchSize;
    const seenClasses = this.o.order.order.slice(0, c);
    const means = this.exemplars ? classMeans(this.model, this.exemplars, bs, seenClasses) : null;
    this.model.eval();
    for (let b = 0; b < test.n; b += bs) {
      const n = Math.min(bs, test.n - b);
      const images = test.images.slice(b * sz, (b + n) * sz);
      let scores: Float32Array;
      if (means) {
        const ef = extractFeatures(this.model, { images, n, channels: test.channels, height: test.height, width: test.width }, bs, { flip: false });
        scores = nmeScores(ef.features, means, this.model.featureSize);
      } else scores = noGrad(() => tidy(() => this.model.forward(Tensor.fromArray(images, [n, test.channels, test.height, test.width])).toFloat32()));
      ev.add(scores, test.labels.subarray(b, b + n));
      await yieldToLoop();
    }
    this.model.train();
    const acc = ev.result();
    this.groupHistory.push(acc.per_group);
    const fg = forgettingSummary(this.groupHistory);
    return {
      step: t,
      classes: this.groups[t - 1],
      classes_seen: c,
      top1: acc.top1,
      top5: acc.top5,
      per_group: acc.per_group,
      forgetting: fg.forgetting,
      mean_forgetting: fg.mean_forgetting,
      confusion: acc.confusion,
      memory: this.memoryBreakdown(),
      mask_occupancy: this.masks ? this.masks.occupancy(t) : undefined,
      seconds: { train: 0, finetune: 0, teachers: 0, eval: 0, total: 0 },
      final_loss: this.lastLoss,
    };
  }

  /** Bytes kept beyond the current model, from what is stored now. */
  memoryBreakdown(): MemoryBreakdown {
    const mem: MemoryBreakdown = { masks: 0, bn: 0, heads: 0, snapshots: 0, exemplars: 0, total: 0 };
    if (this.masks) mem.masks = this.masks.packedBytes(this.steps);
    for (const s of this.snapshots) {
      const b = snapshotBytes(s);
      mem.bn += b.bn;
      mem.heads += b.heads;
    }
    for (const fm of this.fullModels.values()) for (const t of fm.stateDict().values()) mem.snapshots += t.size * 4;
    if (this.exemplars) mem.exemplars = this.exemplars.storedBytesU8();
    mem.total = mem.masks + mem.bn + mem.heads + mem.snapshots + mem.exemplars;
    return mem;
  }

  dispose(): void {
    this.disposeTeachers();
    this.model.dispose();
    this.masks?.dispose();
    for (const fm of this.fullModels.values()) fm.dispose();
    this.fullModels.clear();
  }
}

function batchNorms(m: Module): BatchNorm2d[] {
  const out: BatchNorm2d[] = [];
  for (const [, c] of m.namedChildren()) {
    if (c instanceof BatchNorm2d) out.push(c);
    else out.push(...batchNorms(c));
  }
  return out;
}

/** A deep copy of a model (weights, buffers, counters) in eval mode. */
export function cloneModel(model: ResNet32Aux): ResNet32Aux {
  const m = new ResNet32Aux(model.fc.classes, { inChannels: model.conv1.weight.shape[1] });
  m.loadStateDict(model.stateDict());
  const counters = new Map(m.namedCounters());
  for (const [n, c] of model.namedCounters()) counters.get(n)?.set(c.get());
  return m.eval();
}
