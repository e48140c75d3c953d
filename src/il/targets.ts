// The targets and the loss of one training batch (the paper's losses): sigmoid BCE with logits,
// summed over the seen units and divided by batch × the dataset's class count (iCaRL's fixed
// output layer scale; --loss-norm seen: by batch × the classes seen, C_t, for every term). Main head: teachers' outputs on the old columns (distillation), labels on
// the new ones; L = L_MMD(main) + λ (distillation of the auxiliary head on old groups +
// α · BCE(aux, labels)).
import { Tensor, ops } from '../engine';
import { needsTeachers } from './methods';
import type { TeacherTargets } from './teachers';
import type { OrderRun } from './trainer';

/** The loss of one batch (a 0-d tensor on the tape). cols: head columns; index: rows of the step's set. */
export function batchLoss(run: OrderRun, x: Tensor, cols: Int32Array, flips: Uint8Array, index: Int32Array, t: number): Tensor {
  const cfg = run.o.cfg, m = run.o.method;
  const n = x.shape[0];
  const c = run.seenAfter(t);
  const cold = run.seenAfter(t - 1);
  const denom = n * (cfg.lossNorm === 'seen' ? c : run.o.dataset.classes);
  const teach: TeacherTargets | null = needsTeachers(m, t) ? run.teachers.batchTargets(x, index, flips, t) : null;
  // main targets: teachers on old columns (distillation), labels elsewhere
  const tMain = new Float32Array(n * c);
  const y = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    y[i * c + cols[i]] = 1;
    if (teach) {
      tMain.set(teach.main.subarray(i * cold, (i + 1) * cold), i * c);
      if (cols[i] >= cold) tMain[i * c + cols[i]] = 1;
    } else tMain[i * c + cols[i]] = 1;
  }
  const out = run.model.forwardAux(x);
  let loss = ops.bceWithLogits(out.logits, Tensor.fromArray(tMain, [n, c]), { denominator: denom });
  if (m.aux) {
    let lad = ops.scale(ops.bceWithLogits(out.auxLogits, Tensor.fromArray(y, [n, c]), { denominator: denom }), cfg.alpha);
    if (teach && cold > 0) {
      const dist = ops.bceWithLogits(ops.sliceColumns(out.auxLogits, 0, cold), Tensor.fromArray(teach.aux, [n, cold]), { denominator: denom });
      lad = ops.add(dist, lad);
    }
    loss = ops.add(loss, ops.scale(lad, cfg.lambda));
  }
  return loss;
}
