// iCaRL's herding selection of exemplars (Rebuffi et al., CVPR 2017, Algorithm 4). All feature
// math is in float64 over float32 [n, d] rows.
import type { ResNet } from '../nn';
import { fail, checkInt } from '../engine/errors';
import { ImageBatch, checkBatch, extractFeatures } from './features';
import { gatherImages } from '../data/dataset';

/**
 * iCaRL's herding (the paper's Algorithm 4, "ConstructExemplarSet"): with μ the mean of the n
 * feature rows, the k-th pick is the row p_k, not picked before, that minimises
 * ‖μ − (1/k)(φ(p_k) + Σ_{j<k} φ(p_j))‖₂; ties go to the lower index. Features are expected
 * L2-normalised (as iCaRL's), but any rows work. Returns the m indices in selection order, so
 * any prefix is the herding selection for a smaller m.
 */
export function herding(features: Float32Array, n: number, d: number, m: number): Int32Array {
  const fn = 'herding';
  checkInt(fn, 'n', n, 1);
  checkInt(fn, 'd', d, 1);
  checkInt(fn, 'm', m, 0);
  if (features.length !== n * d) fail(fn, `${features.length} features do not form [${n}, ${d}] (${n * d} expected)`);
  if (m > n) fail(fn, `cannot pick ${m} exemplars from ${n} samples`);
  for (let i = 0; i < features.length; i++)
    if (!Number.isFinite(features[i])) fail(fn, `feature [${Math.floor(i / d)}, ${i % d}] is ${features[i]}`);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += features[i * d + j];
  for (let j = 0; j < d; j++) mu[j] /= n;
  // ‖μ − (S + x)/k‖² = ‖kμ − S − x‖² / k²: minimise ‖r − x‖² with r = kμ − S
  const sum = new Float64Array(d), r = new Float64Array(d);
  const used = new Uint8Array(n);
  const out = new Int32Array(m);
  for (let k = 1; k <= m; k++) {
    for (let j = 0; j < d; j++) r[j] = k * mu[j] - sum[j];
    let best = -1, bestDist = Infinity;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      let dist = 0;
      for (let j = 0; j < d; j++) {
        const e = r[j] - features[i * d + j];
        dist += e * e;
      }
      if (dist < bestDist) {
        bestDist = dist;
        best = i;
      }
    }
    used[best] = 1;
    out[k - 1] = best;
    for (let j = 0; j < d; j++) sum[j] += features[best * d + j];
  }
  return out;
}

/**
 * Exemplars of one class: extracts the normalised features of classImages (no flip, as in
 * iCaRL's reference code) and herds m of them. Returns the chosen indices in herding order and
 * the chosen images in that order (copies), ready for ExemplarMemory.add.
 */
export function selectExemplars(model: ResNet, classImages: ImageBatch, m: number, batchSize = 128): { indices: Int32Array; exemplars: ImageBatch } {
  const fn = 'selectExemplars';
  const size = checkBatch(fn, classImages);
  checkInt(fn, 'm', m, 1);
  if (m > classImages.n) fail(fn, `cannot pick ${m} exemplars from ${classImages.n} images`);
  const ef = extractFeatures(model, classImages, batchSize, { flip: false });
  const indices = herding(ef.features, ef.n, ef.d, m);
  const images = new Float32Array(m * size);
  if (classImages.stream) gatherImages(classImages, indices, images);
  else indices.forEach((i, j) => images.set(classImages.images.subarray(i * size, (i + 1) * size), j * size));
  return { indices, exemplars: { images, n: m, channels: classImages.channels, height: classImages.height, width: classImages.width } };
}
