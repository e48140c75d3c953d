// Numeric faults: a NaN or infinite loss (most often a learning rate far too high) stops the run
// before the bad update reaches the weights, with an error that names where it happened (method,
// order, step, phase, epoch, batch) and suggests a lower --lr. Checkpoints refuse to persist
// non-finite weights, so the last checkpoint on disk is always a good one.
import type { Module } from '../nn';

export interface LossSite {
  method: string;
  order: number;
  step: number;
  phase: string;
  epoch: number;
  batch: number;
  lr: number;
}

export class NumericFaultError extends Error {
  constructor(
    message: string,
    readonly site: Partial<LossSite>,
    readonly value: number,
  ) {
    super(message);
    this.name = 'NumericFaultError';
  }

  /** A tenth of the learning rate in use when it is known. */
  get suggestedLr(): number | undefined {
    return this.site.lr !== undefined ? Number((this.site.lr / 10).toPrecision(2)) : undefined;
  }
}

function fmt(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** Throws NumericFaultError when a batch loss is NaN or infinite. */
export function checkLoss(value: number, at: LossSite): void {
  if (Number.isFinite(value)) return;
  const lower = Number((at.lr / 10).toPrecision(2));
  throw new NumericFaultError(
    `${at.method} · order ${at.order + 1} · step ${at.step} · ${at.phase === 'finetune' ? 'fine-tune' : 'train'} epoch ${at.epoch} · batch ${at.batch}: ` +
      `the loss is ${fmt(value)} (lr ${at.lr}); the run stopped before this update and its last good checkpoint is kept. ` +
      `The learning rate is probably too high: try a lower --lr (e.g. --lr ${lower}) and start again (or --resume from the checkpoint)`,
    at,
    value,
  );
}

/**
 * Throws NumericFaultError when a model holds a NaN or infinite weight or buffer; `where` names the
 * run position (method, order, step, epoch) and `lr` the learning rate in use, when known.
 */
export function checkFiniteModel(model: Module, where: string, site: Partial<LossSite> = {}): void {
  for (const [name, t] of model.stateDict()) {
    if (t.dtype !== 'f32') continue;
    const a = t.toFloat32();
    for (let i = 0; i < a.length; i++)
      if (!Number.isFinite(a[i])) {
        const lr = site.lr !== undefined ? ` (lr ${site.lr})` : '';
        throw new NumericFaultError(
          `${where}: the weights diverged${lr}: '${name}' holds ${fmt(a[i])}; the run stopped without writing this checkpoint, and its last good checkpoint is kept. ` +
            `The learning rate is probably too high: try a lower --lr${site.lr !== undefined ? ` (e.g. --lr ${Number((site.lr / 10).toPrecision(2))})` : ''}`,
          site,
          a[i],
        );
      }
  }
}

/**
 * Runs a batch's loss computation and checks its value: a non-finite loss (reported by the loss op
 * itself, or returned) becomes a NumericFaultError naming the site. Other errors pass unchanged.
 */
export function guardLoss<T extends { item(): number }>(at: LossSite, fn: () => T): T {
  return guardLossValue(at, fn).loss;
}

/** guardLoss that also returns the loss value it read (one read of the loss, e.g. from a device). */
export function guardLossValue<T extends { item(): number }>(at: LossSite, fn: () => T): { loss: T; value: number } {
  let loss: T;
  try {
    loss = fn();
  } catch (e) {
    const m = /loss is (NaN|-?Infinity)/.exec((e as Error).message ?? '');
    if (m) checkLoss(Number(m[1]), at);
    throw e;
  }
  const value = loss.item();
  checkLoss(value, at);
  return { loss, value };
}
