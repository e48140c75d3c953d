// What a run reports after each step: accuracy on the test images of the seen classes (the main
// head's arg-max, or iCaRL's nearest-mean-of-exemplars when the method keeps exemplars), per
// group, forgetting and the confusion matrix; and the bytes the method keeps beyond the current
// model (the paper's Table 2), counted from what is stored.
import { Tensor, tidy, noGrad } from '../engine';
import { imageSize, rangeImages } from '../data';
import { snapshotBytes } from '../prune/snapshot';
import { keptBytes, fullModelBytes } from './memory';
import type { StepResult, MemoryBreakdown } from './results';
import { Evaluator, forgettingSummary } from './metrics';
import { classMeans, extractFeatures, nmeScores } from './exemplars';
import { yieldToLoop } from './run';
import type { OrderRun } from './trainer';

/** Evaluates on the test images of the seen classes: CNN (main head arg-max) or iCaRL's NME. */
export async function evaluateStep(run: OrderRun, t: number): Promise<StepResult> {
  const test = run.testSet(t);
  const c = run.seenAfter(t);
  const groupOf = new Int32Array(c);
  for (let j = 0; j < c; j++) groupOf[j] = Math.floor(j / run.o.cfg.classesPerStep);
  const ev = new Evaluator({ classes: c, groupOf, groups: t });
  const bs = run.o.cfg.evalBatchSize;
  const seenClasses = run.o.order.order.slice(0, c);
  const means = run.exemplars ? classMeans(run.model, run.exemplars, bs, seenClasses) : null;
  run.model.eval();
  for (let b = 0; b < test.n; b += bs) {
    const n = Math.min(bs, test.n - b);
    const images = rangeImages(test, b, n);
    let scores: Float32Array;
    if (means) {
      const ef = extractFeatures(run.model, { images, n, channels: test.channels, height: test.height, width: test.width }, bs, { flip: false });
      scores = nmeScores(ef.features, means, run.model.featureSize);
    } else scores = noGrad(() => tidy(() => run.model.forward(Tensor.fromArray(images, [n, test.channels, test.height, test.width], { device: run.device })).toFloat32()));
    ev.add(scores, test.labels.subarray(b, b + n));
    await yieldToLoop();
  }
  run.model.train();
  const acc = ev.result();
  run.groupHistory.push(acc.per_group);
  const fg = forgettingSummary(run.groupHistory);
  return {
    step: t,
    classes: run.groups[t - 1],
    classes_seen: c,
    top1: acc.top1,
    top5: acc.top5,
    per_group: acc.per_group,
    forgetting: fg.forgetting,
    mean_forgetting: fg.mean_forgetting,
    confusion: acc.confusion,
    memory: memoryBreakdown(run),
    mask_occupancy: run.masks ? run.masks.occupancy(t) : undefined,
    seconds: { train: 0, finetune: 0, teachers: 0, eval: 0, total: 0 },
    final_loss: run.lastLoss,
  };
}

/** Bytes kept beyond the current model, from what is stored now (the byte counts of memory.ts). */
export function memoryBreakdown(run: OrderRun): MemoryBreakdown {
  return keptBytes({
    maskBytes: run.masks ? run.masks.packedBytes(run.steps) : 0,
    snapshots: run.snapshots,
    fullModelBytes: [...run.fullModels.values()].map(fullModelBytes),
    exemplarBytes: run.exemplars ? run.exemplars.storedBytesU8() : 0,
  });
}
