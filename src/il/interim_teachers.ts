// INTERIM (replaced by src/prune/teacherBank.ts when it lands): teachers as ordinary
// eval-mode models, one forward per teacher.
import { Tensor, noGrad, tidy, keep, ops } from '../engine';
import { ResNet32Aux } from '../nn';
import type { TeacherSource, TeacherRequest, TeacherOutput, StepSnapshot } from '../prune/types';
import { StepMasks } from '../prune/masks';
import { applySnapshot } from '../prune/snapshot';

export function cloneModel(model: ResNet32Aux): ResNet32Aux {
  const m = new ResNet32Aux(model.fc.classes, { inChannels: model.conv1.weight.shape[1] });
  m.loadStateDict(model.stateDict());
  for (const [n, c] of model.namedCounters()) {
    const dst = m.namedCounters().find(([k]) => k === n);
    if (dst) dst[1].set(c.get());
  }
  return m.eval();
}

export class SnapshotTeachers implements TeacherSource {
  constructor(private readonly models: Map<number, ResNet32Aux>) {}
  get steps(): number[] {
    return [...this.models.keys()];
  }
  forward(x: Tensor, requests: TeacherRequest[]): TeacherOutput[] {
    return noGrad(() => {
      const cache = new Map<number, { logits: Tensor; auxLogits: Tensor }>();
      const out: TeacherOutput[] = [];
      for (const r of requests) {
        let o = cache.get(r.step);
        if (!o) {
          const m = this.models.get(r.step);
          if (!m) throw new Error(`SnapshotTeachers: no model of step ${r.step}`);
          m.eval();
          o = tidy(() => {
            const f = m.forwardAux(x);
            return { logits: keep(f.logits), auxLogits: keep(f.auxLogits) };
          });
          cache.set(r.step, o);
        }
        out.push({ main: ops.sliceColumns(o.logits, r.start, r.end), aux: ops.sliceColumns(o.auxLogits, r.start, r.end) });
      }
      for (const o of cache.values()) {
        o.logits.dispose();
        o.auxLogits.dispose();
      }
      return out;
    });
  }
  dispose(): void {}
}

/** Teachers rebuilt from masks as full models (reference path). */
export function rebuiltTeachers(model: ResNet32Aux, masks: StepMasks, snapshots: StepSnapshot[], steps: number[]): SnapshotTeachers {
  const map = new Map<number, ResNet32Aux>();
  for (const k of steps) {
    const s = snapshots.find((q) => q.step === k);
    if (!s) throw new Error(`rebuiltTeachers: no snapshot of step ${k}`);
    const m = new ResNet32Aux(s.classesSeen, { inChannels: model.conv1.weight.shape[1] });
    const own = new Map(model.namedParameters());
    for (const [name, p] of m.namedParameters()) {
      if (p.rank !== 4) continue;
      const w = own.get(name)!.toFloat32();
      const h = masks.hostMask(name);
      for (let i = 0; i < w.length; i++) if (!(h[i] >= 1 && h[i] <= k)) w[i] = 0;
      p.set(w);
    }
    applySnapshot(m, s);
    map.set(k, m.eval());
  }
  return new SnapshotTeachers(map);
}
