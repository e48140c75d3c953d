// What each method keeps beyond the current model (the paper's Table 2), counted by the same
// functions during a run (evaluate.ts: memoryBreakdown, from what is stored) and before one
// (memoryPlan: `m2kd memory`, from a model grown step by step through the protocol, without
// training: byte counts depend on shapes only). Masks are bit-packed (ceil(log2(T+1)) bits per
// conv weight, StepMasks.packedBytes), per-step snapshots hold every BatchNorm and both heads'
// rows at that step (prune/snapshot.ts), full snapshots every tensor of the model's state dict,
// exemplars their u8 pixels and int32 labels (exemplarMemory.ts).
import { ops } from '../engine';
import { createAuxModel, type Arch, type AuxResNet } from '../nn/auxnet';
import { StepMasks } from '../prune/masks';
import { snapshotBytes } from '../prune/snapshot';
import { takeStepSnapshot } from '../prune/teacherBank';
import type { StepSnapshot } from '../prune/types';
import { exemplarBytesU8 } from './exemplarMemory';
import { MethodSpec, teachersKeptAfter } from './methods';
import type { MemoryBreakdown } from './results';

/** Bytes of a full model snapshot: every tensor of its state dict (parameters and buffers) as float32. */
export function fullModelBytes(model: AuxResNet): number {
  let b = 0;
  for (const t of model.stateDict().values()) b += t.size * 4;
  return b;
}

/** The breakdown from what a method keeps. */
export function keptBytes(k: { maskBytes: number; snapshots: StepSnapshot[]; fullModelBytes: number[]; exemplarBytes: number }): MemoryBreakdown {
  const mem: MemoryBreakdown = { masks: k.maskBytes, bn: 0, heads: 0, snapshots: 0, exemplars: k.exemplarBytes, total: 0 };
  for (const s of k.snapshots) {
    const b = snapshotBytes(s);
    mem.bn += b.bn;
    mem.heads += b.heads;
  }
  for (const b of k.fullModelBytes) mem.snapshots += b;
  mem.total = mem.masks + mem.bn + mem.heads + mem.snapshots + mem.exemplars;
  return mem;
}

export interface MemoryPlanOptions {
  arch: Arch;
  /** classes of the data set */
  classes: number;
  classesPerStep: number;
  methods: MethodSpec[];
  /** iCaRL: exemplars in total (default 2000) */
  exemplars?: number;
  /** bytes of one stored exemplar image (default: channels × side² u8 pixels) */
  imageBytes: number;
  inChannels?: number;
}

export interface MemoryPlanRow {
  method: MethodSpec;
  /** what the method keeps after each step 1..T */
  perStep: MemoryBreakdown[];
}

/**
 * What each method keeps after every step of the protocol, as a run of it would count it:
 * the model grows its heads step by step, pruning methods keep the bit-packed masks and the
 * snapshots of the steps teachersKeptAfter names, other distillation methods full copies of
 * those steps' models, iCaRL methods floor(M / C_t) exemplars per seen class.
 */
export function memoryPlan(o: MemoryPlanOptions): MemoryPlanRow[] {
  if (!Number.isInteger(o.classes) || o.classes < 1) throw new Error(`memory: classes must be a positive integer, got ${o.classes}`);
  if (!Number.isInteger(o.classesPerStep) || o.classesPerStep < 1 || o.classes % o.classesPerStep !== 0)
    throw new Error(`memory: ${o.classes} classes cannot be split into steps of ${o.classesPerStep}`);
  const T = o.classes / o.classesPerStep;
  if (T > ops.MASKED_CONV_MAX_STEP) throw new Error(`memory: pruning supports at most ${ops.MASKED_CONV_MAX_STEP} steps, this protocol has ${T}`);
  const M = o.exemplars ?? 2000;
  if (!Number.isInteger(M) || M < 0) throw new Error(`memory: exemplars must be an integer >= 0, got ${M}`);
  if (!Number.isInteger(o.imageBytes) || o.imageBytes < 1) throw new Error(`memory: image bytes must be a positive integer, got ${o.imageBytes}`);
  const model = createAuxModel(o.arch, o.classesPerStep, { inChannels: o.inChannels ?? 3 });
  const masks = new StepMasks(model);
  try {
    // per step: the model's snapshot and full size at that step (shapes only)
    const snaps: StepSnapshot[] = [];
    const full: number[] = [];
    for (let t = 1; t <= T; t++) {
      if (t > 1) model.growClasses(o.classesPerStep);
      snaps.push(takeStepSnapshot(model, t));
      full.push(fullModelBytes(model));
    }
    return o.methods.map((m) => ({
      method: m,
      perStep: Array.from({ length: T }, (_, i) => {
        const t = i + 1, seen = t * o.classesPerStep;
        const kept = teachersKeptAfter(m, t);
        return keptBytes({
          maskBytes: m.prune ? masks.packedBytes(T) : 0,
          snapshots: m.prune ? snaps.filter((s) => kept.includes(s.step)) : [],
          fullModelBytes: !m.prune && m.distill !== 'none' ? kept.map((k) => full[k - 1]) : [],
          exemplarBytes: m.exemplars ? exemplarBytesU8(Math.floor(M / seen) * seen, o.imageBytes) : 0,
        });
      }),
    }));
  } finally {
    masks.dispose();
    model.dispose();
  }
}
