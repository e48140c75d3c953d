// Teacher sources: the bank that rebuilds every past model of a pruned ResNet32Aux or
// ResNet18Aux from one shared weight tensor per conv and its u8 step mask (a chain of fused
// masked convolutions, all requested teachers in one pass: ResNet-32's option-A shortcuts, and
// ResNet-18's 7x7 stride-2 stem, max pooling and option-B 1x1 stride-2 downsample convs with
// their folded BatchNorm, added in the epilogue of the block's second conv), full-snapshot
// teachers (no-pruning upper bound, LwF-MC's previous model), and rebuildTeacherModel, which
// materialises teacher k as an ordinary model (the reference the bank is tested against).
// Teacher k = conv weights with 1 <= m <= k, the BatchNorm of step k (folded: scale =
// gamma/sqrt(var+eps), shift = beta - mean*scale) and the classifier rows of step k. Nothing
// here records gradients; outputs belong to the caller. A batch runs in chunks of images
// whose activations (K models) stay under BANK_CHUNK_BYTES.
import { Tensor, ops, noGrad, tidy, keep } from '../engine';
import { ResNet32Aux, ResNet18Aux, AuxResNet, AUX_STAGE, createAuxModel } from '../nn/auxnet';
import { BasicBlock } from '../nn/resnet';
import { BatchNorm2d, Conv2d } from '../nn/layers';
import type { StepSnapshot, BnSnapshot, HeadSnapshot, TeacherOutput, TeacherRequest, TeacherSource } from './types';

function bnSnapshot(bn: BatchNorm2d): BnSnapshot {
  return {
    weight: bn.weight.toFloat32(),
    bias: bn.bias.toFloat32(),
    runningMean: bn.runningMean.toFloat32(),
    runningVar: bn.runningVar.toFloat32(),
    eps: bn.eps,
  };
}

function headSnapshot(w: Tensor, b: Tensor): HeadSnapshot {
  return { weight: w.toFloat32(), bias: b.toFloat32(), classes: w.shape[0], inFeatures: w.shape[1] };
}

/** Step `step`'s snapshot of a model: every BatchNorm (parameters and running statistics) and both heads. */
export function takeStepSnapshot(model: AuxResNet, step: number): StepSnapshot {
  if (!Number.isInteger(step) || step < 1 || step > ops.MASKED_CONV_MAX_STEP) throw new Error(`takeStepSnapshot: step must be an integer in [1, ${ops.MASKED_CONV_MAX_STEP}], got ${step}`);
  const bn: Record<string, BnSnapshot> = {};
  for (const [name, m] of model.namedModules()) if (m instanceof BatchNorm2d) bn[name] = bnSnapshot(m);
  return {
    step,
    classesSeen: model.fc.classes,
    bn,
    fc: headSnapshot(model.fc.weight, model.fc.bias),
    aux: headSnapshot(model.auxfc.weight, model.auxfc.bias),
  };
}

/** One conv of the chain with the BatchNorm that follows it. */
interface ConvLayer {
  /** conv module name, e.g. 'conv1', 'stage2.0.conv1', 'layer2.0.downsample.0' */
  name: string;
  conv: Conv2d;
  bnName: string;
}

interface BlockLayers {
  block: BasicBlock;
  prefix: string;
  c1: ConvLayer;
  c2: ConvLayer;
  /** option-B shortcut: the 1x1 conv and its BatchNorm */
  ds: ConvLayer | null;
}

/** The chain of a model: the stem (and its max pooling), the blocks, where the aux head reads. */
interface Chain {
  stem: ConvLayer;
  pool: { kernel: number; stride: number; pad: number } | null;
  blocks: BlockLayers[];
  /** index of the block whose output feeds the auxiliary head (last block of the second stage) */
  auxBlock: number;
}

function isAuxModel(m: unknown): m is AuxResNet {
  return m instanceof ResNet32Aux || m instanceof ResNet18Aux;
}

function convLayers(model: AuxResNet): Chain {
  const stem = { name: 'conv1', conv: model.conv1, bnName: 'bn1' };
  const blocks: BlockLayers[] = [];
  let auxBlock = -1;
  const stages = model.residualStages();
  stages.forEach(({ name, stage }, si) => {
    for (let bi = 0; bi < stage.layers.length; bi++) {
      const block = stage.layers[bi];
      if (!(block instanceof BasicBlock)) throw new Error('MaskedTeacherBank: expected BasicBlocks in the stages');
      const prefix = `${name}.${bi}`;
      let ds: ConvLayer | null = null;
      if (block.shortcut.kind === 'B') {
        const d = block.downsample!;
        const conv = d.layers[0], bn = d.layers[1];
        if (!(conv instanceof Conv2d) || !(bn instanceof BatchNorm2d)) throw new Error(`MaskedTeacherBank: ${prefix}.downsample must be (Conv2d, BatchNorm2d)`);
        ds = { name: `${prefix}.downsample.0`, conv, bnName: `${prefix}.downsample.1` };
      }
      blocks.push({
        block,
        prefix,
        c1: { name: `${prefix}.conv1`, conv: block.conv1, bnName: `${prefix}.bn1` },
        c2: { name: `${prefix}.conv2`, conv: block.conv2, bnName: `${prefix}.bn2` },
        ds,
      });
    }
    if (si === AUX_STAGE) auxBlock = blocks.length - 1;
  });
  return { stem, pool: model instanceof ResNet18Aux ? ResNet18Aux.stemPool : null, blocks, auxBlock };
}

/** Every conv of a chain. */
function chainConvs(c: Chain): ConvLayer[] {
  return [c.stem, ...c.blocks.flatMap((b) => (b.ds ? [b.c1, b.c2, b.ds] : [b.c1, b.c2]))];
}

/**
 * Bytes a chunk of images may take per live activation (K models, the largest layer, the blocked
 * layout's padded planes): batches above it run in chunks, so that ResNet-18 at 224x224 with many
 * teachers stays bounded (its stem output: 3.3 MB per image and model; chunks of 64 images for
 * one teacher, of one vector of 16 images (AVX-512) for 9). ResNet-32 at 32x32 (74 KB per image
 * and model) chunks only beyond about 3,400 image-models (e.g. 9 teachers on 400 images).
 */
export const BANK_CHUNK_BYTES = 256 * 1024 * 1024;

function checkMask(where: string, key: string, w: Tensor, mask: Tensor | undefined): Tensor {
  if (!mask) throw new Error(`${where}: no step mask for '${key}'`);
  if (!(mask instanceof Tensor) || mask.disposed) throw new Error(`${where}: mask '${key}' is not a live Tensor`);
  if (mask.dtype !== 'u8') throw new Error(`${where}: mask '${key}' must be u8, got ${mask.dtype}`);
  if (mask.rank !== w.rank || mask.shape.some((d, i) => d !== w.shape[i]))
    throw new Error(`${where}: mask '${key}' has shape [${mask.shape.join(',')}], the weight is [${w.shape.join(',')}]`);
  return mask;
}

function checkSnapshot(where: string, model: AuxResNet, s: StepSnapshot): void {
  if (!Number.isInteger(s.step) || s.step < 1 || s.step > ops.MASKED_CONV_MAX_STEP) throw new Error(`${where}: snapshot step ${s.step} must be an integer in [1, ${ops.MASKED_CONV_MAX_STEP}]`);
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    const b = s.bn[name];
    if (!b) throw new Error(`${where}: snapshot of step ${s.step} has no BatchNorm '${name}'`);
    for (const f of ['weight', 'bias', 'runningMean', 'runningVar'] as const)
      if (!(b[f] instanceof Float32Array) || b[f].length !== m.channels)
        throw new Error(`${where}: snapshot of step ${s.step}: BatchNorm '${name}'.${f} must hold ${m.channels} floats`);
  }
  const heads: [string, HeadSnapshot, number][] = [['fc', s.fc, model.fc.inFeatures], ['aux', s.aux, model.auxfc.inFeatures]];
  for (const [name, h, f] of heads) {
    if (h.inFeatures !== f || h.classes !== s.classesSeen || h.weight.length !== h.classes * f || h.bias.length !== h.classes)
      throw new Error(`${where}: snapshot of step ${s.step}: head '${name}' must be [${s.classesSeen}, ${f}] with ${s.classesSeen} biases`);
  }
}

/** Folded eval-mode BatchNorm of one snapshot: scale = gamma/sqrt(var+eps), shift = beta - mean*scale. */
export function foldBatchNorm(b: BnSnapshot): { scale: Float32Array; shift: Float32Array } {
  const n = b.weight.length;
  const scale = new Float32Array(n), shift = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = b.weight[i] / Math.sqrt(b.runningVar[i] + b.eps);
    scale[i] = s;
    shift[i] = b.bias[i] - b.runningMean[i] * s;
  }
  return { scale, shift };
}

function checkRequests(where: string, requests: TeacherRequest[], classesOf: (step: number) => number | undefined): void {
  if (!Array.isArray(requests)) throw new Error(`${where}: requests must be an array`);
  for (const r of requests) {
    const c = classesOf(r.step);
    if (c === undefined) throw new Error(`${where}: no teacher for step ${r.step}`);
    if (!Number.isInteger(r.start) || !Number.isInteger(r.end) || r.start < 0 || r.end <= r.start || r.end > c)
      throw new Error(`${where}: request for step ${r.step} asks for columns [${r.start}, ${r.end}) but that teacher has ${c} classes`);
  }
}

function checkInput(where: string, x: Tensor, inChannels: number): void {
  if (!(x instanceof Tensor) || x.disposed) throw new Error(`${where}: x must be a live Tensor`);
  if (x.dtype !== 'f32' || x.rank !== 4 || x.shape[1] !== inChannels || x.shape[0] < 1)
    throw new Error(`${where}: x must be f32 [N, ${inChannels}, H, W], got ${x.dtype} [${x.shape.join(',')}]`);
}

/** Rows [k*n, (k+1)*n) of a [K*n, m] matrix as a new [n, m] tensor. */
function rowBlock(x: Tensor, k: number, n: number): Tensor {
  const m = x.shape[1];
  return tidy(() => ops.reshape(ops.sliceColumns(ops.reshape(x, [1, x.size]), k * n * m, (k + 1) * n * m), [n, m]));
}

/** A conv of the bank: its layer, mask and plan. */
interface BankConv {
  layer: ConvLayer;
  mask: Tensor;
  plan: ops.MaskedConvPlan;
}

/** Images [start, end) of a batch [N, C, H, W] as a new tensor. */
function imageRows(x: Tensor, start: number, end: number): Tensor {
  const per = x.size / x.shape[0];
  return tidy(() => ops.reshape(ops.sliceColumns(ops.reshape(x, [1, x.size]), start * per, end * per), [end - start, ...x.shape.slice(1)]));
}

/**
 * All past models of a pruned ResNet32Aux or ResNet18Aux, rebuilt from the current conv weights,
 * their step masks and the per-step snapshots, in one pass per forward (fused masked
 * convolutions over every requested teacher). Plans (taps sorted by step) are built at
 * construction: the weights owned by steps 1..T-1 are frozen during step T, so they stay valid
 * for the whole step; build a new bank after the masks or the owned weights change. The model
 * is not owned.
 */
export class MaskedTeacherBank implements TeacherSource {
  readonly steps: number[];
  private readonly inChannels: number;
  private readonly stem: BankConv;
  private readonly pool: Chain['pool'];
  private readonly auxBlock: number;
  private readonly blocks: { block: BasicBlock; c1: BankConv; c2: BankConv; ds: BankConv | null }[];
  private readonly snaps = new Map<number, StepSnapshot>();
  /** folded BN per (bn name, step) */
  private readonly folded = new Map<string, { scale: Float32Array; shift: Float32Array }>();
  private readonly heads = new Map<number, { fcW: Tensor; fcB: Tensor; auxW: Tensor; auxB: Tensor }>();
  private disposed = false;

  private readonly chunkBytes: number;

  /** opts.chunkBytes: bytes per live activation of a chunk of images (default BANK_CHUNK_BYTES) */
  constructor(model: AuxResNet, masks: Map<string, Tensor>, snapshots: StepSnapshot[], opts: { chunkBytes?: number } = {}) {
    const where = 'MaskedTeacherBank';
    const cb = opts.chunkBytes ?? BANK_CHUNK_BYTES;
    if (!(Number.isFinite(cb) && cb > 0)) throw new Error(`${where}: chunkBytes must be a positive number, got ${cb}`);
    this.chunkBytes = cb;
    if (!isAuxModel(model)) throw new Error(`${where}: model must be a ResNet32Aux or ResNet18Aux`);
    if (!(masks instanceof Map)) throw new Error(`${where}: masks must be a Map from conv weight names to u8 tensors`);
    if (!Array.isArray(snapshots) || snapshots.length === 0) throw new Error(`${where}: at least one step snapshot is needed`);
    for (const s of snapshots) {
      checkSnapshot(where, model, s);
      if (this.snaps.has(s.step)) throw new Error(`${where}: two snapshots for step ${s.step}`);
      this.snaps.set(s.step, s);
    }
    this.steps = [...this.snaps.keys()].sort((a, b) => a - b);
    this.inChannels = model.conv1.inChannels;
    const chain = convLayers(model);
    this.pool = chain.pool;
    this.auxBlock = chain.auxBlock;
    const known = new Set(chainConvs(chain).map((l) => `${l.name}.weight`));
    for (const k of masks.keys()) if (!known.has(k)) throw new Error(`${where}: mask '${k}' names no conv weight of the model`);
    const made: ops.MaskedConvPlan[] = [];
    const build = (layer: ConvLayer): BankConv => {
      const key = `${layer.name}.weight`;
      const mask = checkMask(where, key, layer.conv.weight, masks.get(key));
      if (layer.conv.bias) throw new Error(`${where}: conv '${layer.name}' has a bias (not supported)`);
      const plan = new ops.MaskedConvPlan(layer.conv.weight, mask);
      made.push(plan);
      return { layer, mask, plan };
    };
    try {
      this.stem = build(chain.stem);
      this.blocks = chain.blocks.map((b) => ({ block: b.block, c1: build(b.c1), c2: build(b.c2), ds: b.ds ? build(b.ds) : null }));
      for (const s of snapshots) {
        for (const name of Object.keys(s.bn)) this.folded.set(`${name}@${s.step}`, foldBatchNorm(s.bn[name]));
        this.heads.set(s.step, {
          fcW: keep(Tensor.fromArray(s.fc.weight, [s.fc.classes, s.fc.inFeatures])),
          fcB: keep(Tensor.fromArray(s.fc.bias, [s.fc.classes])),
          auxW: keep(Tensor.fromArray(s.aux.weight, [s.aux.classes, s.aux.inFeatures])),
          auxB: keep(Tensor.fromArray(s.aux.bias, [s.aux.classes])),
        });
      }
    } catch (e) {
      for (const p of made) p.dispose();
      for (const h of this.heads.values()) for (const t of Object.values(h)) t.dispose();
      throw e;
    }
  }

  private allConvs(): BankConv[] {
    return [this.stem, ...this.blocks.flatMap((b) => (b.ds ? [b.c1, b.c2, b.ds] : [b.c1, b.c2]))];
  }

  /** Native bytes held by the plans and heads. */
  get bytes(): number {
    let b = 0;
    for (const c of this.allConvs()) b += c.plan.bytes;
    for (const h of this.heads.values()) b += (h.fcW.size + h.fcB.size + h.auxW.size + h.auxB.size) * 4;
    return b;
  }

  private bnFor(bnName: string, steps: number[], o: number): { scale: Tensor; shift: Tensor } {
    const K = steps.length;
    const sc = new Float32Array(K * o), sh = new Float32Array(K * o);
    steps.forEach((s, k) => {
      const f = this.folded.get(`${bnName}@${s}`)!;
      sc.set(f.scale, k * o);
      sh.set(f.shift, k * o);
    });
    return { scale: Tensor.fromArray(sc, [K, o]), shift: Tensor.fromArray(sh, [K, o]) };
  }

  private conv(x: Tensor, c: BankConv, steps: number[], stepIds: Int32Array, relu: boolean, shared: boolean, residual: Tensor | null): Tensor {
    const conv = c.layer.conv;
    const { scale, shift } = this.bnFor(c.layer.bnName, steps, conv.outChannels);
    try {
      return ops.maskedConv2d(x, conv.weight, c.mask, stepIds, {
        stride: conv.stride,
        padding: conv.padding,
        scale,
        shift,
        residual,
        relu,
        sharedInput: shared,
        plan: c.plan,
      });
    } finally {
      scale.dispose();
      shift.dispose();
    }
  }

  /**
   * Images per chunk for K models on inputs of h x w: the largest activation of the chain (its
   * planes stored with a 1-pixel ring) times K stays under chunkBytes; whole vectors of images,
   * so that chunking changes no output bit (every image is computed in its own lane).
   */
  chunkImages(K: number, h: number, w: number): number {
    const out = (x: number, c: Conv2d | { kernelSize: number; stride: number; padding: number }) => Math.floor((x + 2 * c.padding - c.kernelSize) / c.stride) + 1;
    const s = this.stem.layer.conv;
    let oh = out(h, s), ow = out(w, s);
    let floats = s.outChannels * (oh + 2) * (ow + 2);
    if (this.pool) {
      const p = { kernelSize: this.pool.kernel, stride: this.pool.stride, padding: this.pool.pad };
      oh = out(oh, p);
      ow = out(ow, p);
    }
    for (const b of this.blocks) {
      const c = b.c1.layer.conv;
      oh = out(oh, c);
      ow = out(ow, c);
      floats = Math.max(floats, c.outChannels * (oh + 2) * (ow + 2));
    }
    const perImage = K * floats * 4;
    const lanes = ops.maskedConvLanes();
    return Math.max(lanes, Math.floor(this.chunkBytes / perImage / lanes) * lanes);
  }

  forward(x: Tensor, requests: TeacherRequest[]): TeacherOutput[] {
    const where = 'MaskedTeacherBank.forward';
    if (this.disposed) throw new Error(`${where}: the bank was disposed`);
    checkInput(where, x, this.inChannels);
    checkRequests(where, requests, (s) => this.snaps.get(s)?.classesSeen);
    if (requests.length === 0) return [];
    const steps = [...new Set(requests.map((r) => r.step))].sort((a, b) => a - b);
    const N = x.shape[0];
    const chunk = this.chunkImages(steps.length, x.shape[2], x.shape[3]);
    if (N <= chunk) return this.forwardChunk(x, steps, requests);
    // chunks of images; each request's rows are concatenated on the host (logits are small)
    const parts: TeacherOutput[][] = [];
    try {
      for (let i = 0; i < N; i += chunk) {
        const n = Math.min(chunk, N - i);
        parts.push(tidy(() => this.forwardChunk(imageRows(x, i, i + n), steps, requests)));
      }
      return requests.map((r, q) => {
        const w = r.end - r.start;
        const main = new Float32Array(N * w), aux = new Float32Array(N * w);
        let at = 0;
        for (const p of parts) {
          main.set(p[q].main.toFloat32(), at * w);
          aux.set(p[q].aux.toFloat32(), at * w);
          at += p[q].main.shape[0];
        }
        return { main: Tensor.fromArray(main, [N, w], { device: x.device }), aux: Tensor.fromArray(aux, [N, w], { device: x.device }) };
      });
    } finally {
      for (const p of parts) for (const o of p) (o.main.dispose(), o.aux.dispose());
    }
  }

  private forwardChunk(x: Tensor, steps: number[], requests: TeacherRequest[]): TeacherOutput[] {
    const K = steps.length, N = x.shape[0];
    const stepIds = Int32Array.from(steps);
    if (x.device === 'cpu') return noGrad(() => tidy(() => this.heads_(this.featuresBlocked(x, steps, stepIds), steps, N, requests)));
    const flat = (t: Tensor) => ops.reshape(t, [K * N, ...t.shape.slice(2)]);
    const unflat = (t: Tensor) => ops.reshape(t, [K, N, ...t.shape.slice(1)]);
    return noGrad(() =>
      tidy(() => {
        // activations are [K, N, C, H, W]; each is released as soon as the chain has used it
        let h = this.conv(x, this.stem, steps, stepIds, true, true, null);
        if (this.pool) {
          const p = unflat(ops.maxPool2d(flat(h), this.pool.kernel, this.pool.stride, this.pool.pad));
          h.dispose();
          h = p;
        }
        let auxFeat: Tensor | null = null;
        for (let bi = 0; bi < this.blocks.length; bi++) {
          const { block, c1, c2, ds } = this.blocks[bi];
          const a = this.conv(h, c1, steps, stepIds, true, false, null);
          let sc: Tensor = h;
          if (block.shortcut.kind === 'A') sc = unflat(ops.shortcutA(flat(h), block.shortcut.stride, block.shortcut.padBefore, block.shortcut.padAfter));
          else if (ds) sc = this.conv(h, ds, steps, stepIds, false, false, null);
          const out = this.conv(a, c2, steps, stepIds, true, false, sc);
          a.dispose();
          if (sc !== h) sc.dispose();
          h.dispose();
          h = out;
          if (bi === this.auxBlock) auxFeat = ops.globalAvgPool(flat(h));
        }
        const feat = ops.globalAvgPool(flat(h));
        h.dispose();
        return this.heads_({ feat, auxFeat: auxFeat! }, steps, N, requests);
      }),
    );
  }

  /** Per-step heads on the pooled features [K*N, F] and [K*N, F_aux]; the requested columns. */
  private heads_(f: { feat: Tensor; auxFeat: Tensor }, steps: number[], N: number, requests: TeacherRequest[]): TeacherOutput[] {
    const perStep = new Map<number, { main: Tensor; aux: Tensor }>();
    steps.forEach((s, k) => {
      const hd = this.heads.get(s)!;
      perStep.set(s, {
        main: ops.linear(rowBlock(f.feat, k, N), hd.fcW, hd.fcB),
        aux: ops.linear(rowBlock(f.auxFeat, k, N), hd.auxW, hd.auxB),
      });
    });
    return requests.map((r) => {
      const p = perStep.get(r.step)!;
      return { main: ops.sliceColumns(p.main, r.start, r.end), aux: ops.sliceColumns(p.aux, r.start, r.end) };
    });
  }

  /**
   * The chain on the CPU in the blocked layout (converted in at the stem, out at the pooled
   * features): every activation stays [K][N/V][H+2][W+2][C][V] between the fused convs (max
   * pooling and the option-B downsample read it in place; the downsample's pad-0 1x1 conv reads
   * the pad-1 block input).
   */
  private featuresBlocked(x: Tensor, steps: number[], stepIds: Int32Array): { feat: Tensor; auxFeat: Tensor } {
    const live = new Set<ops.MaskedBlocked>();
    const track = (b: ops.MaskedBlocked) => (live.add(b), b);
    const drop = (b: ops.MaskedBlocked) => {
      live.delete(b);
      b.dispose();
    };
    try {
      let h = track(this.convBlocked(x, this.stem, steps, stepIds, null, true));
      if (this.pool) {
        const p = track(ops.maskedMaxPoolBlocked(h, this.pool.kernel, this.pool.stride, this.pool.pad, 1));
        drop(h);
        h = p;
      }
      let auxFeat: Tensor | null = null;
      for (let bi = 0; bi < this.blocks.length; bi++) {
        const { block, c1, c2, ds } = this.blocks[bi];
        const a = track(this.convBlocked(h, c1, steps, stepIds, null, true));
        let sc = h;
        if (block.shortcut.kind === 'A')
          sc = track(ops.maskedShortcutABlocked(h, block.shortcut.stride, block.shortcut.padBefore, block.shortcut.padAfter, 1));
        else if (ds) sc = track(this.convBlocked(h, ds, steps, stepIds, null, false));
        const out = track(this.convBlocked(a, c2, steps, stepIds, sc, true));
        drop(a);
        if (sc !== h) drop(sc);
        drop(h);
        h = out;
        if (bi === this.auxBlock) auxFeat = ops.maskedAvgPoolBlocked(h);
      }
      const feat = ops.maskedAvgPoolBlocked(h);
      return { feat, auxFeat: auxFeat! };
    } finally {
      for (const b of live) b.dispose();
    }
  }

  private convBlocked(
    x: Tensor | ops.MaskedBlocked,
    c: BankConv,
    steps: number[],
    stepIds: Int32Array,
    residual: ops.MaskedBlocked | null,
    relu: boolean,
  ): ops.MaskedBlocked {
    const conv = c.layer.conv;
    const { scale, shift } = this.bnFor(c.layer.bnName, steps, conv.outChannels);
    try {
      return ops.maskedConv2dBlocked(x, stepIds, {
        stride: conv.stride,
        padding: conv.padding,
        scale,
        shift,
        residual,
        relu,
        outPad: 1,
        plan: c.plan,
      });
    } finally {
      scale.dispose();
      shift.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const c of this.allConvs()) c.plan.dispose();
    for (const h of this.heads.values()) for (const t of Object.values(h)) t.dispose();
    this.heads.clear();
  }
}

/**
 * Teachers kept as full model copies (the no-pruning upper bound; LwF-MC's previous model).
 * Takes ownership of the models (dispose() releases them); they run in eval mode.
 */
export class SnapshotTeachers implements TeacherSource {
  readonly steps: number[];
  private readonly models: Map<number, AuxResNet>;
  private disposed = false;

  constructor(models: Map<number, AuxResNet>) {
    if (!(models instanceof Map) || models.size === 0) throw new Error('SnapshotTeachers: need a non-empty Map from step to a ResNet32Aux or ResNet18Aux');
    for (const [s, m] of models) {
      if (!Number.isInteger(s) || s < 1) throw new Error(`SnapshotTeachers: step ${s} must be a positive integer`);
      if (!isAuxModel(m)) throw new Error(`SnapshotTeachers: the model of step ${s} is not a ResNet32Aux or ResNet18Aux`);
      m.eval();
    }
    this.models = new Map(models);
    this.steps = [...models.keys()].sort((a, b) => a - b);
  }

  forward(x: Tensor, requests: TeacherRequest[]): TeacherOutput[] {
    const where = 'SnapshotTeachers.forward';
    if (this.disposed) throw new Error(`${where}: disposed`);
    const first = this.models.get(this.steps[0])!;
    checkInput(where, x, first.conv1.inChannels);
    checkRequests(where, requests, (s) => this.models.get(s)?.fc.classes);
    if (requests.length === 0) return [];
    return noGrad(() =>
      tidy(() => {
        const outs = new Map<number, { logits: Tensor; auxLogits: Tensor }>();
        for (const s of new Set(requests.map((r) => r.step))) {
          const m = this.models.get(s)!;
          m.eval();
          const o = m.forwardAux(x);
          outs.set(s, { logits: o.logits, auxLogits: o.auxLogits });
        }
        return requests.map((r) => {
          const o = outs.get(r.step)!;
          return { main: ops.sliceColumns(o.logits, r.start, r.end), aux: ops.sliceColumns(o.auxLogits, r.start, r.end) };
        });
      }),
    );
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.models.values()) m.dispose();
  }
}

/**
 * Teacher k of a pruned model as an ordinary eval-mode model of its architecture: conv weights with m outside
 * [1, k] set to zero, every BatchNorm and both heads from the snapshot (heads sized C_k).
 * The caller owns (and disposes) the returned model.
 */
export function rebuildTeacherModel(model: AuxResNet, masks: Map<string, Tensor>, snapshot: StepSnapshot): AuxResNet {
  const where = 'rebuildTeacherModel';
  checkSnapshot(where, model, snapshot);
  const k = snapshot.step;
  const t = createAuxModel(model.arch, snapshot.classesSeen, { inChannels: model.conv1.inChannels });
  try {
    const src = model.stateDict();
    const dst = t.stateDict();
    const convNames = new Set(chainConvs(convLayers(model)).map((l) => `${l.name}.weight`));
    for (const name of convNames) {
      const w = src.get(name)!;
      const m = checkMask(where, name, w, masks.get(name)).toArray() as Uint8Array;
      const v = w.toFloat32();
      for (let i = 0; i < v.length; i++) if (m[i] < 1 || m[i] > k) v[i] = 0;
      dst.get(name)!.set(v);
    }
    for (const [name, mod] of t.namedModules()) {
      if (!(mod instanceof BatchNorm2d)) continue;
      const b = snapshot.bn[name];
      mod.weight.set(b.weight);
      mod.bias.set(b.bias);
      mod.runningMean.set(b.runningMean);
      mod.runningVar.set(b.runningVar);
      if (b.eps !== mod.eps) throw new Error(`${where}: BatchNorm '${name}' eps ${b.eps} differs from the model's ${mod.eps}`);
    }
    t.fc.weight.set(snapshot.fc.weight);
    t.fc.bias.set(snapshot.fc.bias);
    t.auxfc.weight.set(snapshot.aux.weight);
    t.auxfc.bias.set(snapshot.aux.bias);
    return t.eval();
  } catch (e) {
    t.dispose();
    throw e;
  }
}
