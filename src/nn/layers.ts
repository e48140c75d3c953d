// The basic layers: Conv2d, BatchNorm2d (optionally fused with the following ReLU), Linear,
// ReLU, pooling and Flatten. Initialisation follows PyTorch's ResNet conventions: Kaiming
// normal (fan_in, gain sqrt 2) for conv weights, BN weight 1 / bias 0, and PyTorch's default
// uniform(±1/sqrt(fan_in)) for Linear unless a Kaiming init is asked for.
import { Tensor, Rng, ops } from '../engine';
import { Layer } from './module';

export function kaimingNormal(shape: number[], fanIn: number, rng: Rng): Tensor {
  return Tensor.fromArray(rng.normal(shape.reduce((a, b) => a * b, 1), 0, Math.sqrt(2 / fanIn)), shape);
}

export function uniformInit(shape: number[], bound: number, rng: Rng): Tensor {
  return Tensor.fromArray(rng.uniform(shape.reduce((a, b) => a * b, 1), -bound, bound), shape);
}

export interface Conv2dConfig {
  stride?: number;
  padding?: number;
  bias?: boolean;
}

export class Conv2d extends Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, rng: Rng, cfg: Conv2dConfig = {}) {
    super();
    this.stride = cfg.stride ?? 1;
    this.padding = cfg.padding ?? 0;
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.registerParameter('weight', kaimingNormal([outChannels, inChannels, kernelSize, kernelSize], fanIn, rng));
    this.bias = cfg.bias ? this.registerParameter('bias', uniformInit([outChannels], 1 / Math.sqrt(fanIn), rng)) : null;
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export interface BatchNormConfig {
  eps?: number;
  momentum?: number;
}

export class BatchNorm2d extends Layer {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  /** batches seen in training mode (PyTorch's num_batches_tracked) */
  numBatchesTracked = 0;
  readonly eps: number;
  /** running-statistics momentum (PyTorch's convention); recalibration sets it to 1/(i+1) for a cumulative average */
  momentum: number;
  constructor(readonly channels: number, cfg: BatchNormConfig = {}) {
    super();
    this.eps = cfg.eps ?? 1e-5;
    this.momentum = cfg.momentum ?? 0.1;
    this.weight = this.registerParameter('weight', Tensor.full([channels], 1));
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]));
    this.runningMean = this.registerBuffer('running_mean', Tensor.zeros([channels]));
    this.runningVar = this.registerBuffer('running_var', Tensor.full([channels], 1));
  }
  protected override ownCounters(): [string, { get(): number; set(v: number): void }][] {
    return [['num_batches_tracked', { get: () => this.numBatchesTracked, set: (v) => (this.numBatchesTracked = v) }]];
  }
  forward(x: Tensor): Tensor {
    return this.forwardFused(x, false);
  }
  /** bn(x) followed by ReLU when relu is true, in one pass. */
  forwardFused(x: Tensor, relu: boolean): Tensor {
    if (this.training) this.numBatchesTracked++;
    return ops.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
      relu,
    });
  }
}

export interface LinearConfig {
  bias?: boolean;
  /** Kaiming normal weights instead of PyTorch's default uniform */
  kaiming?: boolean;
}

export class Linear extends Layer {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Rng, cfg: LinearConfig = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter(
      'weight',
      cfg.kaiming ? kaimingNormal([outFeatures, inFeatures], inFeatures, rng) : uniformInit([outFeatures, inFeatures], bound, rng),
    );
    this.bias = cfg.bias === false ? null : this.registerParameter('bias', uniformInit([outFeatures], bound, rng));
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class ReLU extends Layer {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

export class GlobalAvgPool extends Layer {
  forward(x: Tensor): Tensor {
    return ops.globalAvgPool(x);
  }
}

export class MaxPool2d extends Layer {
  constructor(readonly kernel: number, readonly stride = kernel, readonly padding = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.maxPool2d(x, this.kernel, this.stride, this.padding);
  }
}

export class Flatten extends Layer {
  forward(x: Tensor): Tensor {
    return ops.flatten(x);
  }
}
