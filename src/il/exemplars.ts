// iCaRL's exemplar memory (Rebuffi et al., CVPR 2017): herding selection, a fixed budget of M
// exemplars in total rebalanced to m = floor(M / classes seen) per class, feature extraction with
// flip averaging, class means and the nearest-mean-of-exemplars (NME) classifier.
// Policy: the memory OWNS copies of its exemplars (normalised floats, as the model sees them), one
// array per class in herding order; reduce(m) keeps each class's first m in a new array so no
// dropped image stays referenced. Storage is lossless: while every channel holds at most 256
// distinct float values (true of u8-origin images such as CIFAR and MNIST after per-channel
// normalisation) pixels are stored as u8 codes into a per-channel float32 palette; the first
// image that would need a 257th value switches the whole memory to plain float32 for good.
// bytes() counts what is stored (codes or floats, palettes, an int32 label per exemplar);
// storedBytesU8() is the paper-style size (u8 pixels + int32 labels, no palette): the number for
// MemoryBreakdown.exemplars. With palette storage the two differ only by the palettes (<= 1 KiB
// per channel).
// Features: [n, d] row-major float32; all feature math (herding, means, distances) is in float64.
import { Tensor, tidy, noGrad, ops } from '../engine';
import type { ResNet } from '../nn';
import type { ImageSet } from '../data/dataset';

function fail(fn: string, msg: string): never {
  throw new Error(`${fn}: ${msg}`);
}

function checkInt(fn: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) fail(fn, `${name} must be an integer >= ${min}, got ${v}`);
}

/** Images without labels: [n, channels, height, width] row-major. An ImageSet is one. */
export interface ImageBatch {
  images: Float32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
}

function checkBatch(fn: string, b: ImageBatch): number {
  checkInt(fn, 'n', b.n, 0);
  checkInt(fn, 'channels', b.channels, 1);
  checkInt(fn, 'height', b.height, 1);
  checkInt(fn, 'width', b.width, 1);
  const size = b.channels * b.height * b.width;
  if (!(b.images instanceof Float32Array)) fail(fn, 'images must be a Float32Array');
  if (b.images.length !== b.n * size)
    fail(fn, `${b.images.length} values do not form [${b.n}, ${b.channels}, ${b.height}, ${b.width}] (${b.n * size} expected)`);
  return size;
}

// ------------------------------------------------------------------ feature math

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
            const x = Tensor.fromArray(images.images.subarray(b * size, (b + nb) * size), [nb, images.channels, images.height, images.width], { device });
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
  indices.forEach((i, j) => images.set(classImages.images.subarray(i * size, (i + 1) * size), j * size));
  return { indices, exemplars: { images, n: m, channels: classImages.channels, height: classImages.height, width: classImages.width } };
}

// ------------------------------------------------------------------ the memory

/**
 * Up to 256 distinct float32 values of one channel, matched by bit pattern (so -0, 0 and NaN
 * payloads stay exact): an open-addressing table of 1024 slots (load <= 1/4) over the bits.
 */
class Palette {
  readonly values = new Float32Array(256);
  private readonly bits = new Uint32Array(this.values.buffer);
  private readonly keys = new Uint32Array(1024);
  private readonly slots = new Int16Array(1024).fill(-1);
  size = 0;

  private static hash(b: number): number {
    return Math.imul(b, 0x9e3779b1) >>> 22;
  }

  /** The code of a bit pattern, adding it if new; -1 when the palette is full. */
  code(b: number): number {
    let h = Palette.hash(b);
    for (;;) {
      const s = this.slots[h];
      if (s < 0) break;
      if (this.keys[h] === b) return s;
      h = (h + 1) & 1023;
    }
    if (this.size === 256) return -1;
    this.keys[h] = b;
    this.slots[h] = this.size;
    this.bits[this.size] = b;
    return this.size++;
  }

  /** Drops the entries from `size` on (undo of a failed encode). */
  truncate(size: number): void {
    if (size === this.size) return;
    this.slots.fill(-1);
    const n = size;
    this.size = 0;
    for (let i = 0; i < n; i++) this.code(this.bits[i]);
  }
}

/** How the memory holds pixels: u8 codes into per-channel palettes, or plain float32. */
export type ExemplarStorage = 'u8-palette' | 'f32';

/** JSON-able part of a saved memory. */
export interface ExemplarMemoryMeta {
  format: 'm2kd-exemplars';
  version: 1;
  /** M: total budget */
  total: number;
  channels: number;
  height: number;
  width: number;
  /** dataset label ids, in the order they were added */
  classes: number[];
  /** exemplars stored per class (same order) */
  counts: number[];
  /** the memory's `compact` option (absent: true) */
  compact?: boolean;
  /** how the memory held the pixels when saved (informational for ExemplarMemoryState) */
  storage?: ExemplarStorage;
  /** palette entries per channel: required by ExemplarMemoryCompactState, else informational */
  paletteSizes?: number[];
}

/**
 * A saved memory (toState): metadata plus every class's exemplars as float32 pixels,
 * concatenated in class order. fromState re-encodes them (losslessly) as the memory stores them.
 */
export interface ExemplarMemoryState {
  meta: ExemplarMemoryMeta;
  images: Float32Array;
}

/**
 * The same, as stored (toCompactState, 'u8-palette' storage only): u8 codes [n, c, h, w] and the
 * channels' palettes concatenated (meta.paletteSizes entries each): about 1/4 of the size.
 */
export interface ExemplarMemoryCompactState {
  meta: ExemplarMemoryMeta;
  codes: Uint8Array;
  palette: Float32Array;
}

export interface ExemplarMemoryOptions {
  /** try lossless u8 palette storage (default true); false stores float32 from the start */
  compact?: boolean;
}

/**
 * A fixed budget of `total` (M) exemplars over all seen classes. Typical step (iCaRL):
 *   const m = mem.perClass(mem.classes().length + newClasses.length);
 *   mem.reduce(m);
 *   for (const c of newClasses) mem.add(c, selectExemplars(model, imagesOf(c), m).exemplars);
 * Each class's list is kept in herding order, so reduce(m) keeps the best m.
 */
export class ExemplarMemory {
  readonly total: number;
  private dims: { channels: number; height: number; width: number } | null = null;
  private readonly order: number[] = [];
  private readonly store = new Map<number, Uint8Array | Float32Array>();
  /** per channel: palette values and value -> code; null in float32 mode */
  private palettes: Palette[] | null;

  /** the `compact` option: try u8-palette storage */
  readonly compact: boolean;

  constructor(total: number, opts: ExemplarMemoryOptions = {}) {
    checkInt('ExemplarMemory', 'total (M)', total, 1);
    this.total = total;
    this.compact = opts.compact ?? true;
    this.palettes = this.compact ? [] : null;
  }

  /** Dataset label ids of the stored classes, in the order they were added. */
  classes(): number[] {
    return this.order.slice();
  }

  has(cls: number): boolean {
    return this.store.has(cls);
  }

  /** 'u8-palette' while every channel fits 256 distinct values (or nothing is stored yet), else 'f32'. */
  get storage(): ExemplarStorage {
    return this.palettes ? 'u8-palette' : 'f32';
  }

  /**
   * m = floor(M / seen): exemplars per class once `seen` classes share the memory (default: the
   * classes stored now; 0 when none). Throws when M < seen (not one exemplar per class).
   */
  perClass(seen: number = this.order.length): number {
    checkInt('ExemplarMemory.perClass', 'seen', seen, 0);
    if (seen === 0) return 0;
    if (seen > this.total) fail('ExemplarMemory.perClass', `a memory of M = ${this.total} exemplars cannot hold one per class for ${seen} classes`);
    return Math.floor(this.total / seen);
  }

  /** Image size per exemplar (channels × height × width), 0 before the first add. */
  get imageSize(): number {
    return this.dims ? this.dims.channels * this.dims.height * this.dims.width : 0;
  }

  /** Exemplars stored for cls (0 if none). */
  count(cls: number): number {
    const a = this.store.get(cls);
    return a ? a.length / this.imageSize : 0;
  }

  /** Exemplars stored in all. */
  get size(): number {
    let s = 0;
    for (const c of this.order) s += this.count(c);
    return s;
  }

  /**
   * Stores a copy of a new class's exemplars, in the order given (herding order). The class
   * must be new, the image shape the same as the others', and the budget must hold them:
   * reduce() the old classes first.
   */
  add(cls: number, exemplars: ImageBatch): void {
    const fn = 'ExemplarMemory.add';
    checkInt(fn, 'class', cls, 0);
    checkBatch(fn, exemplars);
    if (this.store.has(cls)) fail(fn, `class ${cls} already has exemplars`);
    if (exemplars.n < 1) fail(fn, `no exemplars given for class ${cls}`);
    const { channels, height, width } = exemplars;
    if (this.dims && (this.dims.channels !== channels || this.dims.height !== height || this.dims.width !== width))
      fail(fn, `images of class ${cls} are [${channels}, ${height}, ${width}] but the memory holds [${this.dims.channels}, ${this.dims.height}, ${this.dims.width}]`);
    const used = this.size;
    if (used + exemplars.n > this.total)
      fail(fn, `${exemplars.n} exemplars of class ${cls} do not fit: ${used} of M = ${this.total} are used (reduce() the old classes first)`);
    this.dims ??= { channels, height, width };
    let stored: Uint8Array | Float32Array | null = null;
    if (this.palettes) {
      stored = this.encode(exemplars.images, exemplars.n);
      if (!stored) this.toFloat();
    }
    this.store.set(cls, stored ?? exemplars.images.slice());
    this.order.push(cls);
  }

  /** u8 codes of images under the palettes, extending them; null (palettes untouched) if a channel would pass 256 values. */
  private encode(images: Float32Array, n: number): Uint8Array | null {
    const { channels: C } = this.dims!;
    const hw = this.imageSize / C;
    const pal = this.palettes!;
    while (pal.length < C) pal.push(new Palette());
    const before = pal.map((p) => p.size);
    const bits = new Uint32Array(images.buffer, images.byteOffset, images.length);
    const codes = new Uint8Array(images.length);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < C; c++) {
        const p = pal[c], base = (i * C + c) * hw;
        for (let k = 0; k < hw; k++) {
          const code = p.code(bits[base + k]);
          if (code < 0) {
            pal.forEach((q, cc) => q.truncate(before[cc]));
            return null;
          }
          codes[base + k] = code;
        }
      }
    return codes;
  }

  private decode(a: Uint8Array | Float32Array): Float32Array {
    if (a instanceof Float32Array) return a.slice();
    const { channels: C } = this.dims!;
    const hw = this.imageSize / C;
    const out = new Float32Array(a.length);
    const pal = this.palettes!;
    for (let b = 0; b < a.length; b += hw) {
      const v = pal[(b / hw) % C].values;
      for (let k = 0; k < hw; k++) out[b + k] = v[a[b + k]];
    }
    return out;
  }

  /** Switches to float32 storage for good (a channel needs more than 256 distinct values). */
  private toFloat(): void {
    if (!this.palettes) return;
    for (const c of this.order) this.store.set(c, this.decode(this.store.get(c)!));
    this.palettes = null;
  }

  /** Keeps the first m >= 1 exemplars of every class (a class with fewer keeps all it has). */
  reduce(m: number): void {
    checkInt('ExemplarMemory.reduce', 'm', m, 1);
    const size = this.imageSize;
    for (const c of this.order) {
      const a = this.store.get(c)!;
      if (a.length > m * size) this.store.set(c, a.slice(0, m * size));
    }
  }

  /** One class's exemplars (a copy) as an ImageSet, in herding order, labels = cls. */
  classSet(cls: number): ImageSet {
    const a = this.store.get(cls);
    if (!a) fail('ExemplarMemory.classSet', `class ${cls} has no exemplars`);
    const n = a.length / this.imageSize;
    return { images: this.decode(a), labels: new Int32Array(n).fill(cls), n, ...this.dims! };
  }

  /**
   * All exemplars (a copy) as an ImageSet: classes in the order added, each in herding order;
   * labels are dataset label ids. Empty memory: n = 0 (and zero dims before the first add).
   */
  imageSet(): ImageSet {
    const n = this.size, size = this.imageSize;
    const images = new Float32Array(n * size), labels = new Int32Array(n);
    let k = 0;
    for (const c of this.order) {
      const a = this.store.get(c)!;
      images.set(this.decode(a), k * size);
      labels.fill(c, k, k + a.length / size);
      k += a.length / size;
    }
    const dims = this.dims ?? { channels: 0, height: 0, width: 0 };
    return { images, labels, n, ...dims };
  }

  /**
   * Bytes actually stored: the pixels as held (1 byte per u8 code or 4 per float32), the
   * palettes (4 bytes per entry) and a 4-byte (int32) label per exemplar.
   */
  bytes(): number {
    let b = 0;
    for (const a of this.store.values()) b += a.byteLength;
    if (this.palettes) for (const p of this.palettes) b += 4 * p.size;
    return b + 4 * this.size;
  }

  /**
   * Paper-style size: the exemplars as u8 pixels (1 byte each) plus a 4-byte label per
   * exemplar. This is the number for MemoryBreakdown.exemplars; bytes() is what this process
   * holds (equal to this plus the palettes while storage is 'u8-palette').
   */
  storedBytesU8(): number {
    const n = this.size;
    return n * this.imageSize + 4 * n;
  }

  private meta(): ExemplarMemoryMeta {
    const d = this.dims ?? { channels: 0, height: 0, width: 0 };
    return {
      format: 'm2kd-exemplars',
      version: 1,
      total: this.total,
      channels: d.channels,
      height: d.height,
      width: d.width,
      classes: this.classes(),
      counts: this.order.map((c) => this.count(c)),
      compact: this.compact,
      storage: this.storage,
      paletteSizes: (this.palettes ?? []).map((p) => p.size),
    };
  }

  /** A checkpointable copy: JSON-able metadata and the float32 pixels in class order. */
  toState(): ExemplarMemoryState {
    return { meta: this.meta(), images: this.imageSet().images };
  }

  /**
   * A checkpointable copy as stored (u8 codes + palettes, ~1/4 of toState's size); null when
   * the memory holds float32 (storage 'f32'): use toState then.
   */
  toCompactState(): ExemplarMemoryCompactState | null {
    if (!this.palettes) return null;
    const codes = new Uint8Array(this.size * this.imageSize);
    let k = 0;
    for (const c of this.order) {
      const a = this.store.get(c)!;
      codes.set(a, k);
      k += a.length;
    }
    const pals = this.palettes;
    const palette = new Float32Array(pals.reduce((a, p) => a + p.size, 0));
    let o = 0;
    for (const p of pals) {
      palette.set(p.values.subarray(0, p.size), o);
      o += p.size;
    }
    return { meta: this.meta(), codes, palette };
  }

  /** Rebuilds a memory from toState() or toCompactState() output, checking that the parts agree. */
  static fromState(state: ExemplarMemoryState | ExemplarMemoryCompactState): ExemplarMemory {
    const fn = 'ExemplarMemory.fromState';
    const meta = state?.meta;
    if (!meta || meta.format !== 'm2kd-exemplars') fail(fn, `not an exemplar memory state (format ${String(meta?.format)})`);
    if (meta.version !== 1) fail(fn, `unsupported version ${String(meta.version)}`);
    const isCompact = 'codes' in state;
    const data = isCompact ? state.codes : (state as ExemplarMemoryState).images;
    if (isCompact ? !(data instanceof Uint8Array) : !(data instanceof Float32Array))
      fail(fn, isCompact ? 'codes must be a Uint8Array' : 'images must be a Float32Array');
    if (!Array.isArray(meta.classes) || !Array.isArray(meta.counts) || meta.classes.length !== meta.counts.length)
      fail(fn, 'classes and counts must be arrays of the same length');
    meta.counts.forEach((n, j) => checkInt(fn, `counts[${j}]`, n, 1));
    const mem = new ExemplarMemory(meta.total, { compact: meta.compact ?? true });
    const total = meta.counts.reduce((a, b) => a + b, 0);
    if (meta.classes.length === 0) {
      if (data.length !== 0) fail(fn, `${data.length} pixel values for an empty memory`);
      return mem;
    }
    const size = meta.channels * meta.height * meta.width;
    if (data.length !== total * size)
      fail(fn, `${data.length} pixel values for ${total} exemplars of [${meta.channels}, ${meta.height}, ${meta.width}] (${total * size} expected)`);
    let images: Float32Array;
    if (isCompact) {
      const palette = (state as ExemplarMemoryCompactState).palette;
      if (!(palette instanceof Float32Array)) fail(fn, 'palette must be a Float32Array');
      const sizes = meta.paletteSizes;
      if (!Array.isArray(sizes) || sizes.length !== meta.channels) fail(fn, `paletteSizes must list ${meta.channels} channels`);
      sizes.forEach((s, c) => {
        checkInt(fn, `paletteSizes[${c}]`, s, 0);
        if (s > 256) fail(fn, `paletteSizes[${c}] = ${s} is over 256`);
      });
      const sum = sizes.reduce((a, b) => a + b, 0);
      if (palette.length !== sum) fail(fn, `palette has ${palette.length} values, paletteSizes sum to ${sum}`);
      const offs = sizes.map((_, c) => sizes.slice(0, c).reduce((a, b) => a + b, 0));
      const hw = meta.height * meta.width;
      images = new Float32Array(data.length);
      for (let b = 0; b < images.length; b += hw) {
        const c = (b / hw) % meta.channels;
        for (let k = 0; k < hw; k++) {
          const code = data[b + k];
          if (code >= sizes[c]) fail(fn, `pixel code ${code} is outside the ${sizes[c]}-entry palette of channel ${c}`);
          images[b + k] = palette[offs[c] + code];
        }
      }
    } else images = data as Float32Array;
    let k = 0;
    meta.classes.forEach((c, j) => {
      const n = meta.counts[j];
      mem.add(c, { images: images.subarray(k * size, (k + n) * size), n, channels: meta.channels, height: meta.height, width: meta.width });
      k += n;
    });
    return mem;
  }
}
