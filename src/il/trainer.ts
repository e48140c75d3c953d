// One incremental run: a method over the steps of one class order. OrderRun owns the model, the
// step masks and per-step snapshots (pruning methods), the full snapshots (other distillation
// methods), iCaRL's exemplars, the step's teachers, and the run state that checkpoints hold; it
// runs the steps in order. A step: grow the head, build the teachers (and their cache), train,
// prune and fine-tune (pruning methods), recalibrate BatchNorm, keep what later steps need,
// update the exemplars, evaluate. The parts live beside it: teachers.ts, targets.ts (the loss),
// batches.ts (the epoch and batch loop), recalibrate.ts, evaluate.ts; run.ts holds the shared types.
import { Tensor, Rng, ops, withDevice, Device, StagingBuffer } from '../engine';
import { AuxResNet, createAuxModel, defaultArch } from '../nn';
import type { SGD } from '../optim';
import { ImageSet, subsetClasses, concatSets } from '../data';
import { StepMasks } from '../prune/masks';
import { takeStepSnapshot } from '../prune/teacherBank';
import type { StepSnapshot } from '../prune/types';
import { teachersKeptAfter } from './methods';
import { groupsOf, columnOf } from './protocol';
import type { StepResult, MemoryBreakdown } from './results';
import { ExemplarMemory, selectExemplars } from './exemplars';
import { IlEvent, OrderRunOptions, PURPOSE, RunPosition, streamOf, yieldToLoop } from './run';
import { StepTeachers } from './teachers';
import { trainPhase } from './batches';
import { recalibrateBatchNorm } from './recalibrate';
import { evaluateStep, memoryBreakdown } from './evaluate';

export type { Phase, IlEvent, RunPosition, OrderRunOptions } from './run';
export { streamOf } from './run';

export class OrderRun {
  readonly groups: number[][];
  readonly column: Int32Array;
  readonly groupCols: [number, number][];
  model: AuxResNet;
  masks: StepMasks | null = null;
  snapshots: StepSnapshot[] = [];
  fullModels = new Map<number, AuxResNet>();
  exemplars: ExemplarMemory | null = null;
  results: StepResult[] = [];
  groupHistory: number[][] = [];
  position: RunPosition = { stepsDone: 0, phase: 'train', epochsDone: 0 };
  /** optimizer of the current phase (its momentum buffers are checkpointed) */
  opt: SGD | null = null;
  /** per-step timings accumulated so far (restored on resume) */
  stepSeconds = { train: 0, finetune: 0, teachers: 0, eval: 0 };
  lastLoss = 0;
  /** the teachers of the current step (and their output cache) */
  readonly teachers = new StepTeachers(this);
  /** where the run's tensors live (OrderRunOptions.device) */
  readonly device: Device;
  /** the one host-to-device path of training batches (one copy per batch on a device) */
  readonly staging: StagingBuffer;
  /** momentum restored from a checkpoint, applied when the phase's optimizer is built */
  pendingMomentum: Map<number, Tensor> | null = null;

  constructor(readonly o: OrderRunOptions) {
    const { dataset, cfg, method } = o;
    this.device = o.device ?? 'cpu';
    this.staging = new StagingBuffer(this.device);
    this.groups = groupsOf(o.order.order, cfg.classesPerStep);
    this.column = columnOf(o.order.order, dataset.classes);
    this.groupCols = this.groups.map((_, k) => [k * cfg.classesPerStep, (k + 1) * cfg.classesPerStep]);
    const arch = cfg.arch ?? defaultArch(Math.min(dataset.train.height, dataset.train.width));
    this.model = this.on(() => createAuxModel(arch, cfg.classesPerStep, { inChannels: dataset.train.channels, seed: cfg.seed }));
    if (method.prune) {
      if (this.groups.length > ops.MASKED_CONV_MAX_STEP)
        throw new Error(`pruning supports at most ${ops.MASKED_CONV_MAX_STEP} steps, this order has ${this.groups.length}`);
      this.masks = new StepMasks(this.model);
    }
    if (method.exemplars) this.exemplars = new ExemplarMemory(cfg.memory);
  }

  /** Runs fn with the run's device as the tensor factories' default (synchronous fn only). */
  on<T>(fn: () => T): T {
    return withDevice(this.device, fn);
  }

  get steps(): number {
    return this.groups.length;
  }

  get label(): string {
    return this.o.method.name;
  }

  emit(e: IlEvent): void {
    this.o.emit?.(e);
  }

  checkAbort(): void {
    if (this.o.signal?.aborted) throw new Error('run aborted');
  }

  /** Runs (or continues) every remaining step. */
  async run(): Promise<StepResult[]> {
    while (this.position.stepsDone < this.steps) {
      await this.runStep(this.position.stepsDone + 1);
    }
    this.teachers.dispose();
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
    if (fresh.stream && this.exemplars && this.exemplars.size > 0) return this.toColumns(concatSets(fresh, this.exemplars.streamedSet()));
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
    this.teachers.build(t);
    if (this.teachers.active && cfg.teacherCache && cfg.crop === 0) await this.teachers.buildCache(set, t);
    this.stepSeconds.teachers += (Date.now() - t0) / 1000;
    if (this.position.phase === 'train') await trainPhase(this, set, t, 'train');
    if (this.masks) {
      if (this.position.phase === 'train') {
        this.masks.prune(this.model, t, cfg.ratio, cfg.pruneBlock ?? 1);
        this.position = { stepsDone: t - 1, phase: 'finetune', epochsDone: 0 };
      }
      if (cfg.finetuneEpochs > 0) await trainPhase(this, set, t, 'finetune');
    }
    this.teachers.dispose();
    if (cfg.bnRecalibrate) await recalibrateBatchNorm(this.model, set, cfg.batchSize);
    // keep what later steps need
    const keepSteps = teachersKeptAfter(m, t);
    if (this.masks) {
      this.snapshots.push(takeStepSnapshot(this.model, t));
      this.snapshots = this.snapshots.filter((s) => keepSteps.includes(s.step));
    } else if (m.distill !== 'none') {
      this.fullModels.set(t, this.on(() => cloneModel(this.model)));
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
  evaluate(t: number): Promise<StepResult> {
    return evaluateStep(this, t);
  }

  /** Bytes kept beyond the current model, from what is stored now. */
  memoryBreakdown(): MemoryBreakdown {
    return memoryBreakdown(this);
  }

  dispose(): void {
    this.teachers.dispose();
    this.staging.dispose();
    this.model.dispose();
    this.masks?.dispose();
    for (const fm of this.fullModels.values()) fm.dispose();
    this.fullModels.clear();
  }
}

/** A deep copy of a model (weights, buffers, counters) in eval mode. */
export function cloneModel(model: AuxResNet): AuxResNet {
  const m = createAuxModel(model.arch, model.fc.classes, { inChannels: model.conv1.weight.shape[1] });
  m.loadStateDict(model.stateDict());
  const counters = new Map(m.namedCounters());
  for (const [n, c] of model.namedCounters()) counters.get(n)?.set(c.get());
  return m.eval();
}
