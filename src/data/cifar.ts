// CIFAR-10 and CIFAR-100 in their official binary formats (Krizhevsky 2009). CIFAR-10: records
// of 1 label byte + 3072 pixel bytes in data_batch_1..5.bin and test_batch.bin; CIFAR-100:
// records of coarse label, fine label, 3072 pixel bytes in train.bin and test.bin. Pixels are
// stored as 1024 R, 1024 G, 1024 B row-major bytes, i.e. already CHW: they become [0, 1] floats.
// Each file may be plain or gzipped; the folder given may be the extracted folder
// (cifar-10-batches-bin, cifar-100-binary) or its parent.
import * as fs from 'fs';
import * as path from 'path';
import { ImageDataset, ImageSet } from './dataset';
import { bytesToUnit, findFile, isFile, readMaybeGzip, requireDir } from './files';

const PIXELS = 3 * 32 * 32;

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export const CIFAR100_FINE_CLASSES = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
  'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
  'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur',
  'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
  'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
  'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
  'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
  'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor',
  'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
];

export const CIFAR100_COARSE_CLASSES = [
  'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables', 'household_electrical_devices',
  'household_furniture', 'insects', 'large_carnivores', 'large_man-made_outdoor_things', 'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores', 'medium_mammals', 'non-insect_invertebrates', 'people', 'reptiles', 'small_mammals',
  'trees', 'vehicles_1', 'vehicles_2',
];

/**
 * Decodes records of `labelBytes` label bytes then 3072 pixel bytes from several buffers into
 * one set. labelIndex picks which label byte is the label; labels must be < classes.
 */
export function decodeCifarRecords(
  parts: { file: string; bytes: Uint8Array }[],
  labelBytes: number,
  labelIndex: number,
  classes: number,
): ImageSet {
  const rec = labelBytes + PIXELS;
  let n = 0;
  for (const p of parts) {
    if (p.bytes.length % rec !== 0)
      throw new Error(
        `${p.file}: truncated or corrupt CIFAR file: ${p.bytes.length} bytes is not a whole number of ${rec}-byte records ` +
          `(${Math.floor(p.bytes.length / rec)} records and ${p.bytes.length % rec} bytes left over)`,
      );
    if (p.bytes.length === 0) throw new Error(`${p.file}: empty CIFAR file (no records)`);
    n += p.bytes.length / rec;
  }
  const images = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  let k = 0;
  for (const p of parts) {
    const m = p.bytes.length / rec;
    for (let r = 0; r < m; r++, k++) {
      const off = r * rec;
      const lab = p.bytes[off + labelIndex];
      if (lab >= classes) throw new Error(`${p.file}: label ${lab} of record ${r} is out of range [0, ${classes})`);
      labels[k] = lab;
      bytesToUnit(p.bytes.subarray(off + labelBytes, off + rec), images, k * PIXELS);
    }
  }
  return { images, labels, n, channels: 3, height: 32, width: 32 };
}

/** The folder holding the files: dir itself if it has `marker`, else dir/sub if that does. */
function resolveFolder(dir: string, sub: string, marker: string, what: string): string {
  requireDir(dir, what);
  if (findFile(dir, [marker])) return dir;
  const inner = path.join(dir, sub);
  if (findFile(inner, [marker])) return inner;
  const archives = fs.readdirSync(dir).filter((f) => /\.(tar\.gz|tgz|tar)$/.test(f));
  const extra = archives.length ? `; found ${archives.join(', ')}: extract it first (tar xzf ${archives[0]})` : '';
  throw new Error(`${what}: missing ${marker} (or ${marker}.gz) in ${path.resolve(dir)} and in ${inner}${extra}`);
}

function readParts(dir: string, names: string[], what: string): { file: string; bytes: Uint8Array }[] {
  return names.map((n) => {
    const f = findFile(dir, [n]);
    if (!f) throw new Error(`${what}: missing ${n} (or ${n}.gz) in ${path.resolve(dir)}`);
    return { file: f, bytes: readMaybeGzip(f) };
  });
}

/** Class names from a text file (one per line, blank lines ignored), or the defaults when it is absent. */
function readNames(dir: string, file: string, defaults: string[]): string[] {
  const p = path.join(dir, file);
  if (!isFile(p)) return [...defaults];
  const names = fs
    .readFileSync(p, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== defaults.length) throw new Error(`${p}: ${names.length} class names, expected ${defaults.length}`);
  return names;
}

/** CIFAR-10 binary version: dir is cifar-10-batches-bin or the folder containing it. */
export function loadCifar10(dir: string): ImageDataset {
  const what = 'cifar10';
  const d = resolveFolder(dir, 'cifar-10-batches-bin', 'data_batch_1.bin', what);
  const classNames = readNames(d, 'batches.meta.txt', CIFAR10_CLASSES);
  const train = decodeCifarRecords(readParts(d, [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), what), 1, 0, 10);
  const test = decodeCifarRecords(readParts(d, ['test_batch.bin'], what), 1, 0, 10);
  return { name: 'cifar10', classes: 10, classNames, train, test, source: path.resolve(d) };
}

export interface Cifar100Options {
  /** which label to use: the 100 fine classes (default) or the 20 superclasses */
  labels?: 'fine' | 'coarse';
}

/** CIFAR-100 binary version: dir is cifar-100-binary or the folder containing it. */
export function loadCifar100(dir: string, opts: Cifar100Options = {}): ImageDataset {
  const which = opts.labels ?? 'fine';
  if (which !== 'fine' && which !== 'coarse') throw new Error(`cifar100: labels must be 'fine' or 'coarse', got ${JSON.stringify(which)}`);
  const what = 'cifar100';
  const d = resolveFolder(dir, 'cifar-100-binary', 'train.bin', what);
  const fine = which === 'fine';
  const classNames = fine ? readNames(d, 'fine_label_names.txt', CIFAR100_FINE_CLASSES) : readNames(d, 'coarse_label_names.txt', CIFAR100_COARSE_CLASSES);
  const classes = classNames.length;
  const train = decodeCifarRecords(readParts(d, ['train.bin'], what), 2, fine ? 1 : 0, classes);
  const test = decodeCifarRecords(readParts(d, ['test.bin'], what), 2, fine ? 1 : 0, classes);
  return { name: fine ? 'cifar100' : 'cifar100-coarse', classes, classNames, train, test, source: path.resolve(d) };
}
