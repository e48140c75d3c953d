// The backbones of incremental runs with the M²KD auxiliary classifier: global average pool +
// linear on the output of the second residual stage (paper §3.2, "the output of the second
// residual block"; ResNet-32's stage2, ResNet-18's layer2). Parameter names are the backbone's
// (ResNet-32: conv1, bn1, stage*.*, fc; ResNet-18: torchvision's conv1, bn1, layer*.*,
// downsample, fc) plus auxfc.weight / auxfc.bias. The auxiliary head is only used in training;
// prediction uses the main head alone. ResNet-32 is the paper's CIFAR-100 network (32×32 inputs),
// ResNet-18 its iILSVRC-small network (224×224 inputs).
import { Tensor, ops } from '../engine';
import { ResNet32, ResNet18, ResNetConfig } from './resnet';
import { IncrementalClassifier } from './classifier';
import { Rng } from '../engine';
import type { Sequential } from './module';

export interface AuxOutput {
  /** main logits [n, C] */
  logits: Tensor;
  /** auxiliary logits [n, C] */
  auxLogits: Tensor;
  /** pooled final features [n, 64] (ResNet-32) or [n, 512] (ResNet-18): iCaRL's feature space */
  features: Tensor;
}

/** The backbones an incremental run can use. */
export const ARCHS = ['resnet32', 'resnet18'] as const;
export type Arch = (typeof ARCHS)[number];

/** The architecture for a name, or a clear error. */
export function parseArch(name: string): Arch {
  const a = String(name).toLowerCase().replace(/-/g, '');
  if ((ARCHS as readonly string[]).includes(a)) return a as Arch;
  throw new Error(`unknown architecture ${JSON.stringify(name)}; valid: ${ARCHS.join(', ')}`);
}

/** The default backbone for square images of this side: ResNet-18 from 64 pixels up, else ResNet-32. */
export function defaultArch(imageSide: number): Arch {
  return imageSide >= 64 ? 'resnet18' : 'resnet32';
}

/** index of the stage whose output feeds the auxiliary head (the second) */
export const AUX_STAGE = 1;

/** The main logits, the auxiliary head's logits on stage AUX_STAGE's pooled output, and the features. */
function forwardWithAux(m: ResNet32Aux | ResNet18Aux, x: Tensor): AuxOutput {
  const all = m.forwardAll(x);
  const auxLogits = m.auxfc.forward(ops.globalAvgPool(all.stages[AUX_STAGE]));
  return { logits: all.logits, auxLogits, features: all.features };
}

/** Adds n classes to both heads, each from its own stream of rng. */
function growBothHeads(m: ResNet32Aux | ResNet18Aux, n: number, rng?: Rng): void {
  m.fc.grow(n, rng ? rng.fork(rng.stream + 1) : undefined);
  m.auxfc.grow(n, rng ? rng.fork(rng.stream + 2) : undefined);
}

export class ResNet32Aux extends ResNet32 {
  readonly arch = 'resnet32' as const;
  readonly auxfc: IncrementalClassifier;
  /** index of the stage whose output feeds the auxiliary head */
  static readonly auxStage = AUX_STAGE;

  constructor(numClasses: number, cfg: ResNetConfig = {}) {
    super(numClasses, cfg);
    this.auxfc = this.registerModule('auxfc', new IncrementalClassifier(this.stageChannels[AUX_STAGE], numClasses, new Rng(cfg.seed ?? 0, 3)));
  }

  /** the residual stages in order, with their module names */
  residualStages(): { name: string; stage: Sequential }[] {
    return this.stages.map((stage, i) => ({ name: `stage${i + 1}`, stage }));
  }

  forwardAux(x: Tensor): AuxOutput {
    return forwardWithAux(this, x);
  }

  /** Adds n classes to both heads (parameters are replaced: rebuild optimizers afterwards). */
  growClasses(n: number, rng?: Rng): void {
    growBothHeads(this, n, rng);
  }
}

export class ResNet18Aux extends ResNet18 {
  readonly arch = 'resnet18' as const;
  readonly auxfc: IncrementalClassifier;
  static readonly auxStage = AUX_STAGE;
  /** the stem's max pooling (kernel, stride, padding), as forwardAll applies it */
  static readonly stemPool = { kernel: 3, stride: 2, pad: 1 };

  constructor(numClasses: number, cfg: ResNetConfig = {}) {
    super(numClasses, cfg);
    this.auxfc = this.registerModule('auxfc', new IncrementalClassifier(this.stageChannels[AUX_STAGE], numClasses, new Rng(cfg.seed ?? 0, 3)));
  }

  residualStages(): { name: string; stage: Sequential }[] {
    return this.layers.map((stage, i) => ({ name: `layer${i + 1}`, stage }));
  }

  forwardAux(x: Tensor): AuxOutput {
    return forwardWithAux(this, x);
  }

  growClasses(n: number, rng?: Rng): void {
    growBothHeads(this, n, rng);
  }
}

/** A backbone with the auxiliary head: what incremental runs train. */
export type AuxResNet = ResNet32Aux | ResNet18Aux;

/** A new model of an architecture (heads of numClasses rows). */
export function createAuxModel(arch: Arch, numClasses: number, cfg: ResNetConfig = {}): AuxResNet {
  return arch === 'resnet18' ? new ResNet18Aux(numClasses, cfg) : new ResNet32Aux(numClasses, cfg);
}

/** The architecture of a model (for rebuilding one like it). */
export function archOf(model: AuxResNet): Arch {
  return model.arch;
}
