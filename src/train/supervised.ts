// Plain supervised training of a classifier (softmax cross-entropy, SGD with momentum,
// multi-step LR, seeded shuffling and flips) and its evaluation. Async: yields to the event
// loop between batches and reports progress through a callback.
import { Tensor, Rng, tidy, noGrad, ops } from '../engine';
import { ResNet } from '../nn';
import { SGD, MultiStepLR } from '../optim';
import { ImageSet, ImageDataset, batches } from '../data';

export interface SupervisedConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** epochs at which the lr is multiplied by gamma */
  milestones: number[];
  gamma: number;
  /** random horizontal flips (off for digits) */
  flip: boolean;
  seed: number;
}

export const MNIST_DEFAULTS: SupervisedConfig = {
  epochs: 4,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  milestones: [3],
  gamma: 0.1,
  flip: false,
  seed: 1,
};

export type TrainEvent =
  | { kind: 'batch'; epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number; elapsed: number }
  | { kind: 'epoch'; epoch: number; loss: number; trainAccuracy: number; seconds: number; imagesPerSecond: number };

export interface EpochSummary {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
}

function toBatchTensor(set: ImageSet, images: Float32Array, n: number): Tensor {
  return Tensor.fromArray(images, [n, set.channels, set.height, set.width]);
}

function argmaxRows(logits: Float32Array, n: number, m: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < m; j++) if (logits[i * m + j] > logits[i * m + best]) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * One SGD step of softmax cross-entropy on a batch (x and labels stay the caller's): the loss
 * and the logits before the update, copied to the host. Intermediates are freed on return.
 */
export function softmaxTrainStep(model: ResNet, opt: SGD, x: Tensor, labels: Tensor): { loss: number; logits: Float32Array } {
  return tidy(() => {
    const logits = model.forward(x);
    const l = ops.softmaxCrossEntropy(logits, labels);
    opt.zeroGrad();
    l.backward();
    opt.step();
    return { loss: l.item(), logits: logits.toFloat32() };
  });
}

/** Top-1 accuracy (0..1) of the model on a set, in eval mode. */
export async function evaluate(model: ResNet, set: ImageSet, batchSize = 256): Promise<number> {
  const wasTraining = model.training;
  model.eval();
  let correct = 0;
  try {
    for (const b of batches(set, batchSize, null)) {
      const pred = noGrad(() =>
        tidy(() => {
          const logits = model.forward(toBatchTensor(set, b.images, b.n));
          return argmaxRows(logits.toFloat32(), b.n, logits.shape[1]);
        }),
      );
      for (let i = 0; i < b.n; i++) if (pred[i] === b.labels[i]) correct++;
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    model.train(wasTraining);
  }
  return correct / set.n;
}

export async function trainSupervised(
  model: ResNet,
  data: ImageDataset,
  cfg: SupervisedConfig,
  onEvent: (e: TrainEvent) => void = () => undefined,
): Promise<EpochSummary[]> {
  const rng = new Rng(cfg.seed, 7);
  const opt = new SGD(model.parameters(), { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay });
  const sched = new MultiStepLR(opt, cfg.milestones, cfg.gamma);
  const set = data.train;
  const nb = Math.floor(set.n / cfg.batchSize) + (set.n % cfg.batchSize >= 2 ? 1 : 0);
  const history: EpochSummary[] = [];
  model.train();
  try {
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      const t0 = performance.now();
      let lossSum = 0, seen = 0, correct = 0, bi = 0;
      for (const b of batches(set, cfg.batchSize, rng.fork(1000 + epoch))) {
        const flips = cfg.flip ? rng.bernoulli(b.n) : null;
        const { loss, logits } = tidy(() => {
          const x0 = toBatchTensor(set, b.images, b.n);
          const x = flips ? ops.hflip(x0, flips) : x0;
          return softmaxTrainStep(model, opt, x, Tensor.fromArray(b.labels, [b.n]));
        });
        const pred = argmaxRows(logits, b.n, logits.length / b.n);
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss ${loss} at epoch ${epoch + 1}, batch ${bi + 1}`);
        for (let i = 0; i < b.n; i++) if (pred[i] === b.labels[i]) correct++;
        lossSum += loss * b.n;
        seen += b.n;
        bi++;
        const elapsed = (performance.now() - t0) / 1000;
        onEvent({ kind: 'batch', epoch, batch: bi, batches: nb, loss, imagesPerSecond: seen / elapsed, elapsed });
        await new Promise((r) => setImmediate(r));
      }
      const seconds = (performance.now() - t0) / 1000;
      const summary = { epoch, loss: lossSum / seen, trainAccuracy: correct / seen, seconds, imagesPerSecond: seen / seconds };
      history.push(summary);
      onEvent({ kind: 'epoch', ...summary });
      sched.step();
    }
  } finally {
    opt.zeroGrad();
    opt.dispose();
  }
  return history;
}
