// A linear classifier whose output rows can grow as new classes arrive (single-head
// class-incremental learning). Old rows keep their exact values; new rows get PyTorch's
// default Linear init. Names stay "weight"/"bias" so a state dict still maps onto nn.Linear.
import { Tensor, Rng, ops } from '../engine';
import { Layer } from './module';

export class IncrementalClassifier extends Layer {
  weight: Tensor;
  bias: Tensor;
  constructor(readonly inFeatures: number, initialClasses: number, private readonly rng: Rng) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter('weight', Tensor.fromArray(rng.uniform(initialClasses * inFeatures, -bound, bound), [initialClasses, inFeatures]));
    this.bias = this.registerParameter('bias', Tensor.fromArray(rng.uniform(initialClasses, -bound, bound), [initialClasses]));
  }

  get classes(): number {
    return this.weight.shape[0];
  }

  /**
   * Adds n output rows, initialised from `rng` (default: the classifier's own generator; pass
   * one derived from the step for runs that must resume bit-exactly). The parameter tensors are
   * replaced (recreate optimizers afterwards).
   */
  grow(n: number, rng: Rng = this.rng): void {
    if (!Number.isInteger(n) || n < 1) throw new Error(`IncrementalClassifier.grow: n must be a positive integer, got ${n}`);
    const c = this.classes, f = this.inFeatures;
    const bound = 1 / Math.sqrt(f);
    // built where the head lives: old rows copied on that device, new rows written from the host rng
    const device = this.weight.device;
    const w = Tensor.empty([c + n, f], { device });
    const b = Tensor.empty([c + n], { device });
    if (c > 0) {
      w.copyRangeFrom(this.weight, 0, 0, c * f);
      b.copyRangeFrom(this.bias, 0, 0, c);
    }
    w.writeAt(rng.uniform(n * f, -bound, bound), c * f);
    b.writeAt(rng.uniform(n, -bound, bound), c);
    this.weight = this.replaceParameter('weight', w);
    this.bias = this.replaceParameter('bias', b);
  }

  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}
