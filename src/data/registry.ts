// One entry point for every dataset by name: loads it, pads 28x28 digits to 32x32, keeps the
// first trainPerClass training images of each class (file order), and normalises both splits
// with the per-channel statistics of the training split that is kept. Also class-subset helpers.
import * as fs from 'fs';
import * as path from 'path';
import { ImageDataset, ImageSet, pad, subset } from './dataset';
import { loadMnist } from './mnist';
import { FASHION_MNIST_DIR, loadFashionMnist, loadMnistIdx } from './idx';
import { loadCifar10, loadCifar100 } from './cifar';
import { FolderEvent, FolderFit, loadFolderDataset } from './folder';
import { normalizeDataset } from './transforms';

export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'cifar10', 'cifar100', 'folder'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

const ALIASES: Record<string, DatasetName> = {
  mnist: 'mnist',
  'fashion-mnist': 'fashion-mnist',
  fashion_mnist: 'fashion-mnist',
  fashionmnist: 'fashion-mnist',
  cifar10: 'cifar10',
  'cifar-10': 'cifar10',
  cifar100: 'cifar100',
  'cifar-100': 'cifar100',
  folder: 'folder',
  imagefolder: 'folder',
};

export interface LoadDatasetOptions {
  /** where the files are: required for cifar10, cifar100 and folder; fashion-mnist defaults to
   *  /usr/share/datasets/fashion-mnist; mnist without a path uses the built-in digits */
  path?: string;
  /** image side: folder resizes to it (default 32); mnist/fashion-mnist take 28 (as stored) or 32 (padded, default); cifar 32 */
  size?: number;
  /** keep only the first N training images of each class, in file order */
  trainPerClass?: number;
  /** keep only the first N test images of each class, in file order */
  testPerClass?: number;
  /** normalise per channel with the training split's statistics (default true) */
  normalize?: boolean;
  /** cifar100: fine (100 classes, default) or coarse (20 superclasses) labels */
  labels?: 'fine' | 'coarse';
  /** folder: resize mode and decoded-image cache folder (false: no cache) */
  fit?: FolderFit;
  cacheDir?: string | false;
  /** folder: read batches from the decode cache on disk instead of holding the images (default 'auto': when they would pass 1 GiB as float32) */
  stream?: boolean | 'auto';
  onEvent?: (e: FolderEvent) => void;
  /** mnist without a path: fraction of each built-in digit used for training (default 0.8) */
  trainFraction?: number;
}

/** The canonical name for a dataset name or alias (case-insensitive), or a clear error. */
export function datasetName(name: string): DatasetName {
  const n = ALIASES[String(name).toLowerCase()];
  if (!n) throw new Error(`unknown dataset ${JSON.stringify(name)}; valid names: ${DATASET_NAMES.join(', ')}`);
  return n;
}

function checkCount(v: number | undefined, what: string): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`loadDataset: ${what} must be a positive integer, got ${v}`);
}

/** Loads a dataset by name (see LoadDatasetOptions), ready for training. */
export async function loadDataset(name: DatasetName | string, opts: LoadDatasetOptions = {}): Promise<ImageDataset> {
  const n = datasetName(name);
  checkCount(opts.trainPerClass, 'trainPerClass');
  checkCount(opts.testPerClass, 'testPerClass');
  if (opts.path !== undefined && !fs.existsSync(opts.path)) throw new Error(`${n}: path ${path.resolve(opts.path)} does not exist`);
  const needPath = (): string => {
    if (opts.path === undefined) throw new Error(`${n}: needs a path (the folder with its files)`);
    return opts.path;
  };
  const digitSize = (): number => {
    const s = opts.size ?? 32;
    if (s !== 28 && s !== 32) throw new Error(`${n}: size must be 28 (as stored) or 32 (zero-padded), got ${s}`);
    return s;
  };
  let ds: ImageDataset;
  switch (n) {
    case 'mnist': {
      const size = digitSize();
      ds = opts.path === undefined ? loadMnist({ trainFraction: opts.trainFraction, pad32: false, normalize: false }) : loadMnistIdx(opts.path);
      ds = padDigits(ds, size);
      break;
    }
    case 'fashion-mnist': {
      const size = digitSize();
      ds = padDigits(loadFashionMnist(opts.path ?? FASHION_MNIST_DIR), size);
      break;
    }
    case 'cifar10':
    case 'cifar100': {
      if (opts.size !== undefined && opts.size !== 32) throw new Error(`${n}: images are 32x32, size ${opts.size} is not supported`);
      ds = n === 'cifar10' ? loadCifar10(needPath()) : loadCifar100(needPath(), { labels: opts.labels });
      break;
    }
    case 'folder':
      ds = await loadFolderDataset(needPath(), { size: opts.size ?? 32, fit: opts.fit, cacheDir: opts.cacheDir, onEvent: opts.onEvent, stream: opts.stream ?? 'auto' });
      break;
  }
  if (opts.trainPerClass !== undefined) ds.train = firstPerClass(ds.train, opts.trainPerClass, ds.classes);
  if (opts.testPerClass !== undefined) ds.test = firstPerClass(ds.test, opts.testPerClass, ds.classes);
  if (opts.normalize ?? true) normalizeDataset(ds);
  return ds;
}

function padDigits(ds: ImageDataset, size: number): ImageDataset {
  if (ds.train.height === size && ds.train.width === size) return ds;
  const p = (size - ds.train.height) / 2;
  if (ds.train.height !== ds.train.width || !Number.isInteger(p) || p < 0)
    throw new Error(`${ds.name}: cannot pad ${ds.train.height}x${ds.train.width} images to ${size}x${size}`);
  return { ...ds, train: pad(ds.train, p), test: pad(ds.test, p) };
}

/** For each class c in [0, classes), the positions of its samples in file order. */
export function classIndices(set: ImageSet, classes?: number): Int32Array[] {
  let k = classes ?? 0;
  if (classes === undefined) for (let i = 0; i < set.n; i++) k = Math.max(k, set.labels[i] + 1);
  const counts = new Int32Array(k);
  for (let i = 0; i < set.n; i++) {
    const l = set.labels[i];
    if (l < 0 || l >= k) throw new Error(`classIndices: label ${l} of sample ${i} is out of range [0, ${k})`);
    counts[l]++;
  }
  const out = Array.from(counts, (c) => new Int32Array(c));
  const fill = new Int32Array(k);
  for (let i = 0; i < set.n; i++) {
    const l = set.labels[i];
    out[l][fill[l]++] = i;
  }
  return out;
}

/** The first n samples of each class (fewer where a class has fewer), keeping file order. */
export function firstPerClass(set: ImageSet, n: number, classes?: number): ImageSet {
  checkCount(n, 'per-class count');
  const seen = new Map<number, number>();
  const keep: number[] = [];
  for (let i = 0; i < set.n; i++) {
    const l = set.labels[i];
    if (classes !== undefined && (l < 0 || l >= classes)) throw new Error(`firstPerClass: label ${l} of sample ${i} is out of range [0, ${classes})`);
    const c = seen.get(l) ?? 0;
    if (c < n) {
      keep.push(i);
      seen.set(l, c + 1);
    }
  }
  return subset(set, keep);
}

/** The samples whose label is in classes, in file order, with their labels unchanged. */
export function subsetClasses(set: ImageSet, classes: readonly number[]): ImageSet {
  const want = new Set<number>();
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0) throw new Error(`subsetClasses: class ids must be non-negative integers, got ${c}`);
    want.add(c);
  }
  const keep: number[] = [];
  for (let i = 0; i < set.n; i++) if (want.has(set.labels[i])) keep.push(i);
  return subset(set, keep);
}
