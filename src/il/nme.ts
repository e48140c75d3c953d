// iCaRL's nearest-mean-of-exemplars (NME) classifier: class means of the exemplars' normalised
// features (with flip averaging) and the distances of test features to them. Feature math is in
// float64 over float32 [n, d] rows.
import type { ResNet } from '../nn';
import { fail, checkInt } from '../engine/errors';
import { ExtractedFeatures, extractFeatures, l2normalizeRows } from './features';
import type { ExemplarMemory } from './exemplarMemory';

/**
 * A class mean as iCaRL computes it: the mean of the normalised features and the mean of the
 * normalised flipped features, averaged, then L2-normalised ([d]). Without flipped features,
 * the normalised mean of the features alone.
 */
export function classMean(ef: ExtractedFeatures): Float32Array {
  const { n, d } = ef;
  if (n < 1) fail('classMean', 'no features');
  const acc = new Float64Array(d);
  const add = (f: Float32Array, w: number) => {
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) acc[j] += w * f[i * d + j];
  };
  if (ef.flipped) {
    add(ef.features, 0.5 / n);
    add(ef.flipped, 0.5 / n);
  } else add(ef.features, 1 / n);
  return l2normalizeRows(Float32Array.from(acc), d);
}

/**
 * Class means [C, d] of the memory's exemplars, row j for classes[j] (default: the memory's
 * classes in the order they were added, i.e. seen order). Uses flip averaging (classMean).
 */
export function classMeans(model: ResNet, memory: ExemplarMemory, batchSize = 128, classes: readonly number[] = memory.classes()): Float32Array {
  const d = model.featureSize;
  const out = new Float32Array(classes.length * d);
  classes.forEach((c, j) => {
    if (!memory.has(c)) fail('classMeans', `class ${c} has no exemplars`);
    out.set(classMean(extractFeatures(model, memory.classSet(c), batchSize)), j * d);
  });
  return out;
}

function checkNme(fn: string, features: Float32Array, means: Float32Array, d: number): [number, number] {
  checkInt(fn, 'd', d, 1);
  if (features.length % d !== 0) fail(fn, `${features.length} features are not rows of ${d}`);
  if (means.length % d !== 0 || means.length === 0) fail(fn, `${means.length} mean values are not (at least one) rows of ${d}`);
  return [features.length / d, means.length / d];
}

/**
 * NME scores [n, C]: minus the squared Euclidean distance of each feature row to each class
 * mean, so the highest score is the nearest mean and the scores feed Evaluator (top-1, top-5)
 * like logits. Features and means are expected L2-normalised (extractFeatures, classMean).
 */
export function nmeScores(features: Float32Array, means: Float32Array, d: number): Float32Array {
  const [n, C] = checkNme('nmeScores', features, means, d);
  const out = new Float32Array(n * C);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const e = features[i * d + j] - means[c * d + j];
        s += e * e;
      }
      out[i * C + c] = -s;
    }
  return out;
}

/** Nearest-mean-of-exemplars prediction: the column of the nearest mean (ties: lower column). */
export function nmeClassify(features: Float32Array, means: Float32Array, d: number): Int32Array {
  const [n, C] = checkNme('nmeClassify', features, means, d);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0, bestDist = Infinity;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const e = features[i * d + j] - means[c * d + j];
        s += e * e;
      }
      if (s < bestDist) {
        bestDist = s;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}
