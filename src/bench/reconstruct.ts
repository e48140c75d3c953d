// `m2kd bench reconstruct`: teacher-bank reconstruction throughput (images x models per second)
// of a pruned ResNet32Aux at batch 128: K past models rebuilt from one weight tensor per conv and
// its step mask, all K in one pass (MaskedTeacherBank: a chain of fused masked convolutions),
// main and auxiliary logits of every teacher. Masks come from repeated magnitude pruning on a
// random-init model: before step s the free weights get fresh random values ("training"), then
// step s owns the top (1 - ratio) of them by magnitude and the rest are set to zero; BatchNorm
// and heads of every step are random. Medians of repeated forwards.
import { Tensor, Rng, runtimeInfo } from '../engine';
import { ResNet32Aux } from '../nn';
import { BatchNorm2d } from '../nn/layers';
import { MaskedTeacherBank, takeStepSnapshot } from '../prune/teacherBank';
import type { StepSnapshot, TeacherRequest } from '../prune/types';
import { median, timeRuns } from './stats';

export interface ReconstructOptions {
  /** teacher counts to measure, e.g. [4, 9, 19] */
  K: number[];
  batch?: number;
  /** pruning ratio (fraction of the free weights set to zero after each step), 0.75 */
  ratio?: number;
  /** timed forwards per K (after 2 warm-up forwards) */
  repeats?: number;
  /** classes added per step (heads of step k have k * classesPerStep rows) */
  classesPerStep?: number;
  seed?: number;
  json?: boolean;
}

export interface ReconstructResult {
  K: number;
  batch: number;
  images_models_per_s: number;
  ms_per_batch: number;
  /** mean over the K teachers of the fraction of conv weights each one uses */
  mean_density: number;
  repeats: number;
  times_ms: number[];
}

export interface ReconstructReport {
  threads: number;
  isa: string;
  ratio: number;
  batch: number;
  results: ReconstructResult[];
}

/** A pruned ResNet32Aux with T completed steps, its masks and snapshots, and a bank over them. */
export class ReconstructWorkload {
  readonly model: ResNet32Aux;
  readonly masks = new Map<string, Tensor>();
  readonly snapshots: StepSnapshot[] = [];
  readonly x: Tensor;
  /** per step k (1-based index k-1): fraction of conv weights with 1 <= m <= k */
  readonly density: number[] = [];
  private banks = new Map<number, MaskedTeacherBank>();

  constructor(readonly steps: number, readonly batch = 128, readonly ratio = 0.75, classesPerStep = 5, seed = 1) {
    if (!Number.isInteger(steps) || steps < 1 || steps > 255) throw new Error(`reconstruct: steps must be an integer in [1, 255], got ${steps}`);
    if (!(ratio > 0 && ratio < 1)) throw new Error(`reconstruct: ratio must be in (0, 1), got ${ratio}`);
    const rng = new Rng(seed, 11);
    this.model = new ResNet32Aux(classesPerStep, { inChannels: 3, seed });
    const sd = this.model.stateDict();
    const convs = [...sd.keys()].filter((k) => /conv\d\.weight$/.test(k));
    const masks = new Map<string, Uint8Array>(convs.map((k) => [k, new Uint8Array(sd.get(k)!.size)]));
    const bns: BatchNorm2d[] = [];
    const walk = (m: import('../nn').Module) => {
      if (m instanceof BatchNorm2d) bns.push(m);
      for (const [, c] of m.namedChildren()) walk(c);
    };
    walk(this.model);
    let total = 0;
    for (const k of convs) total += masks.get(k)!.length;
    let owned = 0;
    for (let s = 1; s <= steps; s++) {
      if (s > 1) this.model.growClasses(classesPerStep);
      for (const name of convs) {
        const w = sd.get(name)!, m = masks.get(name)!;
        const v = w.toFloat32();
        const fanIn = w.shape[1] * w.shape[2] * w.shape[3];
        const r = rng.normal(v.length, 0, Math.sqrt(2 / fanIn));
        const free: number[] = [];
        for (let i = 0; i < v.length; i++)
          if (m[i] === 0) {
            v[i] = r[i];
            free.push(i);
          }
        free.sort((a, b) => Math.abs(v[b]) - Math.abs(v[a]));
        const keep = Math.round((1 - ratio) * free.length);
        free.forEach((i, rank) => {
          if (rank < keep) {
            m[i] = s;
            owned++;
          } else v[i] = 0;
        });
        w.set(v);
      }
      for (const bn of bns) {
        bn.weight.set(rng.uniform(bn.channels, 0.3, 0.8));
        bn.bias.set(rng.normal(bn.channels, 0, 0.1));
        bn.runningMean.set(rng.normal(bn.channels, 0, 0.2));
        bn.runningVar.set(rng.uniform(bn.channels, 0.5, 2));
      }
      for (const head of [this.model.fc, this.model.auxfc]) {
        head.weight.set(rng.normal(head.weight.size, 0, 0.2));
        head.bias.set(rng.normal(head.bias.size, 0, 0.1));
      }
      this.snapshots.push(takeStepSnapshot(this.model, s));
      this.density.push(owned / total);
    }
    for (const [name, m] of masks) this.masks.set(name, Tensor.fromArray(m, sd.get(name)!.shape));
    this.x = Tensor.fromArray(rng.normal(batch * 3 * 32 * 32), [batch, 3, 32, 32]);
  }

  /** The bank over teachers 1..K (built once per K, as a run builds one per step). */
  bank(K: number): MaskedTeacherBank {
    if (!Number.isInteger(K) || K < 1 || K > this.steps) throw new Error(`reconstruct: K must be an integer in [1, ${this.steps}], got ${K}`);
    let b = this.banks.get(K);
    if (!b) {
      b = new MaskedTeacherBank(this.model, this.masks, this.snapshots.slice(0, K));
      this.banks.set(K, b);
    }
    return b;
  }

  /** Every teacher 1..K on the batch, all its classes (main and auxiliary logits); outputs freed. */
  forward(K: number): void {
    const bank = this.bank(K);
    const req: TeacherRequest[] = this.snapshots.slice(0, K).map((s) => ({ step: s.step, start: 0, end: s.classesSeen }));
    for (const o of bank.forward(this.x, req)) {
      o.main.dispose();
      o.aux.dispose();
    }
  }

  releaseBank(K: number): void {
    this.banks.get(K)?.dispose();
    this.banks.delete(K);
  }

  meanDensity(K: number): number {
    let s = 0;
    for (let k = 0; k < K; k++) s += this.density[k];
    return s / K;
  }

  dispose(): void {
    for (const b of this.banks.values()) b.dispose();
    this.banks.clear();
    for (const m of this.masks.values()) m.dispose();
    this.x.dispose();
    this.model.dispose();
  }
}

export function benchReconstruct(opts: ReconstructOptions): ReconstructReport {
  const Ks = opts.K;
  if (!Array.isArray(Ks) || Ks.length === 0 || Ks.some((k) => !Number.isInteger(k) || k < 1 || k > 255))
    throw new Error(`bench reconstruct: K must be a non-empty list of integers in [1, 255], got ${Array.isArray(Ks) ? Ks.join(",") : String(Ks)}`);
  const batch = opts.batch ?? 128, ratio = opts.ratio ?? 0.75, repeats = opts.repeats ?? 10;
  const wl = new ReconstructWorkload(Math.max(...Ks), batch, ratio, opts.classesPerStep ?? 5, opts.seed ?? 1);
  try {
    const results: ReconstructResult[] = [];
    for (const K of Ks) {
      const times = timeRuns(() => wl.forward(K), repeats, 2);
      const t = median(times);
      results.push({
        K,
        batch,
        images_models_per_s: (batch * K) / t,
        ms_per_batch: t * 1e3,
        mean_density: wl.meanDensity(K),
        repeats,
        times_ms: times.map((s) => s * 1e3),
      });
      wl.releaseBank(K);
    }
    const info = runtimeInfo();
    return { threads: info.threads, isa: info.isa, ratio, batch, results };
  } finally {
    wl.dispose();
  }
}
