// Features of images for iCaRL: the model's pooled final features (its feature space),
// L2-normalised, extracted batch by batch in eval mode. Features are [n, d] row-major float32.
import { Tensor, tidy, noGrad, ops } from '../engine';
import type { ResNet } from '../nn';
import { fail, checkInt } from '../engine/errors';
import { StreamedImages, rangeImages } from '../data/dataset';

/** Images without labels: [n, channels, height, width] row-major. An ImageSet is one. */
export interface ImageBatch {
  images: Float32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  /** streamed: `images` is empty and the pixels are read from the store (see data/dataset.ts) */
  stream?: StreamedImages;
}

export function checkBatch(fn: string, b: ImageBatch): number {
  checkInt(fn, 'n', b.n, 0);
  checkInt(fn, 'channels', b.channels, 1);
  checkInt(fn, 'height', b.height, 1);
  checkInt(fn, 'width', b.width, 1);
  const size = b.channels * b.height * b.width;
  if (!(b.images instanceof Float32Array)) fail(fn, 'images must be a Float32Array');
  if (b.stream) {
    if (b.stream.rows.length !== b.n) fail(fn, `${b.stream.rows.length} streamed rows for ${b.n} images`);
    return size;
  }
  if (b.images.length !== b.n * size)
    fail(fn, `${b.images.length} values do not form [${b.n}, ${b.channels}, ${b.height}, ${b.width}] (${b.n * size} expected)`);
  return size;
}


/** L2-normalises each row of [n, d] in place (a zero row stays zero). Returns rows. */
export function l2normalizeRows(rows: Float32Array, d: number): Float32Array {
  checkInt('l2normalizeRows', 'd', d, 1);
  if (rows.length % d !== 0) fail('l2normalizeRows', `${rows.length} values are not rows of ${d}`);
  for (let b = 0; b < rows.length; b += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += rows[b + j] * rows[b + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) rows[b + j] *= inv;
  }
  return rows;
}


/** Features of a set of images (see extractFeatures). */
export interface ExtractedFeatures {
  n: number;
  d: number;
  /** L2-normalised features of the images, [n, d] */
  features: Float32Array;
  /** L2-normalised features of the horizontally flipped images, [n, d]; null when flip was off */
  flipped: Float32Array | null;
}

/**
 * The model's pooled final features (ResNet.forwardAll(x).features, iCaRL's feature space) of
 * every image, in eval mode (BatchNorm running statistics) under noGrad, batch by batch in
 * order; also of each image's horizontal flip unless flip is false. Every row is L2-normalised.
 * The model's train/eval mode is restored afterwards. Native memory is released per batch.
 */
export function extractFeatures(model: ResNet, images: ImageBatch, batchSize = 128, opts: { flip?: boolean } = {}): ExtractedFeatures {
  const fn = 'extractFeatures';
  const size = checkBatch(fn, images);
  checkInt(fn, 'batchSize', batchSize, 1);
  if (images.n === 0) fail(fn, 'no images');
  const flip = opts.flip ?? true;
  const d = model.featureSize;
  const device = model.parameters()[0]?.device ?? 'cpu';
  const features = new Float32Array(images.n * d);
  const flipped = flip ? new Float32Array(images.n * d) : null;
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      for (let b = 0; b < images.n; b += batchSize) {
        const nb = Math.min(batchSize, images.n - b);
        // each forward in its own scope: its activations go back to the pool before the next
        // one, so peak memory is one forward's (two forwards in one scope ran slower on CPU)
        const run = (flip: boolean): Float32Array =>
          tidy(() => {
            const x = Tensor.fromArray(images.stream ? rangeImages(images, b, nb) : images.images.subarray(b * size, (b + nb) * size), [nb, images.channels, images.height, images.width], { device });
            const f = model.forwardAll(flip ? ops.hflip(x) : x).features;
            if (f.shape.length !== 2 || f.shape[0] !== nb || f.shape[1] !== d)
              fail(fn, `the model returned features [${f.shape.join(',')}], expected [${nb}, ${d}]`);
            return f.toFloat32();
          });
        features.set(run(false), b * d);
        if (flipped) flipped.set(run(true), b * d);
      }
    });
  } finally {
    model.train(wasTraining);
  }
  l2normalizeRows(features, d);
  if (flipped) l2normalizeRows(flipped, d);
  return { n: images.n, d, features, flipped };
}
