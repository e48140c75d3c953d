// Memory accounting of per-step snapshots (taken by takeStepSnapshot in teacherBank.ts): what
// pruning cannot rebuild, every BatchNorm's parameters and running statistics and the rows of
// both heads at that step, as host Float32Arrays.
import type { StepSnapshot } from './types';

/** Bytes a snapshot holds, split as memory accounting reports them. */
export function snapshotBytes(s: StepSnapshot): { bn: number; heads: number } {
  let bn = 0;
  for (const b of Object.values(s.bn)) bn += 4 * (b.weight.length + b.bias.length + b.runningMean.length + b.runningVar.length);
  const heads = 4 * (s.fc.weight.length + s.fc.bias.length + s.aux.weight.length + s.aux.bias.length);
  return { bn, heads };
}

