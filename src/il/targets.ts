// The targets and the loss of one training batch (the paper's losses): sigmoid BCE with logits,
// summed over the seen units and divided by batch × the dataset's class count (iCaRL's fixed
// output layer scale; --loss-norm seen: by batch × the classes seen, C_t, for every term). Main head: teachers' outputs on the old columns (distillation), labels on
// the new ones; L = L_MMD(main) + λ (distillation of the auxiliary head on old groups +
// α · BCE(aux, labels)).
import { Tensor, ops } from '../engine';
import { needsTeachers } from './methods';
import type { TeacherTargets } from './teachers';
import type { OrderRun } from './trainer';

/**
 * The host targets of a batch: `main` [n, c] (teachers' outputs on the old columns, labels
 * elsewhere), `labels` [n, c] one-hot (auxiliary-head methods), `aux` [n, cold] (the auxiliary
 * head's distillation targets, when it has teachers). They travel to the batch's device with its
 * images (StagingBuffer: one copy).
 */
export interface HostTargets {
  main: Float32Array;
  labels: Float32Array | null;
  aux: Float32Array | null;
}

/** The targets of a batch on the host, from its head columns and the teachers' outputs (or null). */
export function hostTargets(run: OrderRun, cols: Int32Array, teach: TeacherTargets | null, t: number): HostTargets {
  const m = run.o.method;
  const n = cols.length;
  const c = run.seenAfter(t);
  const cold = run.seenAfter(t - 1);
  const tMain = new Float32Array(n * c);
  const y = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    y[i * c + cols[i]] = 1;
    if (teach) {
      tMain.set(teach.main.subarray(i * cold, (i + 1) * cold), i * c);
      if (cols[i] >= cold) tMain[i * c + cols[i]] = 1;
    } else tMain[i * c + cols[i]] = 1;
  }
  return { main: tMain, labels: m.aux ? y : null, aux: m.aux && teach && cold > 0 ? teach.aux : null };
}

/** The shapes of hostTargets' arrays, in the order stagedTargets expects them. */
export function targetParts(run: OrderRun, h: HostTargets, t: number): { data: Float32Array; shape: number[] }[] {
  const c = run.seenAfter(t), cold = run.seenAfter(t - 1);
  const n = h.main.length / c;
  const parts = [{ data: h.main, shape: [n, c] }];
  if (h.labels) parts.push({ data: h.labels, shape: [n, c] });
  if (h.aux) parts.push({ data: h.aux, shape: [n, cold] });
  return parts;
}

/** The targets as tensors on the batch's device (the tensors targetParts' parts became). */
export interface DeviceTargets {
  main: Tensor;
  labels: Tensor | null;
  aux: Tensor | null;
}

/** Pairs uploaded tensors with targetParts' order. */
export function stagedTargets(h: HostTargets, ts: Tensor[]): DeviceTargets {
  let i = 0;
  const main = ts[i++];
  const labels = h.labels ? ts[i++] : null;
  const aux = h.aux ? ts[i++] : null;
  return { main, labels, aux };
}

/** The loss of one batch (a 0-d tensor on the tape) from its targets on x's device. */
export function lossFromTargets(run: OrderRun, x: Tensor, tg: DeviceTargets, t: number): Tensor {
  const cfg = run.o.cfg, m = run.o.method;
  const n = x.shape[0];
  const cold = run.seenAfter(t - 1);
  const denom = n * (cfg.lossNorm === 'seen' ? run.seenAfter(t) : run.o.dataset.classes);
  const out = run.model.forwardAux(x);
  let loss = ops.bceWithLogits(out.logits, tg.main, { denominator: denom });
  if (m.aux) {
    if (!tg.labels) throw new Error(`${m.name}: the auxiliary head needs label targets`);
    let lad = ops.scale(ops.bceWithLogits(out.auxLogits, tg.labels, { denominator: denom }), cfg.alpha);
    if (tg.aux) {
      const dist = ops.bceWithLogits(ops.sliceColumns(out.auxLogits, 0, cold), tg.aux, { denominator: denom });
      lad = ops.add(dist, lad);
    }
    loss = ops.add(loss, ops.scale(lad, cfg.lambda));
  }
  return loss;
}

/** The loss of one batch (a 0-d tensor on the tape). cols: head columns; index: rows of the step's set. */
export function batchLoss(run: OrderRun, x: Tensor, cols: Int32Array, flips: Uint8Array, index: Int32Array, t: number): Tensor {
  const teach: TeacherTargets | null = needsTeachers(run.o.method, t) ? run.teachers.batchTargets(x, index, flips, t) : null;
  const h = hostTargets(run, cols, teach, t);
  const ts = targetParts(run, h, t).map((p) => Tensor.fromArray(p.data, p.shape, { device: x.device }));
  return lossFromTargets(run, x, stagedTargets(h, ts), t);
}
