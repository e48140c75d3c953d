// Teacher sources: the bank that rebuilds every past model of a pruned ResNet32Aux from one
// shared weight tensor per conv and its u8 step mask (a chain of fused masked convolutions, all
// requested teachers in one pass), full-snapshot teachers (no-pruning upper bound, LwF-MC's
// previous model), and rebuildTeacherModel, which materialises teacher k as an ordinary model
// (the reference the bank is tested against). Teacher k = conv weights with 1 <= m <= k, the
// BatchNorm of step k (folded: scale = gamma/sqrt(var+eps), shift = beta - mean*scale) and the
// classifier rows of step k. Nothing here records gradients; outputs belong to the caller.
import { Tensor, ops, noGrad, tidy, keep } from '../engine';
import { ResNet32Aux } from '../nn/auxnet';
import { BasicBlock } from '../nn/resnet';
import { BatchNorm2d, Conv2d } from '../nn/layers';
import { Module } from '../nn/module';
import type { StepSnapshot, BnSnapshot, HeadSnapshot, TeacherOutput, TeacherRequest, TeacherSource } from './types';

/** Every module of a tree with its dotted name ('' for the root). */
function namedModules(m: Module, prefix = ''): [string, Module][] {
  const out: [string, Module][] = [[prefix, m]];
  for (const [name, child] of m.namedChildren()) out.push(...namedModules(child, prefix ? `${prefix}.${name}` : name));
  return out;
}

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
export function takeStepSnapshot(model: ResNet32Aux, step: number): StepSnapshot {
  if (!Number.isInteger(step) || step < 1 || step > 255) throw new Error(`takeStepSnapshot: step must be an integer in [1, 255], got ${step}`);
  const bn: Record<string, BnSnapshot> = {};
  for (const [name, m] of namedModules(model)) if (m instanceof BatchNorm2d) bn[name] = bnSnapshot(m);
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
  /** conv module name, e.g. 'conv1', 'stage2.0.conv1' */
  name: string;
  conv: Conv2d;
  bnName: string;
}

function convLayers(model: ResNet32Aux): { stem: ConvLayer; blocks: { block: BasicBlock; prefix: string; c1: ConvLayer; c2: ConvLayer }[] } {
  const stem = { name: 'conv1', conv: model.conv1, bnName: 'bn1' };
  const blocks = [];
  for (let si = 0; si < model.stages.length; si++)
    for (let bi = 0; bi < model.stages[si].layers.length; bi++) {
      const block = model.stages[si].layers[bi];
      if (!(block instanceof BasicBlock)) throw new Error('MaskedTeacherBank: expected BasicBlocks in the stages');
      if (block.shortcut.kind === 'B') throw new Error('MaskedTeacherBank: option-B shortcuts are not supported (ResNet-32 uses option A)');
      const prefix = `stage${si + 1}.${bi}`;
      blocks.push({
        block,
        prefix,
        c1: { name: `${prefix}.conv1`, conv: block.conv1, bnName: `${prefix}.bn1` },
        c2: { name: `${prefix}.conv2`, conv: block.conv2, bnName: `${prefix}.bn2` },
      });
    }
  return { stem, blocks };
}

function checkMask(where: string, key: string, w: Tensor, mask: Tensor | undefined): Tensor {
  if (!mask) throw new Error(`${where}: no step mask for '${key}'`);
  if (!(mask instanceof Tensor) || mask.disposed) throw new Error(`${where}: mask '${key}' is not a live Tensor`);
  if (mask.dtype !== 'u8') throw new Error(`${where}: mask '${key}' must be u8, got ${mask.dtype}`);
  if (mask.rank !== w.rank || mask.shape.some((d, i) => d !== w.shape[i]))
    throw new Error(`${where}: mask '${key}' has shape [${mask.shape.join(',')}], the weight is [${w.shape.join(',')}]`);
  return mask;
}

function checkSnapshot(where: string, model: ResNet32Aux, s: StepSnapshot): void {
  if (!Number.isInteger(s.step) || s.step < 1 || s.step > 255) throw new Error(`${where}: snapshot step ${s.step} must be an integer in [1, 255]`);
  for (const [name, m] of namedModules(model)) {
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

/**
 * All past models of a pruned ResNet32Aux, rebuilt from the current conv weights, their step
 * masks and the per-step snapshots, in one pass per forward (fused masked convolutions over
 * every requested teacher). Plans (taps sorted by step) are built at construction: the weights
 * owned by steps 1..T-1 are frozen during step T, so they stay valid for the whole step; build a
 * new bank after the masks or the owned weights change. The model is not owned.
 */
export class MaskedTeacherBank implements TeacherSource {
  readonly steps: number[];
  private readonly inChannels: number;
  private readonly stem: { layer: ConvLayer; mask: Tensor; plan: ops.MaskedConvPlan };
  private readonly blocks: {
    block: BasicBlock;
    c1: { layer: ConvLayer; mask: Tensor; plan: ops.MaskedConvPlan };
    c2: { layer: ConvLayer; mask: Tensor; plan: ops.MaskedConvPlan };
  }[];
  private readonly snaps = new Map<number, StepSnapshot>();
  /** folded BN per (bn name, step) */
  private readonly folded = new Map<string, { scale: Float32Array; shift: Float32Array }>();
  private readonly heads = new Map<number, { fcW: Tensor; fcB: Tensor; auxW: Tensor; auxB: Tensor }>();
  private disposed = false;

  constructor(model: ResNet32Aux, masks: Map<string, Tensor>, snapshots: StepSnapshot[]) {
    const where = 'MaskedTeacherBank';
    if (!(model instanceof ResNet32Aux)) throw new Error(`${where}: model must be a ResNet32Aux`);
    if (!(masks instanceof Map)) throw new Error(`${where}: masks must be a Map from conv weight names to u8 tensors`);
    if (!Array.isArray(snapshots) || snapshots.length === 0) throw new Error(`${where}: at least one step snapshot is needed`);
    for (const s of snapshots) {
      checkSnapshot(where, model, s);
      if (this.snaps.has(s.step)) throw new Error(`${where}: two snapshots for step ${s.step}`);
      this.snaps.set(s.step, s);
    }
    this.steps = [...this.snaps.keys()].sort((a, b) => a - b);
    this.inChannels = model.conv1.inChannels;
    const { stem, blocks } = convLayers(model);
    const all = [stem, ...blocks.flatMap((b) => [b.c1, b.c2])];
    const known = new Set(all.map((l) => `${l.name}.weight`));
    for (const k of masks.keys()) if (!known.has(k)) throw new Error(`${where}: mask '${k}' names no conv weight of the model`);
    const made: ops.MaskedConvPlan[] = [];
    const build = (layer: ConvLayer) => {
      const key = `${layer.name}.weight`;
      const mask = checkMask(where, key, layer.conv.weight, masks.get(key));
      if (layer.conv.bias) throw new Error(`${where}: conv '${layer.name}' has a bias (not supported)`);
      const plan = new ops.MaskedConvPlan(layer.conv.weight, mask);
      made.push(plan);
      return { layer, mask, plan };
    };
    try {
      this.stem = build(stem);
      this.blocks = blocks.map((b) => ({ block: b.block, c1: build(b.c1), c2: build(b.c2) }));
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

  /** Native bytes held by the plans and heads. */
  get bytes(): number {
    let b = this.stem.plan.bytes;
    for (const blk of this.blocks) b += blk.c1.plan.bytes + blk.c2.plan.bytes;
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

  private conv(
    x: Tensor,
    c: { layer: ConvLayer; mask: Tensor; plan: ops.MaskedConvPlan },
    steps: number[],
    stepIds: Int32Array,
    relu: boolean,
    shared: boolean,
    residual: Tensor | null,
  ): Tensor {
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

  forward(x: Tensor, requests: TeacherRequest[]): TeacherOutput[] {
    const where = 'MaskedTeacherBank.forward';
    if (this.disposed) throw new Error(`${where}: the bank was disposed`);
    checkInput(where, x, this.inChannels);
    checkRequests(where, requests, (s) => this.snaps.get(s)?.classesSeen);
    if (requests.length === 0) return [];
    const steps = [...new Set(requests.map((r) => r.step))].sort((a, b) => a - b);
    const K = steps.length, N = x.shape[0];
    const stepIds = Int32Array.from(steps);
    if (x.device === 'cpu') return noGrad(() => tidy(() => this.heads_(this.featuresBlocked(x, steps, stepIds), steps, N, requests)));
    return noGrad(() =>
      tidy(() => {
        // activations are [K, N, C, H, W]; each is released as soon as the chain has used it
        let h = this.conv(x, this.stem, steps, stepIds, true, true, null);
        let auxFeat: Tensor | null = null;
        for (let bi = 0; bi < this.blocks.length; bi++) {
          const { block, c1, c2 } = this.blocks[bi];
          const a = this.conv(h, c1, steps, stepIds, true, false, null);
          let sc: Tensor = h;
          if (block.shortcut.kind === 'A') {
            const [, , C, H, W] = h.shape;
            const s = ops.shortcutA(ops.reshape(h, [K * N, C, H, W]), block.shortcut.stride, block.shortcut.padBefore, block.shortcut.padAfter);
            sc = ops.reshape(s, [K, N, ...s.shape.slice(1)]);
          }
          const out = this.conv(a, c2, steps, stepIds, true, false, sc);
          a.dispose();
          if (sc !== h) sc.dispose();
          h.dispose();
          h = out;
          const blocksPerStage = this.blocks.length / 3;
          if (bi === (ResNet32Aux.auxStage + 1) * blocksPerStage - 1) {
            const [, , C, H, W] = h.shape;
            auxFeat = ops.globalAvgPool(ops.reshape(h, [K * N, C, H, W]));
          }
        }
        const [, , C, H, W] = h.shape;
        const feat = ops.globalAvgPool(ops.reshape(h, [K * N, C, H, W]));
        h.dispose();
        return this.heads_({ feat, auxFeat: auxFeat! }, steps, N, requests);
      }),
    );
  }

  /** Per-step heads on the pooled features [K*N, 64] and [K*N, 32]; the requested columns. */
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
   * features): every activation stays [K][N/V][H+2][W+2][C][V] between the fused convs.
   */
  private featuresBlocked(x: Tensor, steps: number[], stepIds: Int32Array): { feat: Tensor; auxFeat: Tensor } {
    const live = new Set<ops.MaskedBlocked>();
    const track = (b: ops.MaskedBlocked) => (live.add(b), b);
    const drop = (b: ops.MaskedBlocked) => {
      live.delete(b);
      b.dispose();
    };
    try {
      let h = track(this.convBlocked(x, this.stem, steps, stepIds, null));
      let auxFeat: Tensor | null = null;
      const blocksPerStage = this.blocks.length / 3;
      for (let bi = 0; bi < this.blocks.length; bi++) {
        const { block, c1, c2 } = this.blocks[bi];
        const a = track(this.convBlocked(h, c1, steps, stepIds, null));
        let sc = h;
        if (block.shortcut.kind === 'A')
          sc = track(ops.maskedShortcutABlocked(h, block.shortcut.stride, block.shortcut.padBefore, block.shortcut.padAfter, 1));
        const out = track(this.convBlocked(a, c2, steps, stepIds, sc));
        drop(a);
        if (sc !== h) drop(sc);
        drop(h);
        h = out;
        if (bi === (ResNet32Aux.auxStage + 1) * blocksPerStage - 1) auxFeat = ops.maskedAvgPoolBlocked(h);
      }
      const feat = ops.maskedAvgPoolBlocked(h);
      return { feat, auxFeat: auxFeat! };
    } finally {
      for (const b of live) b.dispose();
    }
  }

  private convBlocked(
    x: Tensor | ops.MaskedBlocked,
    c: { layer: ConvLayer; mask: Tensor; plan: ops.MaskedConvPlan },
    steps: number[],
    stepIds: Int32Array,
    residual: ops.MaskedBlocked | null,
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
        relu: true,
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
    this.stem.plan.dispose();
    for (const b of this.blocks) {
      b.c1.plan.dispose();
      b.c2.plan.dispose();
    }
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
  private readonly models: Map<number, ResNet32Aux>;
  private disposed = false;

  constructor(models: Map<number, ResNet32Aux>) {
    if (!(models instanceof Map) || models.size === 0) throw new Error('SnapshotTeachers: need a non-empty Map from step to ResNet32Aux');
    for (const [s, m] of models) {
      if (!Number.isInteger(s) || s < 1) throw new Error(`SnapshotTeachers: step ${s} must be a positive integer`);
      if (!(m instanceof ResNet32Aux)) throw new Error(`SnapshotTeachers: the model of step ${s} is not a ResNet32Aux`);
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
 * Teacher k of a pruned model as an ordinary eval-mode ResNet32Aux: conv weights with m outside
 * [1, k] set to zero, every BatchNorm and both heads from the snapshot (heads sized C_k).
 * The caller owns (and disposes) the returned model.
 */
export function rebuildTeacherModel(model: ResNet32Aux, masks: Map<string, Tensor>, snapshot: StepSnapshot): ResNet32Aux {
  const where = 'rebuildTeacherModel';
  checkSnapshot(where, model, snapshot);
  const k = snapshot.step;
  const t = new ResNet32Aux(snapshot.classesSeen, { inChannels: model.conv1.inChannels });
  try {
    const src = model.stateDict();
    const dst = t.stateDict();
    const { stem, blocks } = convLayers(model);
    const convNames = new Set([stem, ...blocks.flatMap((b) => [b.c1, b.c2])].map((l) => `${l.name}.weight`));
    for (const name of convNames) {
      const w = src.get(name)!;
      const m = checkMask(where, name, w, masks.get(name)).toArray() as Uint8Array;
      const v = w.toFloat32();
      for (let i = 0; i < v.length; i++) if (m[i] < 1 || m[i] > k) v[i] = 0;
      dst.get(name)!.set(v);
    }
    for (const [name, mod] of namedModules(t)) {
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
