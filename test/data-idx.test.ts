// IDX loader (MNIST / Fashion-MNIST files): plain and gzipped files written here in the official
// format, pixel and label round trip, the alternative file spelling, and a clear error for every
// kind of bad input. Loads the real Fashion-MNIST when Debian's dataset-fashion-mnist is installed.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  loadIdxDataset,
  loadFashionMnist,
  parseIdx,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  loadDataset,
} from '../src/data';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-idx-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, Buffer.from(data)]);
}

interface Split {
  pixels: Uint8Array;
  labels: Uint8Array;
  n: number;
}
const ROWS = 28, COLS = 28;
function makeSplit(n: number, seed: number, classes = 10): Split {
  const pixels = new Uint8Array(n * ROWS * COLS);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + seed * 7) & 0xff;
  const labels = Uint8Array.from({ length: n }, (_, i) => (i * 3 + seed) % classes);
  return { pixels, labels, n };
}

/** Writes the four files; gz picks which are gzipped (train images, train labels, test images, test labels). */
function writeSet(dir: string, train: Split, test: Split, gz = [true, false, false, true], spelling = '-'): void {
  fs.mkdirSync(dir, { recursive: true });
  const files: [string, Buffer][] = [
    [`train-images${spelling}idx3-ubyte`, idx(IDX_IMAGES_MAGIC, [train.n, ROWS, COLS], train.pixels)],
    [`train-labels${spelling}idx1-ubyte`, idx(IDX_LABELS_MAGIC, [train.n], train.labels)],
    [`t10k-images${spelling}idx3-ubyte`, idx(IDX_IMAGES_MAGIC, [test.n, ROWS, COLS], test.pixels)],
    [`t10k-labels${spelling}idx1-ubyte`, idx(IDX_LABELS_MAGIC, [test.n], test.labels)],
  ];
  files.forEach(([name, buf], i) => fs.writeFileSync(path.join(dir, gz[i] ? name + '.gz' : name), gz[i] ? zlib.gzipSync(buf) : buf));
}

const train = makeSplit(30, 1), test = makeSplit(12, 2);

t.test('plain and gzipped IDX files load with exact pixels and labels', async (t) => {
  for (const [k, gz] of [[true, false, false, true], [false, false, false, false], [true, true, true, true]].entries()) {
    const dir = path.join(tmp, `ok${k}`);
    writeSet(dir, train, test, gz);
    const ds = loadIdxDataset(dir, { name: 'digits' });
    t.equal(ds.name, 'digits');
    t.equal(ds.classes, 10);
    t.same(ds.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (const [set, src] of [[ds.train, train], [ds.test, test]] as const) {
      t.equal(set.n, src.n);
      t.same([set.channels, set.height, set.width], [1, ROWS, COLS]);
      t.same(Array.from(set.labels), Array.from(src.labels));
      let bad = 0;
      for (let i = 0; i < src.pixels.length; i++) if (set.images[i] !== Math.fround(src.pixels[i] / 255)) bad++;
      t.equal(bad, 0, `all ${src.pixels.length} pixels are byte / 255 (gz ${gz})`);
    }
  }
});

t.test('the train-images.idx3-ubyte spelling and a plain file named .gz', async (t) => {
  const dir = path.join(tmp, 'dots');
  writeSet(dir, train, test, [false, false, false, false], '.');
  t.equal(loadIdxDataset(dir).train.n, 30);
  const dir2 = path.join(tmp, 'plaingz');
  writeSet(dir2, train, test, [false, false, false, false]);
  fs.renameSync(path.join(dir2, 'train-images-idx3-ubyte'), path.join(dir2, 'train-images-idx3-ubyte.gz'));
  t.equal(loadIdxDataset(dir2).train.n, 30, 'gzip is detected by its magic bytes, not the name');
});

t.test('parseIdx reads the header', async (t) => {
  const a = parseIdx(idx(IDX_IMAGES_MAGIC, [2, 3, 4], new Uint8Array(24).fill(5)), IDX_IMAGES_MAGIC, 'x');
  t.same(a.dims, [2, 3, 4]);
  t.equal(a.data.length, 24);
  t.throws(() => parseIdx(new Uint8Array(2), IDX_IMAGES_MAGIC, 'tiny'), /tiny: not an IDX file/);
  t.throws(() => parseIdx(idx(IDX_IMAGES_MAGIC, [2, 3], new Uint8Array(0)).subarray(0, 8), IDX_IMAGES_MAGIC, 'h'), /h: truncated IDX header/);
});

function expectError(t: tap.Test, name: string, mutate: (dir: string) => void, re: RegExp): void {
  const dir = path.join(tmp, name);
  writeSet(dir, train, test);
  mutate(dir);
  t.throws(() => loadIdxDataset(dir), re, name);
}

t.test('bad input gets a clear error', async (t) => {
  expectError(t, 'missing', (d) => fs.unlinkSync(path.join(d, 't10k-images-idx3-ubyte')), /missing t10k-images-idx3-ubyte \(or t10k-images-idx3-ubyte\.gz\) in .*missing/);
  expectError(
    t,
    'swapped',
    (d) => fs.copyFileSync(path.join(d, 'train-labels-idx1-ubyte'), path.join(d, 't10k-images-idx3-ubyte')),
    /t10k-images-idx3-ubyte: bad IDX magic 0x00000801, expected 0x00000803/,
  );
  expectError(
    t,
    'garbage',
    (d) => fs.writeFileSync(path.join(d, 'train-labels-idx1-ubyte'), 'hello world, not idx'),
    /train-labels-idx1-ubyte: bad IDX magic 0x68656c6c/,
  );
  expectError(
    t,
    'truncated',
    (d) => {
      const f = path.join(d, 't10k-images-idx3-ubyte');
      const b = fs.readFileSync(f);
      fs.writeFileSync(f, b.subarray(0, b.length - 100));
    },
    new RegExp(`truncated IDX file: dims \\[12, 28, 28\\] need ${16 + 12 * 784} bytes, the file has ${16 + 12 * 784 - 100}`),
  );
  expectError(
    t,
    'trailing',
    (d) => fs.appendFileSync(path.join(d, 'train-labels-idx1-ubyte'), Buffer.from([1, 2, 3])),
    /3 trailing bytes/,
  );
  expectError(
    t,
    'truncated-gz',
    (d) => {
      const f = path.join(d, 'train-images-idx3-ubyte.gz');
      const b = fs.readFileSync(f);
      fs.writeFileSync(f, b.subarray(0, b.length >> 1));
    },
    /train-images-idx3-ubyte\.gz: corrupt or truncated gzip data/,
  );
  expectError(
    t,
    'count',
    (d) => fs.writeFileSync(path.join(d, 'train-labels-idx1-ubyte'), idx(IDX_LABELS_MAGIC, [29], train.labels.subarray(0, 29))),
    /29 labels for 30 images/,
  );
  expectError(
    t,
    'range',
    (d) => {
      const l = Uint8Array.from(test.labels);
      l[5] = 10;
      fs.writeFileSync(path.join(d, 't10k-labels-idx1-ubyte.gz'), zlib.gzipSync(idx(IDX_LABELS_MAGIC, [12], l)));
    },
    /label 10 of image 5 is out of range \[0, 10\)/,
  );
  t.throws(() => loadIdxDataset(path.join(tmp, 'nope')), /folder .*nope does not exist/);
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  t.throws(() => loadFashionMnist(empty), /missing train-images-idx3-ubyte .*apt-get install dataset-fashion-mnist/);
  t.throws(() => loadFashionMnist(path.join(tmp, 'nope')), /does not exist .*apt-get install dataset-fashion-mnist/);
});

t.test('loadDataset pads 28x28 to 32x32 and normalises with the train statistics', async (t) => {
  const dir = path.join(tmp, 'reg');
  writeSet(dir, train, test);
  const ds = await loadDataset('fashion-mnist', { path: dir });
  t.equal(ds.name, 'fashion-mnist');
  t.same(ds.classNames, FASHION_MNIST_CLASSES);
  t.same([ds.train.height, ds.train.width, ds.test.height], [32, 32, 32]);
  const { mean, std } = ds.normalization!;
  let s = 0, sq = 0;
  for (const v of ds.train.images) {
    s += v;
    sq += v * v;
  }
  const m = s / ds.train.images.length;
  t.ok(Math.abs(m) < 1e-5, `train mean ${m}`);
  t.ok(Math.abs(Math.sqrt(sq / ds.train.images.length - m * m) - 1) < 1e-4, 'train std 1');
  t.ok(Math.abs(ds.test.images[0] - -mean[0] / std[0]) < 1e-6, 'padding is 0 before normalisation');
  // pixel (0,0) of the 28x28 image sits at (2,2)
  t.ok(Math.abs(ds.train.images[2 * 32 + 2] - (train.pixels[0] / 255 - mean[0]) / std[0]) < 1e-5);
  const raw = await loadDataset('mnist', { path: dir, size: 28, normalize: false, trainPerClass: 2 });
  t.equal(raw.name, 'mnist');
  t.same([raw.train.n, raw.train.height, raw.test.n], [20, 28, 12]);
  t.equal(raw.train.images[0], Math.fround(train.pixels[0] / 255));
  await t.rejects(loadDataset('fashion-mnist', { path: dir, size: 30 }), /size must be 28 \(as stored\) or 32/);
});

const haveFashion = fs.existsSync(FASHION_MNIST_DIR);
if (!haveFashion) console.log(`# skipping the real Fashion-MNIST test: ${FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`);
t.test('the real Fashion-MNIST (Debian dataset-fashion-mnist)', { skip: haveFashion ? false : `${FASHION_MNIST_DIR} is absent: apt-get install dataset-fashion-mnist to run it` }, async (t) => {
  const ds = loadFashionMnist();
  t.equal(ds.train.n, 60000);
  t.equal(ds.test.n, 10000);
  t.same([ds.train.channels, ds.train.height, ds.train.width], [1, 28, 28]);
  for (const [set, per] of [[ds.train, 6000], [ds.test, 1000]] as const) {
    const h = new Array<number>(10).fill(0);
    for (const l of set.labels) h[l]++;
    t.same(h, new Array(10).fill(per), 'balanced label histogram');
  }
  let mean = 0;
  for (const v of ds.train.images) mean += v;
  mean /= ds.train.images.length;
  t.ok(Math.abs(mean - 0.286) < 0.001, `train pixel mean ${mean.toFixed(4)} (published 0.2860)`);
});
