// SGD with momentum and weight decay (PyTorch semantics: g = grad + wd*w; buf = m*buf + g;
// w -= lr*buf), where a per-parameter u8 mask freezes individual weights completely: a frozen
// element gets no gradient step, no momentum and no decay, and keeps its exact bits.
// Owns the momentum buffers (one per parameter, allocated on first step).
import { Tensor, keep, ops } from '../engine';

export interface SgdConfig {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD {
  lr: number;
  momentum: number;
  weightDecay: number;
  readonly params: Tensor[];
  private readonly buffers = new Map<Tensor, Tensor>();
  private readonly frozen = new Map<Tensor, Tensor>();

  constructor(params: Tensor[], cfg: SgdConfig) {
    for (const p of params) {
      if (p.dtype !== 'f32') throw new Error(`SGD: parameter ${p.describe()} is not f32`);
      if (!p.requiresGrad) throw new Error(`SGD: parameter ${p.describe()} does not require grad`);
    }
    this.params = [...params];
    this.lr = cfg.lr;
    this.momentum = cfg.momentum ?? 0;
    this.weightDecay = cfg.weightDecay ?? 0;
    this.checkHyper();
  }

  private checkHyper(): void {
    if (!(this.lr >= 0) || !Number.isFinite(this.lr)) throw new Error(`SGD: lr must be a finite number >= 0, got ${this.lr}`);
    if (!(this.momentum >= 0 && this.momentum < 1)) throw new Error(`SGD: momentum must be in [0,1), got ${this.momentum}`);
    if (!(this.weightDecay >= 0) || !Number.isFinite(this.weightDecay)) throw new Error(`SGD: weightDecay must be >= 0, got ${this.weightDecay}`);
  }

  /**
   * Sets (or clears, with null) the freeze mask of a parameter: a u8 tensor of the same size,
   * nonzero = frozen. The mask is referenced, not copied: later edits to it take effect.
   */
  setFrozenMask(param: Tensor, mask: Tensor | null): void {
    if (!this.params.includes(param)) throw new Error(`SGD.setFrozenMask: ${param.describe()} is not optimised by this SGD`);
    if (mask === null) {
      this.frozen.delete(param);
      return;
    }
    if (mask.dtype !== 'u8') throw new Error(`SGD.setFrozenMask: mask must be u8, got ${mask.dtype}`);
    if (mask.size !== param.size) throw new Error(`SGD.setFrozenMask: mask ${mask.describe()} does not match ${param.describe()}`);
    if (mask.device !== param.device) throw new Error(`SGD.setFrozenMask: device mismatch ${mask.device} vs ${param.device}`);
    this.frozen.set(param, mask);
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.checkHyper();
    for (const p of this.params) {
      if (!p.grad) continue;
      let buf = this.buffers.get(p) ?? null;
      if (!buf && this.momentum > 0) {
        buf = keep(Tensor.zeros(p.shape, { device: p.device }));
        this.buffers.set(p, buf);
      }
      const mask = this.frozen.get(p);
      ops.sgdUpdate(p, p.grad, buf, mask ?? null, { lr: this.lr, momentum: this.momentum, weightDecay: this.weightDecay });
    }
  }

  /** Releases the gradients of all parameters. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Momentum buffers, by parameter index, for checkpoints. */
  momentumBuffers(): Map<number, Tensor> {
    const out = new Map<number, Tensor>();
    this.params.forEach((p, i) => {
      const b = this.buffers.get(p);
      if (b) out.set(i, b);
    });
    return out;
  }

  /** Restores a momentum buffer (copied) for parameter index i. */
  setMomentumBuffer(i: number, data: Tensor): void {
    const p = this.params[i];
    if (!p) throw new Error(`SGD.setMomentumBuffer: no parameter ${i}`);
    if (data.size !== p.size) throw new Error(`SGD.setMomentumBuffer: ${data.describe()} does not match ${p.describe()}`);
    let b = this.buffers.get(p);
    if (!b) {
      b = keep(Tensor.zeros(p.shape, { device: p.device }));
      this.buffers.set(p, b);
    }
    b.copyFrom(data);
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
