// BatchNorm recalibration at the end of a step: every BatchNorm's running statistics are
// re-estimated from the step's training images. No weight changes.
import { Tensor, tidy, noGrad } from '../engine';
import { BatchNorm2d, Module } from '../nn';
import { ImageSet, rangeImages } from '../data';
import { yieldToLoop } from './run';

/**
 * Resets the running statistics, then makes one pass in train mode without gradients with
 * momentum 1/(i+1), i.e. the cumulative average of the batch statistics
 * (torch.optim.swa_utils.update_bn). Momentum and batch counters are restored afterwards.
 */
export async function recalibrateBatchNorm(model: Module & { forward(x: Tensor): Tensor }, set: ImageSet, batchSize: number): Promise<void> {
  const bns = model.modulesOf(BatchNorm2d);
  const device = model.parameters()[0]?.device ?? 'cpu';  // the batches go where the model is
  const saved = bns.map((b) => ({ momentum: b.momentum, tracked: b.numBatchesTracked }));
  for (const b of bns) {
    b.runningMean.set(new Float32Array(b.channels));
    b.runningVar.set(new Float32Array(b.channels).fill(1));
  }
  model.train();
  const bs = batchSize;
  try {
    let i = 0;
    for (let b = 0; b < set.n; b += bs, i++) {
      const n = Math.min(bs, set.n - b);
      if (n < 2) break;
      for (const l of bns) l.momentum = 1 / (i + 1);
      noGrad(() => tidy(() => void model.forward(Tensor.fromArray(rangeImages(set, b, n), [n, set.channels, set.height, set.width], { device }))));
      await yieldToLoop();
    }
  } finally {
    bns.forEach((b, j) => {
      b.momentum = saved[j].momentum;
      b.numBatchesTracked = saved[j].tracked;
    });
  }
}
