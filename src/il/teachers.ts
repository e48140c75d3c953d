// The teachers of one step and their outputs: built at the start of the step from the masks and
// per-step snapshots (pruning methods: the fused teacher bank) or from full snapshots (other
// distillation methods), asked for sigmoid outputs on the old columns of a batch, and, when the
// cache is on, run once per (training image, flip) at the start of the step so that every epoch
// reads the same targets (teachers are frozen and the only augmentation is a flip, so the cached
// outputs equal the ones computed on the fly). Released at the end of the step.
import { Tensor, tidy, noGrad, ops } from '../engine';
import type { AuxResNet } from '../nn';
import { ImageSet, imageSize, rangeImages } from '../data';
import { MaskedTeacherBank, SnapshotTeachers } from '../prune/teacherBank';
import type { TeacherSource, TeacherRequest } from '../prune/types';
import { needsTeachers, teacherRequests } from './methods';
import { yieldToLoop } from './run';
import type { OrderRun } from './trainer';

/** Teacher sigmoid outputs on the old columns [0, C_{t-1}) of a batch: main and aux heads, [n * cold]. */
export interface TeacherTargets {
  main: Float32Array;
  aux: Float32Array;
}

export class StepTeachers {
  private source: TeacherSource | null = null;
  private cache: { main: Float32Array; aux: Float32Array; cold: number; flips: number } | null = null;

  constructor(private readonly run: OrderRun) {}

  /** Whether the teachers' outputs of this step are cached (buildCache ran). */
  get cached(): boolean {
    return this.cache !== null;
  }

  /** Whether step t has teachers (built by build(t)). */
  get active(): boolean {
    return this.source !== null;
  }

  /** Builds the teachers step t distils from (none for methods or steps without distillation). */
  build(t: number): void {
    this.dispose();
    const run = this.run;
    const m = run.o.method;
    if (!needsTeachers(m, t)) return;
    const reqs = teacherRequests(m, t, run.groupCols);
    const steps = [...new Set(reqs.map((r) => r.step))];
    if (m.prune) {
      const snaps = run.snapshots.filter((s) => steps.includes(s.step));
      // built on the run's device (the bank's folded BN, heads and plans live there)
      this.source = run.on(() => (run.o.bankFactory ? run.o.bankFactory(run.model, run.masks!, snaps, steps) : new MaskedTeacherBank(run.model, run.masks!.masks, snaps)));
    } else {
      const models = new Map<number, AuxResNet>();
      for (const s of steps) {
        const fm = run.fullModels.get(s);
        if (!fm) throw new Error(`${m.name}: the snapshot of step ${s} is missing`);
        models.set(s, fm);
      }
      // the full snapshots stay the run's across steps: a non-owning view
      const view = new SnapshotTeachers(models);
      this.source = { steps: view.steps, forward: (x, r) => view.forward(x, r), dispose: () => {} };
    }
  }

  dispose(): void {
    this.source?.dispose();
    this.source = null;
    this.cache = null;
  }

  /** Teacher probabilities (sigmoid) for old columns [0, C_{t-1}) of a batch: main and aux, [n * cold]. */
  targets(x: Tensor, t: number): TeacherTargets {
    const run = this.run;
    const reqs: TeacherRequest[] = teacherRequests(run.o.method, t, run.groupCols);
    const cold = run.seenAfter(t - 1);
    const n = x.shape[0];
    const main = new Float32Array(n * cold);
    const aux = new Float32Array(n * cold);
    tidy(() => run.on(() => {
      const outs = this.source!.forward(x, reqs);
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
    }));
    return { main, aux };
  }

  /** Computes teacher outputs once per (image, flip) for the step's training set. */
  async buildCache(set: ImageSet, t: number): Promise<void> {
    const run = this.run;
    const t0 = Date.now();
    const cold = run.seenAfter(t - 1);
    const flips = run.o.cfg.flip ? 2 : 1;
    const main = new Float32Array(set.n * flips * cold);
    const aux = new Float32Array(set.n * flips * cold);
    const bs = run.o.cfg.evalBatchSize;
    const total = Math.ceil(set.n / bs) * flips;
    let done = 0;
    for (let b = 0; b < set.n; b += bs) {
      const n = Math.min(bs, set.n - b);
      for (let f = 0; f < flips; f++) {
        run.checkAbort();
        const tt = tidy(() => {
          let x = Tensor.fromArray(rangeImages(set, b, n), [n, set.channels, set.height, set.width], { device: run.device });
          if (f === 1) x = ops.hflip(x, null);
          return this.targets(x, t);
        });
        for (let i = 0; i < n; i++) {
          const dst = ((b + i) * flips + f) * cold;
          main.set(tt.main.subarray(i * cold, (i + 1) * cold), dst);
          aux.set(tt.aux.subarray(i * cold, (i + 1) * cold), dst);
        }
        done++;
        run.emit({ kind: 'teachers', method: run.label, order: run.o.orderIndex, step: t, done, total, elapsed: (Date.now() - t0) / 1000 });
        await yieldToLoop();
      }
    }
    this.cache = { main, aux, cold, flips };
  }

  /**
   * The targets of a training batch: from the cache (rows `index` of the step's set, each with
   * its flip) when it was built, else by running the teachers on x.
   */
  batchTargets(x: Tensor | null, index: Int32Array, flips: Uint8Array, t: number): TeacherTargets {
    if (!this.cache) {
      if (!x) throw new Error('StepTeachers.batchTargets: the teachers run on the fly (no cache) and need the batch');
      return noGrad(() => this.targets(x, t));
    }
    const n = index.length;
    const cold = this.run.seenAfter(t - 1);
    const { main, aux, flips: nf } = this.cache;
    const tm = new Float32Array(n * cold), ta = new Float32Array(n * cold);
    for (let i = 0; i < n; i++) {
      const src = (index[i] * nf + (nf === 2 ? flips[i] : 0)) * cold;
      tm.set(main.subarray(src, src + cold), i * cold);
      ta.set(aux.subarray(src, src + cold), i * cold);
    }
    return { main: tm, aux: ta };
  }
}
