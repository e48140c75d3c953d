// `m2kd bench reconstruct`: teacher-bank reconstruction throughput (images x models per second)
// of a pruned ResNet32Aux at batch 128 (or ResNet18Aux, --arch resnet18 --size 224): K past models rebuilt from one weight tensor per conv and
// its step mask, all K in one pass (MaskedTeacherBank: a chain of fused masked convolutions),
// main and auxiliary logits of every teacher. Masks come from repeated magnitude pruning on a
// random-init model: before step s the free weights get fresh random values ("training"), then
// step s owns the top (1 - ratio) of them by magnitude and the rest are set to zero; BatchNorm
// and heads of every step are random (pruneBlock B > 1: blocks of B output channels by block
// norm, as --prune-block). Medians of repeated forwards. shapeRates: the fused kernel's useful
// GFLOP/s per conv shape and per model density band, beside our dense conv on the same shapes.
import { Tensor, Rng, runtimeInfo, ops, noGrad, withDevice, synchronize } from '../engine';
import type { Device } from '../engine';
import { createAuxModel, type Arch, type AuxResNet } from '../nn';
import { BatchNorm2d } from '../nn/layers';
import { MaskedTeacherBank, takeStepSnapshot } from '../prune/teacherBank';
import { pruneLayer, PRUNE_BLOCKS } from '../prune/masks';
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
  /** --prune-block: 1 (unstructured), 4, 8, 16 */
  pruneBlock?: number;
  /** also measure per-shape and per-density-band rates (shapeRates; cpu only: they time the CPU's blocked layout) */
  shapes?: boolean;
  /** cpu (default) or cuda: the workload is built on the device and every timed forward ends with a synchronize */
  device?: Device;
  /** the backbone (default resnet32) and the input side (default 32; resnet18: 224) */
  arch?: Arch;
  size?: number;
}

/** The fused kernel on one conv shape of the bank, all K models, beside our dense conv. */
export interface ShapeRate {
  layer: string;
  /** e.g. '16->16 32x32 s1' */
  shape: string;
  K: number;
  /** fraction of the layer's weights used, averaged over the K models */
  mean_density: number;
  ms: number;
  /** useful (non-skipped) FLOPs per second of the fused kernel, in GFLOP/s */
  useful_gflops: number;
  /** our dense conv2d (engine op) on one model's batch of the same shape */
  dense_gflops: number;
}

/** Models grouped by their per-layer density: the fused kernel's useful GFLOP/s per band. */
export interface BandRate {
  band: string;
  /** (model, layer) pairs in the band */
  runs: number;
  useful_gflops: number;
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
  shapes?: ShapeRate[];
  bands?: BandRate[];
}

export interface ReconstructReport {
  threads: number;
  isa: string;
  ratio: number;
  batch: number;
  prune_block: number;
  arch: Arch;
  size: number;
  device: Device;
  results: ReconstructResult[];
}

/** A pruned model with T completed steps, its masks and snapshots, and a bank over them. */
export class ReconstructWorkload {
  readonly model: AuxResNet;
  readonly masks = new Map<string, Tensor>();
  readonly snapshots: StepSnapshot[] = [];
  readonly x: Tensor;
  /** per step k (1-based index k-1): fraction of conv weights with 1 <= m <= k */
  readonly density: number[] = [];
  private banks = new Map<number, MaskedTeacherBank>();

  constructor(readonly steps: number, readonly batch = 128, readonly ratio = 0.75, classesPerStep = 5, seed = 1, readonly pruneBlock = 1, readonly arch: Arch = 'resnet32', readonly size = 32) {
    if (!Number.isInteger(steps) || steps < 1 || steps > ops.MASKED_CONV_MAX_STEP) throw new Error(`reconstruct: steps must be an integer in [1, ${ops.MASKED_CONV_MAX_STEP}], got ${steps}`);
    if (!PRUNE_BLOCKS.includes(pruneBlock)) throw new Error(`reconstruct: prune block must be one of ${PRUNE_BLOCKS.join(', ')}, got ${pruneBlock}`);
    if (!(ratio > 0 && ratio < 1)) throw new Error(`reconstruct: ratio must be in (0, 1), got ${ratio}`);
    const rng = new Rng(seed, 11);
    if (!Number.isInteger(size) || size < 8) throw new Error(`reconstruct: size must be an integer >= 8, got ${size}`);
    this.model = createAuxModel(arch, classesPerStep, { inChannels: 3, seed });
    const sd = this.model.stateDict();
    // every conv weight (ResNet-18's stem and downsample convs included)
    const convs = this.model.namedParameters().filter(([, p]) => p.rank === 4).map(([k]) => k);
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
        for (let i = 0; i < v.length; i++) if (m[i] === 0) v[i] = r[i];
        const { free, pruned } = pruneLayer(v, m, w.shape, s, ratio, pruneBlock);
        owned += free - pruned;
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
    this.x = Tensor.fromArray(rng.normal(batch * 3 * size * size), [batch, 3, size, size]);
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

/** Representative convs of ResNet-32: one per distinct shape (stem, stages, downsampling). */
const SHAPE_LAYERS: { name: string; inH: number; stride: number }[] = [
  { name: 'conv1', inH: 32, stride: 1 },
  { name: 'stage1.0.conv1', inH: 32, stride: 1 },
  { name: 'stage2.0.conv1', inH: 32, stride: 2 },
  { name: 'stage2.0.conv2', inH: 16, stride: 1 },
  { name: 'stage3.0.conv1', inH: 16, stride: 2 },
  { name: 'stage3.0.conv2', inH: 8, stride: 1 },
];

/**
 * The fused kernel alone on each conv shape of the bank (the workload's weights and masks,
 * K models, blocked layout), its useful GFLOP/s beside our dense conv2d on one model's batch of
 * the same shape; and per (model, layer) runs grouped by the model's density in that layer.
 */
export function shapeRates(wl: ReconstructWorkload, K: number, repeats = 3): { shapes: ShapeRate[]; bands: BandRate[] } {
  if (wl.arch !== 'resnet32' || wl.size !== 32) throw new Error('bench reconstruct --shapes: the per-shape rates are ResNet-32 at 32x32 only (add --no-shapes)');
  const sd = wl.model.stateDict();
  const N = wl.batch;
  const rng = new Rng(7, 3);
  const shapes: ShapeRate[] = [];
  const bandEdges = [0, 0.25, 0.5, 0.75, 1.0001];
  const bandFlops = new Array(4).fill(0), bandTime = new Array(4).fill(0), bandRuns = new Array(4).fill(0);
  noGrad(() => {
    for (const { name, inH, stride } of SHAPE_LAYERS) {
      const w = sd.get(`${name}.weight`)!, mask = wl.masks.get(`${name}.weight`)!;
      const [o, c] = w.shape;
      const oh = Math.floor((inH + 2 - 3) / stride) + 1;
      const m = mask.toArray() as Uint8Array;
      const nnz = (k: number) => {
        let z = 0;
        for (let i = 0; i < m.length; i++) if (m[i] >= 1 && m[i] <= k) z++;
        return z;
      };
      const plan = new ops.MaskedConvPlan(w, mask);
      const stem = name === 'conv1';
      const mkInput = (k: number): Tensor | ops.MaskedBlocked => {
        if (stem) return wl.x;
        const b = ops.MaskedBlocked.empty(k, N, c, inH, inH, 1);
        b.data.set(rng.normal(b.data.size));
        return b;
      };
      const run = (x: Tensor | ops.MaskedBlocked, steps: Int32Array) => {
        const k = steps.length;
        const scale = Tensor.full([k, o], 1), shift = Tensor.zeros([k, o]);
        const y = ops.maskedConv2dBlocked(x, steps, { stride, padding: 1, scale, shift, relu: true, plan });
        y.dispose();
        scale.dispose();
        shift.dispose();
      };
      try {
        // all K models in one call
        const steps = Int32Array.from({ length: K }, (_, i) => i + 1);
        const x = mkInput(K);
        const t = median(timeRuns(() => run(x, steps), repeats, 1));
        if (x instanceof ops.MaskedBlocked) x.dispose();
        let useful = 0, dens = 0;
        for (let k = 1; k <= K; k++) {
          const z = nnz(k);
          useful += 2 * N * oh * oh * z;
          dens += z / m.length;
        }
        // our dense conv on one model's batch
        const xd = Tensor.fromArray(rng.normal(N * c * inH * inH), [N, c, inH, inH]);
        const td = median(timeRuns(() => ops.conv2d(xd, w, null, { stride, padding: 1 }).dispose(), repeats, 1));
        xd.dispose();
        shapes.push({
          layer: name,
          shape: `${c}->${o} ${inH}x${inH} s${stride}`,
          K,
          mean_density: dens / K,
          ms: t * 1e3,
          useful_gflops: useful / t / 1e9,
          dense_gflops: (2 * N * oh * oh * o * c * 9) / td / 1e9,
        });
        // one model at a time, grouped by its density in this layer
        const x1 = mkInput(1);
        for (let k = 1; k <= K; k++) {
          const z = nnz(k), d = z / m.length;
          const t1 = median(timeRuns(() => run(x1, Int32Array.from([k])), repeats, 1));
          const b = bandEdges.findIndex((e, i) => d >= e && d < bandEdges[i + 1]);
          bandFlops[b] += 2 * N * oh * oh * z;
          bandTime[b] += t1;
          bandRuns[b]++;
        }
        if (x1 instanceof ops.MaskedBlocked) x1.dispose();
      } finally {
        plan.dispose();
      }
    }
  });
  const bands: BandRate[] = [];
  for (let b = 0; b < 4; b++)
    if (bandRuns[b] > 0)
      bands.push({ band: `[${bandEdges[b]}, ${Math.min(1, bandEdges[b + 1])})`, runs: bandRuns[b], useful_gflops: bandFlops[b] / bandTime[b] / 1e9 });
  return { shapes, bands };
}

export function benchReconstruct(opts: ReconstructOptions): ReconstructReport {
  const Ks = opts.K;
  if (!Array.isArray(Ks) || Ks.length === 0 || Ks.some((k) => !Number.isInteger(k) || k < 1 || k > ops.MASKED_CONV_MAX_STEP))
    throw new Error(`bench reconstruct: K must be a non-empty list of integers in [1, ${ops.MASKED_CONV_MAX_STEP}], got ${Array.isArray(Ks) ? Ks.join(",") : String(Ks)}`);
  const batch = opts.batch ?? 128, ratio = opts.ratio ?? 0.75, repeats = opts.repeats ?? 10;
  const pruneBlock = opts.pruneBlock ?? 1;
  const arch = opts.arch ?? 'resnet32', size = opts.size ?? (arch === 'resnet18' ? 224 : 32);
  const device = opts.device ?? 'cpu';
  if (device !== 'cpu' && opts.shapes) throw new Error(`bench reconstruct --device ${device}: the per-shape rates time the CPU's blocked layout; use --no-shapes`);
  const on = <T>(fn: () => T): T => withDevice(device, fn);
  const wl = on(() => new ReconstructWorkload(Math.max(...Ks), batch, ratio, opts.classesPerStep ?? 5, opts.seed ?? 1, pruneBlock, arch, size));
  try {
    const results: ReconstructResult[] = [];
    for (const K of Ks) {
      const times = timeRuns(() => on(() => {
        wl.forward(K);
        if (device !== 'cpu') synchronize(device);
      }), repeats, 2);
      const t = median(times);
      results.push({
        K,
        batch,
        images_models_per_s: (batch * K) / t,
        ms_per_batch: t * 1e3,
        mean_density: wl.meanDensity(K),
        repeats,
        times_ms: times.map((s) => s * 1e3),
        ...(opts.shapes ? shapeRates(wl, K) : {}),
      });
      wl.releaseBank(K);
    }
    const info = runtimeInfo();
    return { threads: info.threads, isa: info.isa, ratio, batch, prune_block: pruneBlock, arch, size, device, results };
  } finally {
    wl.dispose();
  }
}
