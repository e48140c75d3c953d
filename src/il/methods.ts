// The incremental-learning methods as data: which distillation (none, from the last model, or
// multi-model), whether the auxiliary head is distilled (AD), whether past models are rebuilt
// from step masks (pruning) or kept as full snapshots, the skip-s ablation, and iCaRL's
// exemplars with the nearest-mean classifier. The trainer reads these flags; no method has
// code of its own.
import type { TeacherRequest } from '../prune/types';

export interface MethodSpec {
  name: string;
  label: string;
  /** 'none': labels only (FT); 'last': old classes from the model of step t-1 (LwF-MC); 'multi': group k from teacher k (MMD) */
  distill: 'none' | 'last' | 'multi';
  /** auxiliary distillation on the stage-2 head (AD) */
  aux: boolean;
  /** past models rebuilt from step masks (pruning) instead of full snapshots */
  prune: boolean;
  /** skip-s ablation: groups 1..s take their targets from teacher s+1 */
  skip: number;
  /** iCaRL: exemplar memory and nearest-mean-of-exemplars classification */
  exemplars: boolean;
}

export const METHODS: Record<string, MethodSpec> = {
  ft: { name: 'ft', label: 'FT', distill: 'none', aux: false, prune: false, skip: 0, exemplars: false },
  'lwf-mc': { name: 'lwf-mc', label: 'LwF-MC', distill: 'last', aux: false, prune: false, skip: 0, exemplars: false },
  'lwf-mc-aux': { name: 'lwf-mc-aux', label: 'LwF-MC + AD', distill: 'last', aux: true, prune: false, skip: 0, exemplars: false },
  'lwf-mc-mmd': { name: 'lwf-mc-mmd', label: 'LwF-MC + MMD', distill: 'multi', aux: false, prune: false, skip: 0, exemplars: false },
  m2kd: { name: 'm2kd', label: 'M²KD', distill: 'multi', aux: true, prune: true, skip: 0, exemplars: false },
  'm2kd-noprune': { name: 'm2kd-noprune', label: 'M²KD (no pruning)', distill: 'multi', aux: true, prune: false, skip: 0, exemplars: false },
  'm2kd-skip1': { name: 'm2kd-skip1', label: 'M²KD skip1', distill: 'multi', aux: true, prune: true, skip: 1, exemplars: false },
  'm2kd-skip2': { name: 'm2kd-skip2', label: 'M²KD skip2', distill: 'multi', aux: true, prune: true, skip: 2, exemplars: false },
  icarl: { name: 'icarl', label: 'iCaRL', distill: 'last', aux: false, prune: false, skip: 0, exemplars: true },
  'icarl-aux': { name: 'icarl-aux', label: 'iCaRL + AD', distill: 'last', aux: true, prune: false, skip: 0, exemplars: true },
  'icarl-m2kd': { name: 'icarl-m2kd', label: 'iCaRL + M²KD', distill: 'multi', aux: true, prune: true, skip: 0, exemplars: true },
};

export const METHOD_NAMES = Object.keys(METHODS);

/** Parses a method name or a comma list; unknown names are an error that lists the valid ones. */
export function parseMethods(spec: string): MethodSpec[] {
  const names = spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new Error(`--method: no method given (one of ${METHOD_NAMES.join(', ')})`);
  const out: MethodSpec[] = [];
  for (const n of names) {
    const m = METHODS[n.toLowerCase()];
    if (!m) throw new Error(`unknown method '${n}': valid methods are ${METHOD_NAMES.join(', ')}`);
    if (out.includes(m)) throw new Error(`--method: '${n}' is given twice`);
    out.push(m);
  }
  return out;
}

/** Whether the method needs past models at step t (t is 1-based). */
export function needsTeachers(m: MethodSpec, t: number): boolean {
  return m.distill !== 'none' && t > 1;
}

/**
 * The teacher of group k (1-based) at step t: k itself for MMD, raised to s+1 by skip-s (but
 * never beyond t-1), or t-1 for LwF-MC.
 */
export function teacherOfGroup(m: MethodSpec, k: number, t: number): number {
  if (m.distill === 'last') return t - 1;
  return Math.min(Math.max(k, m.skip + 1), t - 1);
}

/**
 * Teacher requests for step t. groupCols[k-1] = [start, end) columns of group k. Requests are
 * merged per teacher when their columns are contiguous, so LwF-MC makes one request.
 */
export function teacherRequests(m: MethodSpec, t: number, groupCols: [number, number][]): TeacherRequest[] {
  const reqs: TeacherRequest[] = [];
  for (let k = 1; k < t; k++) {
    const step = teacherOfGroup(m, k, t);
    const [start, end] = groupCols[k - 1];
    const last = reqs[reqs.length - 1];
    if (last && last.step === step && last.end === start) last.end = end;
    else reqs.push({ step, start, end });
  }
  return reqs;
}

/** Teacher steps whose models must be kept after step t for the following steps. */
export function teachersKeptAfter(m: MethodSpec, t: number): number[] {
  if (m.distill === 'none') return [];
  if (m.distill === 'last') return [t];
  const out: number[] = [];
  for (let k = Math.min(m.skip + 1, t); k <= t; k++) out.push(k);
  return out;
}
