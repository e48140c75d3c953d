// ResNets. ResNet-32 for 32x32 inputs (He et al. 2016, CIFAR variant: 3 stages of 5 basic
// blocks, 16/32/64 channels, option-A parameter-free shortcuts), named conv1, bn1,
// stage{1,2,3}.{0..4}.{conv1,bn1,conv2,bn2}, fc. ResNet-18 for 224x224 inputs (ImageNet stem,
// option-B projection shortcuts) with torchvision's names (layer1..4, downsample.0/.1, fc), so
// its state dict loads into torchvision.models.resnet18. Both expose the output of every stage
// (forwardAll) for auxiliary heads, and grow their classifier.
import { Tensor, Rng, ops } from '../engine';
import { Module, Layer, Sequential } from './module';
import { Conv2d, BatchNorm2d } from './layers';
import { IncrementalClassifier } from './classifier';

export type Shortcut = { kind: 'identity' } | { kind: 'A'; stride: number; padBefore: number; padAfter: number } | { kind: 'B' };

export class BasicBlock extends Layer {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null = null;
  readonly shortcut: Shortcut;

  constructor(inPlanes: number, planes: number, stride: number, option: 'A' | 'B', rng: Rng) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, planes, 3, rng, { stride, padding: 1 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, rng, { stride: 1, padding: 1 }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    if (stride === 1 && inPlanes === planes) this.shortcut = { kind: 'identity' };
    else if (option === 'A') {
      const extra = planes - inPlanes;
      this.shortcut = { kind: 'A', stride, padBefore: Math.floor(extra / 2), padAfter: extra - Math.floor(extra / 2) };
    } else {
      this.shortcut = { kind: 'B' };
      this.downsample = this.registerModule(
        'downsample',
        new Sequential(new Conv2d(inPlanes, planes, 1, rng, { stride }), new BatchNorm2d(planes)),
      );
    }
  }

  forward(x: Tensor): Tensor {
    let h = this.bn1.forwardFused(this.conv1.forward(x), true);
    h = this.bn2.forward(this.conv2.forward(h));
    let s: Tensor;
    switch (this.shortcut.kind) {
      case 'identity':
        s = x;
        break;
      case 'A':
        s = ops.shortcutA(x, this.shortcut.stride, this.shortcut.padBefore, this.shortcut.padAfter);
        break;
      case 'B': {
        const ds = this.downsample!;
        s = (ds.layers[1] as BatchNorm2d).forward(ds.layers[0].forward(x));
        break;
      }
    }
    return ops.addRelu(h, s);
  }
}

export interface ResNetOutput {
  /** output of every stage, in order (e.g. for an auxiliary head on stage 2) */
  stages: Tensor[];
  /** globally pooled features [n, channels] */
  features: Tensor;
  /** classifier logits [n, classes] */
  logits: Tensor;
}

/** Common interface of the backbones used by the incremental-learning layer. */
export abstract class ResNet extends Module {
  abstract readonly stageChannels: number[];
  abstract readonly fc: IncrementalClassifier;
  abstract forwardAll(x: Tensor): ResNetOutput;
  forward(x: Tensor): Tensor {
    return this.forwardAll(x).logits;
  }
  get featureSize(): number {
    return this.stageChannels[this.stageChannels.length - 1];
  }
}

export interface ResNetConfig {
  /** input channels: 3 for RGB, 1 for MNIST-style digits */
  inChannels?: number;
  seed?: number;
}

/** One convolution's geometry: input [n, c, h, w], o output channels, a k×k kernel. */
export interface ConvGeometry {
  name: string;
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  stride: number;
  pad: number;
}

export class ResNet32 extends ResNet {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly stages: Sequential[];
  readonly fc: IncrementalClassifier;
  static readonly stageWidths: readonly number[] = [16, 32, 64];
  readonly stageChannels: number[] = [...ResNet32.stageWidths];
  static readonly blocksPerStage = 5;

  /**
   * The distinct convolution shapes of the network at a batch size, in network order, from the
   * same widths and strides the constructor builds with: what the conv benchmarks time.
   */
  static convShapes(batch: number, inChannels = 3, size = 32): ConvGeometry[] {
    const w0 = ResNet32.stageWidths[0];
    const out: ConvGeometry[] = [{ name: `conv1 ${inChannels}->${w0} ${size}x${size}`, n: batch, c: inChannels, h: size, w: size, o: w0, k: 3, stride: 1, pad: 1 }];
    let c = w0, hw = size;
    ResNet32.stageWidths.forEach((planes, si) => {
      if (si > 0) {
        out.push({ name: `stage${si + 1} ${c}->${planes} s2`, n: batch, c, h: hw, w: hw, o: planes, k: 3, stride: 2, pad: 1 });
        hw = Math.floor((hw + 2 - 3) / 2) + 1;
      }
      out.push({ name: `stage${si + 1} ${planes}->${planes} ${hw}x${hw}`, n: batch, c: planes, h: hw, w: hw, o: planes, k: 3, stride: 1, pad: 1 });
      c = planes;
    });
    return out;
  }

  constructor(numClasses: number, cfg: ResNetConfig = {}) {
    super();
    const rng = new Rng(cfg.seed ?? 0, 1);
    this.conv1 = this.registerModule('conv1', new Conv2d(cfg.inChannels ?? 3, 16, 3, rng, { padding: 1 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(16));
    let inPlanes = 16;
    this.stages = this.stageChannels.map((planes, si) => {
      const blocks: BasicBlock[] = [];
      for (let b = 0; b < ResNet32.blocksPerStage; b++) {
        blocks.push(new BasicBlock(inPlanes, planes, b === 0 && si > 0 ? 2 : 1, 'A', rng));
        inPlanes = planes;
      }
      return this.registerModule(`stage${si + 1}`, new Sequential(...blocks));
    });
    this.fc = this.registerModule('fc', new IncrementalClassifier(64, numClasses, rng.fork(2)));
  }

  forwardAll(x: Tensor): ResNetOutput {
    let h = this.bn1.forwardFused(this.conv1.forward(x), true);
    const stages: Tensor[] = [];
    for (const s of this.stages) {
      h = s.forward(h);
      stages.push(h);
    }
    const features = ops.globalAvgPool(h);
    return { stages, features, logits: this.fc.forward(features) };
  }
}

export class ResNet18 extends ResNet {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: Sequential[];
  readonly fc: IncrementalClassifier;
  readonly stageChannels = [64, 128, 256, 512];

  constructor(numClasses: number, cfg: ResNetConfig = {}) {
    super();
    const rng = new Rng(cfg.seed ?? 0, 1);
    this.conv1 = this.registerModule('conv1', new Conv2d(cfg.inChannels ?? 3, 64, 7, rng, { stride: 2, padding: 3 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    let inPlanes = 64;
    this.layers = this.stageChannels.map((planes, si) => {
      const blocks = [0, 1].map((b) => {
        const blk = new BasicBlock(inPlanes, planes, b === 0 && si > 0 ? 2 : 1, 'B', rng);
        inPlanes = planes;
        return blk;
      });
      return this.registerModule(`layer${si + 1}`, new Sequential(...blocks));
    });
    this.fc = this.registerModule('fc', new IncrementalClassifier(512, numClasses, rng.fork(2)));
  }

  forwardAll(x: Tensor): ResNetOutput {
    let h = this.bn1.forwardFused(this.conv1.forward(x), true);
    h = ops.maxPool2d(h, 3, 2, 1);
    const stages: Tensor[] = [];
    for (const l of this.layers) {
      h = l.forward(h);
      stages.push(h);
    }
    const features = ops.globalAvgPool(h);
    return { stages, features, logits: this.fc.forward(features) };
  }
}
