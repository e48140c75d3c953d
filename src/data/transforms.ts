// Training-time transforms on NCHW float32 batches: per-channel normalisation with the training
// set's statistics, and seeded augmentation (random horizontal flip, random crop with padding).
// Augmentation is split in two: drawAugment picks each sample's parameters (flip bit, crop
// offsets) from an Rng, applyAugment moves the pixels. An Augmenter derives the Rng from
// (seed, epoch, batch index) alone, so a batch is augmented identically however many batches
// ran before it (resume, replay, teacher caches keyed on the flip). Pixels are moved row by
// row into a caller-owned or per-batch output; nothing is allocated per pixel.
import { Rng } from '../engine/rng';
import { Batch, ImageDataset, ImageSet, batches, channelStats, normalize } from './dataset';

/**
 * Normalises both splits in place with the per-channel mean and std of the training split (or
 * the statistics given) and records them in ds.normalization. Refuses to normalise twice.
 */
export function normalizeDataset(ds: ImageDataset, stats?: { mean: number[]; std: number[] }): { mean: number[]; std: number[] } {
  if (ds.normalization) throw new Error(`normalizeDataset: ${ds.name} is already normalised (mean ${ds.normalization.mean.map((v) => v.toFixed(4)).join(', ')})`);
  const s = stats ?? channelStats(ds.train);
  const c = ds.train.channels;
  if (s.mean.length !== c || s.std.length !== c) throw new Error(`normalizeDataset: ${c} channels but ${s.mean.length} means and ${s.std.length} stds`);
  if (s.std.some((v) => !(v > 0))) throw new Error(`normalizeDataset: every std must be > 0, got [${s.std.join(', ')}]`);
  normalize(ds.train, s.mean, s.std);
  normalize(ds.test, s.mean, s.std);
  ds.normalization = { mean: [...s.mean], std: [...s.std] };
  return ds.normalization;
}

export interface AugmentOptions {
  /** random horizontal flip with probability 0.5 (default true) */
  flip?: boolean;
  /** random crop: pad by this many pixels on each side, then crop back to the original size (default 0: none) */
  crop?: number;
  /** value of the padded pixels, one for all channels or one per channel (default 0) */
  padValue?: number | number[];
}

/** Each sample's augmentation: flip[i] in {0,1}, crop offsets dy[i], dx[i] in [0, 2 * pad]. */
export interface AugmentParams {
  n: number;
  flip: Uint8Array;
  dy: Int32Array;
  dx: Int32Array;
  pad: number;
}

function checkOptions(opts: AugmentOptions): { flip: boolean; pad: number } {
  const pad = opts.crop ?? 0;
  if (!Number.isInteger(pad) || pad < 0 || pad > 1024) throw new Error(`augment: crop padding must be a non-negative integer, got ${pad}`);
  return { flip: opts.flip ?? true, pad };
}

/** Draws n samples' parameters: first all the flips (as rng.bernoulli(n)), then the crop offsets (dy, dx per sample). */
export function drawAugment(n: number, opts: AugmentOptions, rng: Rng): AugmentParams {
  const { flip, pad } = checkOptions(opts);
  const f = flip ? rng.bernoulli(n) : new Uint8Array(n);
  const dy = new Int32Array(n).fill(pad), dx = new Int32Array(n).fill(pad);
  if (pad > 0)
    for (let i = 0; i < n; i++) {
      dy[i] = rng.int(2 * pad + 1);
      dx[i] = rng.int(2 * pad + 1);
    }
  return { n, flip: f, dy, dx, pad };
}

/**
 * Applies the parameters to n NCHW images: output(y, x) = padded(y + dy, x' + dx) with
 * x' = flip ? w - 1 - x : x, where padded is the image with `pad` pixels of padValue around it
 * (crop, then flip, as torchvision's RandomCrop + RandomHorizontalFlip). out must not alias src.
 */
export function applyAugment(
  src: Float32Array,
  shape: { n: number; channels: number; height: number; width: number },
  p: AugmentParams,
  padValue: number | number[] = 0,
  out?: Float32Array,
): Float32Array {
  const { n, channels: C, height: H, width: W } = shape;
  const plane = H * W;
  if (src.length < n * C * plane) throw new Error(`applyAugment: ${src.length} values for ${n}x${C}x${H}x${W} images`);
  if (p.n < n) throw new Error(`applyAugment: parameters for ${p.n} samples, batch has ${n}`);
  const pv = typeof padValue === 'number' ? new Array<number>(C).fill(padValue) : padValue;
  if (pv.length !== C) throw new Error(`applyAugment: ${pv.length} pad values for ${C} channels`);
  const dst = out ?? new Float32Array(n * C * plane);
  if (dst.length < n * C * plane) throw new Error(`applyAugment: output has ${dst.length} values, needs ${n * C * plane}`);
  if (dst.buffer === src.buffer && dst.byteOffset < src.byteOffset + src.byteLength && src.byteOffset < dst.byteOffset + dst.byteLength)
    throw new Error('applyAugment: out must not overlap src');
  const pad = p.pad;
  for (let i = 0; i < n; i++) {
    const oy = p.dy[i] - pad, ox = p.dx[i] - pad, flip = p.flip[i] === 1;
    if (oy < -pad || oy > pad || ox < -pad || ox > pad) throw new Error(`applyAugment: crop offset (${p.dy[i]}, ${p.dx[i]}) of sample ${i} outside [0, ${2 * pad}]`);
    // columns x (before flipping) whose source x + ox lies inside the image: [x0, x1)
    const x0 = Math.max(0, -ox), x1 = Math.min(W, W - ox);
    for (let c = 0; c < C; c++) {
      const s0 = (i * C + c) * plane, fill = pv[c];
      for (let y = 0; y < H; y++) {
        const d = s0 + y * W;
        const sy = y + oy;
        if (sy < 0 || sy >= H || x0 >= x1) {
          dst.fill(fill, d, d + W);
          continue;
        }
        const s = s0 + sy * W + ox; // s + x is the source of column x
        if (!flip) {
          if (x0 > 0) dst.fill(fill, d, d + x0);
          dst.set(src.subarray(s + x0, s + x1), d + x0);
          if (x1 < W) dst.fill(fill, d + x1, d + W);
        } else {
          // output column W-1-x takes column x
          for (let x = 0; x < x0; x++) dst[d + W - 1 - x] = fill;
          for (let x = x0; x < x1; x++) dst[d + W - 1 - x] = src[s + x];
          for (let x = x1; x < W; x++) dst[d + W - 1 - x] = fill;
        }
      }
    }
  }
  return dst;
}

/** Streams of the augmentation Rngs live above 2^31, away from the small stream ids used elsewhere. */
const STREAM_BASE = 0x80000000;

/** The Rng of one (seed, epoch, batch): independent of any other draw. epoch < 32768, batch < 65536. */
export function augmentRng(seed: number, epoch: number, batch: number): Rng {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch >= 32768) throw new Error(`augmentRng: epoch must be an integer in [0, 32768), got ${epoch}`);
  if (!Number.isInteger(batch) || batch < 0 || batch >= 65536) throw new Error(`augmentRng: batch must be an integer in [0, 65536), got ${batch}`);
  return new Rng(seed, STREAM_BASE + epoch * 65536 + batch);
}

/** Seeded augmentation whose result depends only on (seed, epoch, batch index) and the images. */
export class Augmenter {
  readonly flip: boolean;
  readonly pad: number;
  constructor(readonly seed: number, readonly opts: AugmentOptions = {}) {
    const o = checkOptions(opts);
    this.flip = o.flip;
    this.pad = o.pad;
    new Rng(seed); // validates the seed
  }

  /** True when it changes nothing (no flip, no crop). */
  get identity(): boolean {
    return !this.flip && this.pad === 0;
  }

  params(epoch: number, batch: number, n: number): AugmentParams {
    return drawAugment(n, this.opts, augmentRng(this.seed, epoch, batch));
  }

  /** Augments n images of the given shape for (epoch, batch); returns the output and the parameters used. */
  apply(
    images: Float32Array,
    shape: { n: number; channels: number; height: number; width: number },
    epoch: number,
    batch: number,
    out?: Float32Array,
  ): { images: Float32Array; params: AugmentParams } {
    const params = this.params(epoch, batch, shape.n);
    return { images: applyAugment(images, shape, params, this.opts.padValue ?? 0, out), params };
  }
}

export interface AugmentedBatch extends Batch {
  /** the parameters applied (all zeros / pad when there is no augmenter) */
  params: AugmentParams;
  /** the batch's index in the epoch */
  batch: number;
}

export interface AugmentedBatchOptions {
  epoch: number;
  /** shuffles the order when given (e.g. rng.fork(1000 + epoch)); in order when null */
  shuffle?: Rng | null;
  augment?: Augmenter | null;
  dropLast?: boolean;
}

/** `batches` with each batch augmented by the Augmenter for (epoch, batch index). */
export function* augmentedBatches(set: ImageSet, batchSize: number, opts: AugmentedBatchOptions): Generator<AugmentedBatch> {
  let bi = 0;
  const shapeOf = (n: number) => ({ n, channels: set.channels, height: set.height, width: set.width });
  let scratch: Float32Array = new Float32Array(0);
  for (const b of batches(set, batchSize, opts.shuffle ?? null, opts.dropLast ?? false)) {
    if (opts.augment && !opts.augment.identity) {
      // augment into a buffer the caller never saw (the previous batch's unaugmented copy),
      // so every yielded array stays the caller's
      if (scratch.length !== b.images.length) scratch = new Float32Array(b.images.length);
      const { images, params } = opts.augment.apply(b.images, shapeOf(b.n), opts.epoch, bi, scratch);
      scratch = b.images;
      yield { ...b, images, params, batch: bi };
    } else {
      const pad = opts.augment?.pad ?? 0;
      yield { ...b, params: { n: b.n, flip: new Uint8Array(b.n), dy: new Int32Array(b.n).fill(pad), dx: new Int32Array(b.n).fill(pad), pad }, batch: bi };
    }
    bi++;
  }
}
