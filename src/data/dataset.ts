// In-memory image datasets: NCHW float32 images with int32 labels, plus the batching,
// per-channel normalisation and seeded augmentation that the training loops use.
import { Rng } from '../engine';

export interface ImageSet {
  /** [n, channels, height, width] row-major */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
}

export interface ImageDataset {
  name: string;
  classes: number;
  classNames: string[];
  train: ImageSet;
  test: ImageSet;
  /** where it was loaded from (a folder), when it came from files */
  source?: string;
  /** the per-channel statistics both splits were normalised with, when they were */
  normalization?: { mean: number[]; std: number[] };
}

export function imageSize(s: ImageSet): number {
  return s.channels * s.height * s.width;
}

/** Per-channel mean and std over a set. */
export function channelStats(s: ImageSet): { mean: number[]; std: number[] } {
  const hw = s.height * s.width;
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < s.channels; c++) {
    let sum = 0, sq = 0;
    for (let i = 0; i < s.n; i++) {
      const base = (i * s.channels + c) * hw;
      for (let k = 0; k < hw; k++) {
        const v = s.images[base + k];
        sum += v;
        sq += v * v;
      }
    }
    const cnt = s.n * hw;
    const m = sum / cnt;
    mean.push(m);
    std.push(Math.sqrt(Math.max(sq / cnt - m * m, 1e-12)));
  }
  return { mean, std };
}

/** In place: (x - mean[c]) / std[c]. */
export function normalize(s: ImageSet, mean: number[], std: number[]): void {
  const hw = s.height * s.width;
  for (let i = 0; i < s.n; i++)
    for (let c = 0; c < s.channels; c++) {
      const base = (i * s.channels + c) * hw;
      const m = mean[c], inv = 1 / std[c];
      for (let k = 0; k < hw; k++) s.images[base + k] = (s.images[base + k] - m) * inv;
    }
}

/** Zero-pads every image to (height + 2p, width + 2p), e.g. MNIST 28x28 -> 32x32. */
export function pad(s: ImageSet, p: number): ImageSet {
  const H = s.height + 2 * p, W = s.width + 2 * p;
  const out = new Float32Array(s.n * s.channels * H * W);
  for (let i = 0; i < s.n * s.channels; i++)
    for (let y = 0; y < s.height; y++) {
      const src = (i * s.height + y) * s.width;
      out.set(s.images.subarray(src, src + s.width), (i * H + y + p) * W + p);
    }
  return { ...s, images: out, height: H, width: W };
}

/** The subset of a set at the given indices, in that order. */
export function subset(s: ImageSet, idx: ArrayLike<number>): ImageSet {
  const sz = imageSize(s);
  const images = new Float32Array(idx.length * sz);
  const labels = new Int32Array(idx.length);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    images.set(s.images.subarray(i * sz, (i + 1) * sz), j * sz);
    labels[j] = s.labels[i];
  }
  return { ...s, images, labels, n: idx.length };
}

export interface Batch {
  images: Float32Array;
  labels: Int32Array;
  n: number;
  /** positions in the set of the batch's samples */
  index: Int32Array;
}

/**
 * Batches in a seeded random order (or in order when rng is null). The last partial batch is
 * kept unless dropLast (batch norm needs more than one sample, so a batch of 1 is dropped).
 */
export function* batches(s: ImageSet, batchSize: number, rng: Rng | null, dropLast = false): Generator<Batch> {
  const order = rng ? rng.permutation(s.n) : Int32Array.from({ length: s.n }, (_, i) => i);
  const sz = imageSize(s);
  for (let b = 0; b < s.n; b += batchSize) {
    const n = Math.min(batchSize, s.n - b);
    if (n < batchSize && (dropLast || n < 2)) break;
    const index = order.subarray(b, b + n);
    const images = new Float32Array(n * sz);
    const labels = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const i = index[j];
      images.set(s.images.subarray(i * sz, (i + 1) * sz), j * sz);
      labels[j] = s.labels[i];
    }
    yield { images, labels, n, index: Int32Array.from(index) };
  }
}
