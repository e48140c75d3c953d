// Per-step snapshots of what pruning cannot rebuild: every BatchNorm layer's parameters and
// running statistics, and the rows of the main and auxiliary classifiers at that step. Copies
// live on the host (Float32Array); byte counts are what memory accounting reports.
import { BatchNorm2d, ResNet32Aux, IncrementalClassifier, Module } from '../nn';
import type { StepSnapshot, BnSnapshot, HeadSnapshot } from './types';

export function batchNormLayers(model: Module, prefix = ''): [string, BatchNorm2d][] {
  const out: [string, BatchNorm2d][] = [];
  for (const [n, m] of model.namedChildren()) {
    const name = prefix + n;
    if (m instanceof BatchNorm2d) out.push([name, m]);
    else out.push(...batchNormLayers(m, name + '.'));
  }
  return out;
}

function headSnapshot(h: IncrementalClassifier): HeadSnapshot {
  return { weight: h.weight.toFloat32(), bias: h.bias.toFloat32(), classes: h.classes, inFeatures: h.inFeatures };
}

export function takeSnapshot(model: ResNet32Aux, step: number): StepSnapshot {
  const bn: Record<string, BnSnapshot> = {};
  for (const [name, l] of batchNormLayers(model))
    bn[name] = { weight: l.weight.toFloat32(), bias: l.bias.toFloat32(), runningMean: l.runningMean.toFloat32(), runningVar: l.runningVar.toFloat32(), eps: l.eps };
  return { step, classesSeen: model.fc.classes, bn, fc: headSnapshot(model.fc), aux: headSnapshot(model.auxfc) };
}

/** Bytes a snapshot holds, split as memory accounting reports them. */
export function snapshotBytes(s: StepSnapshot): { bn: number; heads: number } {
  let bn = 0;
  for (const b of Object.values(s.bn)) bn += 4 * (b.weight.length + b.bias.length + b.runningMean.length + b.runningVar.length);
  const heads = 4 * (s.fc.weight.length + s.fc.bias.length + s.aux.weight.length + s.aux.bias.length);
  return { bn, heads };
}

/** Restores a snapshot's BN and heads into a model with the same class count (for rebuilding teacher k). */
export function applySnapshot(model: ResNet32Aux, s: StepSnapshot): void {
  for (const [name, l] of batchNormLayers(model)) {
    const b = s.bn[name];
    if (!b) throw new Error(`applySnapshot: snapshot of step ${s.step} has no BatchNorm '${name}'`);
    l.weight.set(b.weight);
    l.bias.set(b.bias);
    l.runningMean.set(b.runningMean);
    l.runningVar.set(b.runningVar);
  }
  if (model.fc.classes !== s.classesSeen) throw new Error(`applySnapshot: model has ${model.fc.classes} classes, snapshot of step ${s.step} has ${s.classesSeen}`);
  model.fc.weight.set(s.fc.weight);
  model.fc.bias.set(s.fc.bias);
  model.auxfc.weight.set(s.aux.weight);
  model.auxfc.bias.set(s.aux.bias);
}
