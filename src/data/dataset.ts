// Image datasets: NCHW float32 images with int32 labels, plus the batching, per-channel
// normalisation and seeded augmentation that the training loops use. A set holds its images in
// memory (`images`), or is streamed: `stream` names an ImageStore (e.g. a folder's decode cache
// on disk) and the store's row of each sample, and `images` is empty. Code that reads pixels goes
// through gatherImages / rangeImages / gatherImagesAsync, which serve both kinds alike.
import { Rng } from '../engine';

/** Images kept outside a set's Float32Array, read on demand by row (see folder.ts, FolderStore). */
export interface ImageStore {
  readonly n: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** Writes images rows[j] (float32, normalised when the store is) to out at j × size. */
  read(rows: ArrayLike<number>, out: Float32Array): void;
  /** The same without blocking the event loop (file reads on libuv's pool); absent: read. */
  readAsync?(rows: ArrayLike<number>, out: Float32Array): Promise<void>;
  /** Applies (x - mean[c]) / std[c] on every later read; at most once. Absent: not normalisable. */
  normalize?(mean: number[], std: number[]): void;
}

/** A streamed set's images: sample i is store image rows[i]. */
export interface StreamedImages {
  store: ImageStore;
  rows: Int32Array;
}

export interface ImageSet {
  /** [n, channels, height, width] row-major */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  /** streamed: the images live in a store and `images` is empty (see gatherImages) */
  stream?: StreamedImages;
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

export function isStreamed(s: { stream?: StreamedImages }): boolean {
  return s.stream !== undefined;
}

type Pixels = Pick<ImageSet, 'images' | 'n' | 'channels' | 'height' | 'width' | 'stream'>;

/** The images at positions idx of a set (streamed or in memory), into out (new when absent). */
export function gatherImages(s: Pixels, idx: ArrayLike<number>, out?: Float32Array): Float32Array {
  const sz = s.channels * s.height * s.width;
  const dst = out ?? new Float32Array(idx.length * sz);
  if (dst.length < idx.length * sz) throw new Error(`gatherImages: output holds ${dst.length} values, needs ${idx.length * sz}`);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    if (!(i >= 0 && i < s.n)) throw new Error(`gatherImages: index ${i} outside the set's ${s.n} images`);
  }
  if (s.stream) {
    const rows = s.stream.rows;
    s.stream.store.read(Int32Array.from({ length: idx.length }, (_, j) => rows[idx[j]]), dst);
    return dst;
  }
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    dst.set(s.images.subarray(i * sz, (i + 1) * sz), j * sz);
  }
  return dst;
}

/** Images [start, start + n) of a set as a new array (a copy, as images.slice). */
export function rangeImages(s: Pixels, start: number, n: number): Float32Array {
  if (!s.stream) {
    const sz = s.channels * s.height * s.width;
    return s.images.slice(start * sz, (start + n) * sz);
  }
  return gatherImages(s, Int32Array.from({ length: n }, (_, j) => start + j));
}

/**
 * gatherImages that reads a streamed set without blocking (so a batch can be read while the
 * previous one trains); an in-memory set is gathered at once.
 */
export async function gatherImagesAsync(s: Pixels, idx: ArrayLike<number>): Promise<Float32Array> {
  const st = s.stream;
  if (!st || !st.store.readAsync) return gatherImages(s, idx);
  const sz = s.channels * s.height * s.width;
  const rows = new Int32Array(idx.length);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j];
    if (!(i >= 0 && i < s.n)) throw new Error(`gatherImages: index ${i} outside the set's ${s.n} images`);
    rows[j] = st.rows[i];
  }
  const out = new Float32Array(idx.length * sz);
  await st.store.readAsync(rows, out);
  return out;
}

/** An ImageStore over a set (streamed or in memory): row r is the set's image r. */
export function setStore(s: ImageSet): ImageStore {
  return { n: s.n, channels: s.channels, height: s.height, width: s.width, read: (rows, out) => void gatherImages(s, rows, out) };
}

/** Stores one after another: row r of the result is row r - (rows of the stores before) of its store. */
export function concatStores(stores: ImageStore[]): ImageStore {
  if (!stores.length) throw new Error('concatStores: no stores');
  const { channels, height, width } = stores[0];
  for (const s of stores)
    if (s.channels !== channels || s.height !== height || s.width !== width)
      throw new Error(`concatStores: images of [${s.channels}, ${s.height}, ${s.width}] and [${channels}, ${height}, ${width}]`);
  const starts: number[] = [];
  let n = 0;
  for (const s of stores) {
    starts.push(n);
    n += s.n;
  }
  const sz = channels * height * width;
  return {
    n,
    channels,
    height,
    width,
    read(rows, out) {
      // per store, the rows it serves and where they go, read in one call each
      const parts = stores.map(() => ({ rows: [] as number[], at: [] as number[] }));
      for (let j = 0; j < rows.length; j++) {
        const r = rows[j];
        let k = stores.length - 1;
        while (k > 0 && r < starts[k]) k--;
        parts[k].rows.push(r - starts[k]);
        parts[k].at.push(j);
      }
      parts.forEach((p, k) => {
        if (!p.rows.length) return;
        const tmp = new Float32Array(p.rows.length * sz);
        stores[k].read(p.rows, tmp);
        p.at.forEach((j, q) => out.set(tmp.subarray(q * sz, (q + 1) * sz), j * sz));
      });
    },
  };
}

/**
 * Two sets one after the other (labels as they are). In memory when both are; otherwise a
 * streamed set over both (nothing is copied: the in-memory part is read from where it is).
 */
export function concatSets(a: ImageSet, b: ImageSet): ImageSet {
  if (a.channels !== b.channels || a.height !== b.height || a.width !== b.width)
    throw new Error(`concatSets: images of [${a.channels}, ${a.height}, ${a.width}] and [${b.channels}, ${b.height}, ${b.width}]`);
  const labels = new Int32Array(a.n + b.n);
  labels.set(a.labels);
  labels.set(b.labels, a.n);
  const n = a.n + b.n;
  if (!a.stream && !b.stream) {
    const images = new Float32Array(a.images.length + b.images.length);
    images.set(a.images);
    images.set(b.images, a.images.length);
    return { images, labels, n, channels: a.channels, height: a.height, width: a.width };
  }
  const store = concatStores([setStore(a), setStore(b)]);
  return { images: new Float32Array(0), labels, n, channels: a.channels, height: a.height, width: a.width, stream: { store, rows: Int32Array.from({ length: n }, (_, i) => i) } };
}

/** Images per chunk of a streaming pass over a set. */
const STREAM_CHUNK = 256;

/** Per-channel mean and std over a set (a streamed set in one pass, chunk by chunk, same sums). */
export function channelStats(s: ImageSet): { mean: number[]; std: number[] } {
  const hw = s.height * s.width;
  const mean: number[] = [], std: number[] = [];
  const sums = new Float64Array(s.channels), sqs = new Float64Array(s.channels);
  const chunk = s.stream ? STREAM_CHUNK : Math.max(1, s.n);
  for (let i0 = 0; i0 < s.n; i0 += chunk) {
    const m = Math.min(chunk, s.n - i0);
    const px = s.stream ? rangeImages(s, i0, m) : s.images;
    const first = s.stream ? 0 : i0;
    // per channel, samples in order then pixels in order: the order of one pass over the whole set
    for (let c = 0; c < s.channels; c++) {
      let sum = sums[c], sq = sqs[c];
      for (let i = first; i < first + m; i++) {
        const base = (i * s.channels + c) * hw;
        for (let k = 0; k < hw; k++) {
          const v = px[base + k];
          sum += v;
          sq += v * v;
        }
      }
      sums[c] = sum;
      sqs[c] = sq;
    }
  }
  for (let c = 0; c < s.channels; c++) {
    const sum = sums[c], sq = sqs[c];
    const cnt = s.n * hw;
    const m = sum / cnt;
    mean.push(m);
    std.push(Math.sqrt(Math.max(sq / cnt - m * m, 1e-12)));
  }
  return { mean, std };
}

/** In place: (x - mean[c]) / std[c] (a streamed set: its store applies it on every read). */
export function normalize(s: ImageSet, mean: number[], std: number[]): void {
  if (s.stream) {
    if (!s.stream.store.normalize) throw new Error('normalize: this streamed set cannot be normalised');
    s.stream.store.normalize(mean, std);
    return;
  }
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
  if (s.stream) throw new Error('pad: a streamed set cannot be padded');
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
  if (s.stream) {
    const rows = new Int32Array(idx.length), labels = new Int32Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      const i = idx[j];
      if (!(i >= 0 && i < s.n)) throw new Error(`subset: index ${i} outside the set's ${s.n} images`);
      rows[j] = s.stream.rows[i];
      labels[j] = s.labels[i];
    }
    return { ...s, images: new Float32Array(0), labels, n: idx.length, stream: { store: s.stream.store, rows } };
  }
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
    const images = gatherImages(s, index, new Float32Array(n * sz));
    const labels = new Int32Array(n);
    for (let j = 0; j < n; j++) labels[j] = s.labels[index[j]];
    yield { images, labels, n, index: Int32Array.from(index) };
  }
}
