// ResNet-32 with the M²KD auxiliary classifier: global average pool + linear on the output of
// the second residual stage (paper §3.2, "the output of the second residual block"). Parameter
// names are ResNet32's (conv1, bn1, stage*.*, fc) plus auxfc.weight / auxfc.bias. The auxiliary
// head is only used in training; prediction uses the main head alone.
import { Tensor, ops } from '../engine';
import { ResNet32, ResNetConfig } from './resnet';
import { IncrementalClassifier } from './classifier';
import { Rng } from '../engine';

export interface AuxOutput {
  /** main logits [n, C] */
  logits: Tensor;
  /** auxiliary logits [n, C] */
  auxLogits: Tensor;
  /** pooled final features [n, 64] (iCaRL's feature space) */
  features: Tensor;
}

export class ResNet32Aux extends ResNet32 {
  readonly auxfc: IncrementalClassifier;
  /** index of the stage whose output feeds the auxiliary head */
  static readonly auxStage = 1;

  constructor(numClasses: number, cfg: ResNetConfig = {}) {
    super(numClasses, cfg);
    this.auxfc = this.registerModule('auxfc', new IncrementalClassifier(this.stageChannels[ResNet32Aux.auxStage], numClasses, new Rng(cfg.seed ?? 0, 3)));
  }

  forwardAux(x: Tensor): AuxOutput {
    const all = this.forwardAll(x);
    const auxLogits = this.auxfc.forward(ops.globalAvgPool(all.stages[ResNet32Aux.auxStage]));
    return { logits: all.logits, auxLogits, features: all.features };
  }

  /** Adds n classes to both heads (parameters are replaced: rebuild optimizers afterwards). */
  growClasses(n: number, rng?: Rng): void {
    this.fc.grow(n, rng ? rng.fork(rng.stream + 1) : undefined);
    this.auxfc.grow(n, rng ? rng.fork(rng.stream + 2) : undefined);
  }
}
