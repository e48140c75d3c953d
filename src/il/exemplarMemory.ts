// iCaRL's exemplar memory: a fixed budget of M exemplars in total, rebalanced to
// m = floor(M / classes seen) per class.
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
import type { ImageSet, ImageStore } from '../data/dataset';
import { fail, checkInt } from '../engine/errors';
import { ImageBatch, checkBatch } from './features';
import { Palette } from './palette';

import { exemplarBytesU8 } from './exemplarState';
export { exemplarBytesU8 };
export type { ExemplarStorage, ExemplarMemoryMeta, ExemplarMemoryState, ExemplarMemoryCompactState } from './exemplarState';
import type { ExemplarStorage, ExemplarMemoryMeta, ExemplarMemoryState, ExemplarMemoryCompactState } from './exemplarState';

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
   * All exemplars as a streamed ImageSet (same order and labels as imageSet()) whose images are
   * decoded from the memory's own arrays (u8 codes or floats) batch by batch instead of copied
   * whole: for training sets of images too large to hold as floats. It reads the arrays as they
   * are now; later reduce() and add() calls make new arrays and leave these intact.
   */
  streamedSet(): ImageSet {
    const n = this.size, size = this.imageSize;
    const dims = this.dims ?? { channels: 0, height: 0, width: 0 };
    const parts = this.order.map((c) => this.store.get(c)!);
    const pal = this.palettes ? this.palettes.map((p) => p.values.slice(0, p.size)) : null;
    const labels = new Int32Array(n);
    const starts: number[] = [];
    let k = 0;
    this.order.forEach((c, j) => {
      starts.push(k);
      labels.fill(c, k, k + parts[j].length / size);
      k += parts[j].length / size;
    });
    const hw = dims.height * dims.width;
    const store: ImageStore = {
      n,
      ...dims,
      read(rows, out) {
        for (let j = 0; j < rows.length; j++) {
          const r = rows[j];
          if (!(r >= 0 && r < n)) fail('ExemplarMemory.streamedSet', `row ${r} outside [0, ${n})`);
          let q = parts.length - 1;
          while (q > 0 && r < starts[q]) q--;
          const a = parts[q], src = (r - starts[q]) * size, dst = j * size;
          if (a instanceof Float32Array) out.set(a.subarray(src, src + size), dst);
          else
            for (let c = 0; c < dims.channels; c++) {
              const v = pal![c], s0 = src + c * hw, d0 = dst + c * hw;
              for (let p = 0; p < hw; p++) out[d0 + p] = v[a[s0 + p]];
            }
        }
      },
    };
    return { images: new Float32Array(0), labels, n, ...dims, stream: { store, rows: Int32Array.from({ length: n }, (_, i) => i) } };
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
    return exemplarBytesU8(this.size, this.imageSize);
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
