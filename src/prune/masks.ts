// Step masks and magnitude pruning (paper §3.3, Algorithm 1). Owns one u8 mask per conv
// weight of a model, shaped like the weight: 0 = free (trainable in the current step, or pruned
// to zero), k >= 1 = owned by step k and frozen since. The mask tensor doubles as the SGD
// freeze mask while a step trains (nonzero = frozen). After step t's epochs, prune() ranks each
// layer's free weights by magnitude, zeroes the lowest `ratio` fraction (they stay free) and
// gives the rest to step t. Masks are stored bit-packed with ceil(log2(T+1)) bits per weight.
import { Tensor, keep, ops } from '../engine';
import type { Module } from '../nn';

/** The conv weights of a model that carry step masks: every rank-4 parameter, by name. */
export function prunableWeights(model: Module): [string, Tensor][] {
  return model.namedParameters().filter(([, p]) => p.rank === 4);
}

/** Supported --prune-block sizes (1 = the paper's unstructured magnitude pruning). */
export const PRUNE_BLOCKS = [1, 4, 8, 16];

/**
 * Magnitude pruning of one layer after step `step`, in place on the host copies: wv (weights)
 * and h (step mask) of a weight shaped [O, ...]. Units: single weights (block 1), or blocks of
 * `block` output channels at one position of the remaining dims (the last block of a layer may
 * be narrower); a unit is free when all its weights are. The round(ratio × free units) units of
 * smallest L2 norm (ties by index) are zeroed and stay free, the others become owned by `step`.
 * Returns the free and pruned weight counts.
 */
export function pruneLayer(wv: Float32Array, h: Uint8Array, shape: readonly number[], step: number, ratio: number, block = 1): { free: number; pruned: number } {
  const O = shape[0], per = h.length / O;
  const units: number[] = []; // first weight index of each free unit
  const width: number[] = [];
  for (let o0 = 0; o0 < O; o0 += block)
    for (let t = 0; t < per; t++) {
      const nb = Math.min(block, O - o0);
      let allFree = true;
      for (let b = 0; b < nb; b++) if (h[(o0 + b) * per + t] !== 0) allFree = false;
      if (allFree) {
        units.push(o0 * per + t);
        width.push(nb);
      }
    }
  const nPrune = Math.round(ratio * units.length);
  const norm = new Float64Array(units.length);
  for (let j = 0; j < units.length; j++) {
    let s = 0;
    for (let b = 0; b < width[j]; b++) s += wv[units[j] + b * per] * wv[units[j] + b * per];
    norm[j] = s;
  }
  const order = Array.from(units.keys()).sort((a, b) => norm[a] - norm[b] || a - b);
  let free = 0, pruned = 0;
  for (let j = 0; j < order.length; j++) {
    const u = order[j];
    for (let b = 0; b < width[u]; b++) {
      const i = units[u] + b * per;
      free++;
      if (j < nPrune) {
        wv[i] = 0;
        pruned++;
      } else h[i] = step;
    }
  }
  return { free, pruned };
}

export interface PruneLayerStats {
  name: string;
  size: number;
  /** free weights before pruning */
  free: number;
  /** weights that became owned by the step */
  kept: number;
  /** free weights zeroed */
  pruned: number;
}

export class StepMasks {
  /** mask per conv weight name (u8, same shape as the weight) */
  readonly masks = new Map<string, Tensor>();
  private readonly host = new Map<string, Uint8Array>();

  constructor(model: Module) {
    for (const [name, w] of prunableWeights(model)) {
      const m = keep(Tensor.zeros(w.shape, { dtype: 'u8', device: w.device }));  // beside its weight (cpu or cuda)
      this.masks.set(name, m);
      this.host.set(name, new Uint8Array(w.size));
    }
    if (this.masks.size === 0) throw new Error('StepMasks: the model has no conv weights to mask');
  }

  /** host copy of a layer's mask (read-only view; do not edit) */
  hostMask(name: string): Uint8Array {
    const h = this.host.get(name);
    if (!h) throw new Error(`StepMasks: no mask for '${name}'`);
    return h;
  }

  names(): string[] {
    return [...this.masks.keys()];
  }

  /** The highest step id in any mask (0 when nothing is owned yet). */
  maxStep(): number {
    let m = 0;
    for (const h of this.host.values()) for (let i = 0; i < h.length; i++) if (h[i] > m) m = h[i];
    return m;
  }

  /**
   * Prunes the free weights of every layer after step `step`: per layer, the round(ratio × free)
   * smallest-magnitude free weights are set to zero and stay free; the others become owned by
   * `step`. Ties are broken by index, so the result is deterministic. Returns per-layer counts.
   * block > 1 (--prune-block): the unit is a block of `block` output channels at one (input
   * channel, tap) position, ranked by the L2 norm of its weights (see pruneLayer).
   */
  prune(model: Module, step: number, ratio: number, block = 1): PruneLayerStats[] {
    if (!Number.isInteger(step) || step < 1 || step > ops.MASKED_CONV_MAX_STEP) throw new Error(`StepMasks.prune: step must be an integer in 1..${ops.MASKED_CONV_MAX_STEP}, got ${step}`);
    if (!PRUNE_BLOCKS.includes(block)) throw new Error(`StepMasks.prune: block must be one of ${PRUNE_BLOCKS.join(', ')}, got ${block}`);
    if (!(ratio >= 0 && ratio < 1)) throw new Error(`StepMasks.prune: ratio must be in [0, 1), got ${ratio}`);
    const params = new Map(prunableWeights(model));
    const stats: PruneLayerStats[] = [];
    for (const [name, mask] of this.masks) {
      const w = params.get(name);
      if (!w) throw new Error(`StepMasks.prune: the model has no weight '${name}'`);
      const h = this.host.get(name)!;
      for (let i = 0; i < h.length; i++)
        if (h[i] >= step) throw new Error(`StepMasks.prune: '${name}' already has weights owned by step ${h[i]} >= ${step}`);
      const wv = w.toFloat32();
      const { free, pruned: nPrune } = pruneLayer(wv, h, w.shape, step, ratio, block);
      w.set(wv);
      mask.set(h);
      stats.push({ name, size: h.length, free, kept: free - nPrune, pruned: nPrune });
    }
    return stats;
  }

  /** Sets every free weight of the model to zero (pruned weights are already zero). */
  zeroFree(model: Module): void {
    const params = new Map(prunableWeights(model));
    for (const [name, h] of this.host) {
      const w = params.get(name)!;
      const wv = w.toFloat32();
      let changed = false;
      for (let i = 0; i < h.length; i++)
        if (h[i] === 0 && wv[i] !== 0) {
          wv[i] = 0;
          changed = true;
        }
      if (changed) w.set(wv);
    }
  }

  /** u8 freeze masks for fine-tuning step `step`: every weight not owned by `step` is frozen. Caller disposes. */
  finetuneFreezeMasks(step: number): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, h] of this.host) {
      const f = new Uint8Array(h.length);
      for (let i = 0; i < h.length; i++) f[i] = h[i] === step ? 0 : 1;
      const mask = this.masks.get(name)!;
      out.set(name, keep(Tensor.fromArray(f, mask.shape, { device: mask.device })));
    }
    return out;
  }

  /** Fraction of each layer owned by steps 1..upTo, and still free. */
  occupancy(upTo: number): Record<string, { owned: number[]; free: number }> {
    const out: Record<string, { owned: number[]; free: number }> = {};
    for (const [name, h] of this.host) {
      const counts = new Array(upTo + 1).fill(0);
      for (let i = 0; i < h.length; i++) counts[h[i] <= upTo ? h[i] : 0]++;
      out[name] = { owned: counts.slice(1).map((c) => c / h.length), free: counts[0] / h.length };
    }
    return out;
  }

  /** Bytes of the masks when bit-packed for `totalSteps` steps. */
  packedBytes(totalSteps: number): number {
    const bits = bitsForSteps(totalSteps);
    let b = 0;
    for (const h of this.host.values()) b += Math.ceil((h.length * bits) / 8);
    return b;
  }

  /** Bit-packed copies of every mask, for checkpoints. */
  pack(totalSteps: number): Map<string, { bits: number; count: number; shape: number[]; data: Uint8Array }> {
    const bits = bitsForSteps(Math.max(totalSteps, this.maxStep()));
    const out = new Map<string, { bits: number; count: number; shape: number[]; data: Uint8Array }>();
    for (const [name, h] of this.host) out.set(name, { bits, count: h.length, shape: [...this.masks.get(name)!.shape], data: packBits(h, bits) });
    return out;
  }

  /** Restores masks from pack() output (names and sizes must match). */
  load(packed: Map<string, { bits: number; count: number; data: Uint8Array }>): void {
    for (const [name, mask] of this.masks) {
      const p = packed.get(name);
      if (!p) throw new Error(`StepMasks.load: missing mask '${name}'`);
      if (p.count !== mask.size) throw new Error(`StepMasks.load: mask '${name}' holds ${p.count} values, the layer has ${mask.size}`);
      const h = unpackBits(p.data, p.bits, p.count);
      this.host.set(name, h);
      mask.set(h);
    }
  }

  dispose(): void {
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
    this.host.clear();
  }
}

/** Bits per weight needed to hold step ids 0..totalSteps. */
export function bitsForSteps(totalSteps: number): number {
  if (!Number.isInteger(totalSteps) || totalSteps < 1 || totalSteps > ops.MASKED_CONV_MAX_STEP) throw new Error(`bitsForSteps: steps must be in 1..${ops.MASKED_CONV_MAX_STEP}, got ${totalSteps}`);
  return Math.max(1, Math.ceil(Math.log2(totalSteps + 1)));
}

/** Packs values < 2^bits, little-endian bit order, into ceil(n*bits/8) bytes. */
export function packBits(values: Uint8Array, bits: number): Uint8Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new Error(`packBits: bits must be in 1..8, got ${bits}`);
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  const lim = 1 << bits;
  let pos = 0;
  for (let i = 0; i < values.length; i++, pos += bits) {
    const v = values[i];
    if (v >= lim) throw new Error(`packBits: value ${v} at ${i} does not fit in ${bits} bits`);
    const byte = pos >>> 3, sh = pos & 7;
    out[byte] |= (v << sh) & 0xff;
    if (sh + bits > 8) out[byte + 1] |= v >>> (8 - sh);
  }
  return out;
}

export function unpackBits(data: Uint8Array, bits: number, count: number): Uint8Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new Error(`unpackBits: bits must be in 1..8, got ${bits}`);
  if (data.length < Math.ceil((count * bits) / 8)) throw new Error(`unpackBits: ${data.length} bytes cannot hold ${count} values of ${bits} bits`);
  const out = new Uint8Array(count);
  const maskv = (1 << bits) - 1;
  let pos = 0;
  for (let i = 0; i < count; i++, pos += bits) {
    const byte = pos >>> 3, sh = pos & 7;
    let v = data[byte] >>> sh;
    if (sh + bits > 8) v |= data[byte + 1] << (8 - sh);
    out[i] = v & maskv;
  }
  return out;
}
