// IDX files (the MNIST family's format, LeCun et al.): a big-endian header (magic 0x00000803
// for u8 images [n, rows, cols], 0x00000801 for u8 labels [n]) then the raw bytes, each file
// plain or gzipped (detected by its magic bytes). Loads a train/t10k pair of image and label
// files into one-channel [0, 1] image sets; normalisation and padding are the registry's job.
import * as path from 'path';
import { ImageDataset, ImageSet } from './dataset';
import { bytesToUnit, findFile, readMaybeGzip, requireDir } from './files';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxArray {
  dims: number[];
  /** the u8 payload (a view into the file's bytes) */
  data: Uint8Array;
}

/** Parses a u8 IDX buffer with the expected magic; `what` names the source in errors. */
export function parseIdx(buf: Uint8Array, expectedMagic: number, what: string): IdxArray {
  if (buf.length < 4) throw new Error(`${what}: not an IDX file (${buf.length} bytes, shorter than the 4-byte magic)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = dv.getUint32(0, false);
  if (magic !== expectedMagic) {
    const hex = (m: number) => '0x' + m.toString(16).padStart(8, '0');
    throw new Error(`${what}: bad IDX magic ${hex(magic)}, expected ${hex(expectedMagic)} (${expectedMagic === IDX_IMAGES_MAGIC ? 'u8 images [n, rows, cols]' : 'u8 labels [n]'})`);
  }
  const ndim = magic & 0xff;
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw new Error(`${what}: truncated IDX header: ${buf.length} bytes, expected at least ${header}`);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const v = dv.getUint32(4 + 4 * d, false);
    dims.push(v);
    count *= v;
  }
  const expected = header + count;
  if (buf.length < expected)
    throw new Error(`${what}: truncated IDX file: dims [${dims.join(', ')}] need ${expected} bytes, the file has ${buf.length}`);
  if (buf.length > expected)
    throw new Error(`${what}: IDX file has ${buf.length - expected} trailing bytes: dims [${dims.join(', ')}] need ${expected} bytes, the file has ${buf.length}`);
  return { dims, data: buf.subarray(header, expected) };
}

/** Reads and parses one IDX file, plain or gzipped. */
export function readIdxFile(file: string, expectedMagic: number): IdxArray {
  return parseIdx(readMaybeGzip(file), expectedMagic, file);
}

/** One image set from parsed IDX images and labels; labels must be in [0, classes). */
export function idxToImageSet(images: IdxArray, labels: IdxArray, classes: number, what: string): ImageSet {
  const [n, rows, cols] = images.dims;
  if (labels.dims[0] !== n) throw new Error(`${what}: ${labels.dims[0]} labels for ${n} images (the counts must match)`);
  const lab = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i];
    if (v >= classes) throw new Error(`${what}: label ${v} of image ${i} is out of range [0, ${classes})`);
    lab[i] = v;
  }
  const out = new Float32Array(n * rows * cols);
  bytesToUnit(images.data, out);
  return { images: out, labels: lab, n, channels: 1, height: rows, width: cols };
}

export interface IdxDatasetOptions {
  /** dataset name (default: the folder's name) */
  name?: string;
  /** class names; their count is the class count (default: '0'..'9') */
  classNames?: string[];
  /** appended to a missing-file error (e.g. which package provides the files) */
  missingHint?: string;
}

const SPLITS = {
  train: { images: ['train-images-idx3-ubyte', 'train-images.idx3-ubyte'], labels: ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'] },
  test: { images: ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte'], labels: ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte'] },
} as const;

/**
 * Loads train-{images,labels} and t10k-{images,labels} IDX files (each plain or .gz; the
 * `train-images.idx3-ubyte` spelling is accepted too) from dir. Pixels become [0, 1] floats.
 */
export function loadIdxDataset(dir: string, opts: IdxDatasetOptions = {}): ImageDataset {
  const classNames = opts.classNames ?? Array.from({ length: 10 }, (_, i) => String(i));
  const name = opts.name ?? path.basename(path.resolve(dir));
  const hint = opts.missingHint ? `; ${opts.missingHint}` : '';
  requireDir(dir, `${name} (IDX)`, opts.missingHint);
  const load = (split: 'train' | 'test'): ImageSet => {
    const names = SPLITS[split];
    const find = (cands: readonly string[]) => {
      const f = findFile(dir, cands);
      if (!f) throw new Error(`${name}: missing ${cands[0]} (or ${cands[0]}.gz) in ${path.resolve(dir)}${hint}`);
      return f;
    };
    const imgFile = find(names.images), labFile = find(names.labels);
    const images = readIdxFile(imgFile, IDX_IMAGES_MAGIC);
    if (images.dims.length !== 3) throw new Error(`${imgFile}: expected 3 dims [n, rows, cols], got [${images.dims.join(', ')}]`);
    const labels = readIdxFile(labFile, IDX_LABELS_MAGIC);
    return idxToImageSet(images, labels, classNames.length, `${path.basename(imgFile)} / ${path.basename(labFile)} in ${dir}`);
  };
  const train = load('train');
  const test = load('test');
  if (train.height !== test.height || train.width !== test.width)
    throw new Error(`${name}: train images are ${train.height}x${train.width} but test images are ${test.height}x${test.width} (in ${path.resolve(dir)})`);
  return { name, classes: classNames.length, classNames: [...classNames], train, test, source: path.resolve(dir) };
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Fashion-MNIST (Xiao et al. 2017) from IDX files; Debian's dataset-fashion-mnist installs them at FASHION_MNIST_DIR. */
export function loadFashionMnist(dir: string = FASHION_MNIST_DIR): ImageDataset {
  return loadIdxDataset(dir, {
    name: 'fashion-mnist',
    classNames: FASHION_MNIST_CLASSES,
    missingHint: `\`apt-get install dataset-fashion-mnist\` installs the files in ${FASHION_MNIST_DIR}`,
  });
}

/** MNIST digits from the original IDX files (the built-in loadMnist needs no files). */
export function loadMnistIdx(dir: string): ImageDataset {
  return loadIdxDataset(dir, { name: 'mnist' });
}
