// Transforms: flip/crop against a naive pad-crop-flip reference and against the engine's hflip,
// determinism in (seed, epoch, batch), parameter distributions, augmented batches, per-channel
// normalisation, and the helpers subsetClasses / classIndices / firstPerClass.
import t from 'tap';
import { Rng, Tensor, ops, tidy } from '../src/engine';
import {
  ImageDataset,
  ImageSet,
  Augmenter,
  applyAugment,
  augmentRng,
  augmentedBatches,
  drawAugment,
  normalizeDataset,
  subsetClasses,
  classIndices,
  firstPerClass,
  loadDataset,
  datasetName,
  DATASET_NAMES,
} from '../src/data';

/** Naive reference: pad with padValue, crop at (dy, dx), then flip. */
function reference(src: Float32Array, n: number, C: number, H: number, W: number, flip: Uint8Array, dy: Int32Array, dx: Int32Array, pad: number, pv: number[]): Float32Array {
  const out = new Float32Array(n * C * H * W);
  const PH = H + 2 * pad, PW = W + 2 * pad;
  for (let i = 0; i < n; i++)
    for (let c = 0; c < C; c++) {
      const padded = new Float32Array(PH * PW).fill(pv[c]);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) padded[(y + pad) * PW + x + pad] = src[((i * C + c) * H + y) * W + x];
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const v = padded[(y + dy[i]) * PW + x + dx[i]];
          out[((i * C + c) * H + y) * W + (flip[i] ? W - 1 - x : x)] = v;
        }
    }
  return out;
}

t.test('applyAugment matches pad -> crop -> flip for every offset', async (t) => {
  const rng = new Rng(3);
  for (const [C, H, W, pad] of [[3, 5, 7, 2], [1, 4, 4, 4], [2, 6, 3, 5], [3, 8, 8, 0]]) {
    const side = 2 * pad + 1;
    const n = side * side * 2; // every (dy, dx) with and without flip
    const src = rng.normal(n * C * H * W);
    const flip = new Uint8Array(n), dy = new Int32Array(n), dx = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      flip[i] = i & 1;
      dy[i] = Math.floor(i / 2 / side);
      dx[i] = (i >> 1) % side;
    }
    const pv = Array.from({ length: C }, (_, c) => -0.5 - c);
    const got = applyAugment(src, { n, channels: C, height: H, width: W }, { n, flip, dy, dx, pad }, pv);
    t.same(Array.from(got), Array.from(reference(src, n, C, H, W, flip, dy, dx, pad, pv)), `C${C} ${H}x${W} pad ${pad}`);
    const out = new Float32Array(n * C * H * W).fill(NaN);
    applyAugment(src, { n, channels: C, height: H, width: W }, { n, flip, dy, dx, pad }, pv, out);
    t.same(Array.from(out), Array.from(got), 'into a given output');
  }
});

t.test('flip-only equals the engine hflip op; identity without flip', async (t) => {
  const rng = new Rng(4);
  const [n, C, H, W] = [6, 3, 4, 5];
  const src = rng.normal(n * C * H * W);
  const p = drawAugment(n, { flip: true }, new Rng(9));
  const ours = applyAugment(src, { n, channels: C, height: H, width: W }, p);
  const theirs = tidy(() => ops.hflip(Tensor.fromArray(src, [n, C, H, W]), p.flip).toFloat32());
  t.same(Array.from(ours), Array.from(theirs));
  const none = drawAugment(n, { flip: false }, new Rng(9));
  t.same(Array.from(applyAugment(src, { n, channels: C, height: H, width: W }, none)), Array.from(src));
});

t.test('parameters depend only on (seed, epoch, batch)', async (t) => {
  const a = new Augmenter(11, { crop: 4 });
  const p = a.params(3, 7, 50);
  a.params(0, 0, 1000); // other draws in between change nothing
  t.same(a.params(3, 7, 50), p);
  t.same(new Augmenter(11, { crop: 4 }).params(3, 7, 50), p, 'a fresh augmenter, same seed');
  const differ = (q: typeof p) => q.flip.some((f, i) => f !== p.flip[i]) || q.dx.some((d, i) => d !== p.dx[i]);
  t.ok(differ(a.params(3, 8, 50)), 'other batch');
  t.ok(differ(a.params(4, 7, 50)), 'other epoch');
  t.ok(differ(new Augmenter(12, { crop: 4 }).params(3, 7, 50)), 'other seed');
  t.same(Array.from(new Augmenter(5).params(1, 2, 40).flip), Array.from(augmentRng(5, 1, 2).bernoulli(40)), 'flips are the first draws');
  t.throws(() => augmentRng(1, 40000, 0), /epoch must be an integer in \[0, 32768\)/);
  t.throws(() => augmentRng(1, 0, 70000), /batch must be an integer in \[0, 65536\)/);
  t.throws(() => new Augmenter(1, { crop: -1 }), /crop padding must be a non-negative integer/);
  t.throws(() => new Augmenter(-1), /seed must be a non-negative safe integer/);
});

t.test('flip and offsets are uniform', async (t) => {
  const p = new Augmenter(1, { crop: 2 }).params(0, 0, 20000);
  const flips = p.flip.reduce((s, v) => s + v, 0) / p.n;
  t.ok(Math.abs(flips - 0.5) < 0.02, `flip rate ${flips}`);
  const hist = new Array<number>(5).fill(0);
  for (const v of p.dy) hist[v]++;
  for (const v of p.dx) hist[v]++;
  t.ok(hist.every((h) => Math.abs(h / (2 * p.n) - 0.2) < 0.02), `offset histogram ${hist}`);
});

t.test('applyAugment rejects bad arguments', async (t) => {
  const src = new Float32Array(2 * 3 * 4 * 4);
  const shape = { n: 2, channels: 3, height: 4, width: 4 };
  const p = drawAugment(2, { crop: 1 }, new Rng(1));
  t.throws(() => applyAugment(src, shape, p, 0, src), /out must not overlap src/);
  t.throws(() => applyAugment(src.subarray(0, 10), shape, p), /10 values for 2x3x4x4 images/);
  t.throws(() => applyAugment(src, shape, drawAugment(1, {}, new Rng(1))), /parameters for 1 samples, batch has 2/);
  t.throws(() => applyAugment(src, shape, p, [0, 0]), /2 pad values for 3 channels/);
  t.throws(() => applyAugment(src, shape, { ...p, dy: Int32Array.from([0, 3]) }), /crop offset \(3, \d\) of sample 1 outside \[0, 2\]/);
  t.throws(() => applyAugment(src, shape, p, 0, new Float32Array(5)), /output has 5 values/);
});

function toySet(n: number, C: number, H: number, W: number, classes: number, seed = 1): ImageSet {
  const images = new Rng(seed).uniform(n * C * H * W);
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % classes);
  return { images, labels, n, channels: C, height: H, width: W };
}

t.test('augmentedBatches: each batch is its slice augmented for (epoch, batch)', async (t) => {
  const set = toySet(37, 3, 6, 6, 5);
  const aug = new Augmenter(21, { crop: 2, padValue: [1, 2, 3] });
  const sz = 3 * 36;
  const got = [...augmentedBatches(set, 8, { epoch: 2, augment: aug })];
  t.same(got.map((b) => b.n), [8, 8, 8, 8, 5]);
  for (const b of got) {
    const slice = set.images.slice(b.index[0] * sz, (b.index[0] + b.n) * sz);
    const want = applyAugment(slice, { n: b.n, channels: 3, height: 6, width: 6 }, aug.params(2, b.batch, b.n), [1, 2, 3]);
    t.same(Array.from(b.images), Array.from(want), `batch ${b.batch} (arrays yielded earlier are not overwritten)`);
    t.same(Array.from(b.params.dx), Array.from(aug.params(2, b.batch, b.n).dx));
  }
  const again = [...augmentedBatches(set, 8, { epoch: 2, augment: aug, shuffle: new Rng(5) })];
  const again2 = [...augmentedBatches(set, 8, { epoch: 2, augment: aug, shuffle: new Rng(5) })];
  t.same(again.map((b) => Array.from(b.images)), again2.map((b) => Array.from(b.images)), 'reproducible with shuffling');
  t.same(again.map((b) => Array.from(b.labels)), again.map((b) => Array.from(b.index, (i) => set.labels[i])));
  const plain = [...augmentedBatches(set, 8, { epoch: 0 })];
  t.same(Array.from(plain[1].images), Array.from(set.images.subarray(8 * sz, 16 * sz)), 'no augmenter: the images as they are');
  t.same(Array.from(plain[1].params.flip), new Array(8).fill(0));
});

t.test('normalizeDataset: train statistics, both splits, once', async (t) => {
  const train = toySet(20, 3, 4, 4, 4, 1), test = toySet(10, 3, 4, 4, 4, 2);
  for (let i = 0; i < train.images.length; i++) train.images[i] = train.images[i] * (1 + Math.floor(i / 16) % 3) + 0.1;
  const ds: ImageDataset = { name: 'toy', classes: 4, classNames: ['a', 'b', 'c', 'd'], train, test };
  const testBefore = Float32Array.from(test.images);
  const { mean, std } = normalizeDataset(ds);
  for (let c = 0; c < 3; c++) {
    let s = 0, sq = 0;
    for (let i = 0; i < 20; i++) for (let k = 0; k < 16; k++) {
      const v = train.images[(i * 3 + c) * 16 + k];
      s += v;
      sq += v * v;
    }
    t.ok(Math.abs(s / 320) < 1e-6 && Math.abs(sq / 320 - 1) < 1e-4, `channel ${c}: mean 0, var 1`);
  }
  t.ok(Math.abs(test.images[16 * 2 + 3] - (testBefore[16 * 2 + 3] - mean[2]) / std[2]) < 1e-6, 'test uses the train statistics');
  t.same(ds.normalization, { mean, std });
  t.throws(() => normalizeDataset(ds), /toy is already normalised/);
  const ds2: ImageDataset = { ...ds, normalization: undefined };
  t.throws(() => normalizeDataset(ds2, { mean: [0], std: [1] }), /3 channels but 1 means/);
  t.throws(() => normalizeDataset(ds2, { mean: [0, 0, 0], std: [1, 0, 1] }), /every std must be > 0/);
});

t.test('subsetClasses, classIndices, firstPerClass', async (t) => {
  const set = toySet(20, 1, 2, 2, 5); // labels (7i) % 5: 0 2 4 1 3 0 2 4 1 3 ...
  const sub = subsetClasses(set, [4, 1]);
  t.same(Array.from(sub.labels), [4, 1, 4, 1, 4, 1, 4, 1], 'labels kept, file order');
  t.same(Array.from(sub.images.subarray(0, 4)), Array.from(set.images.subarray(2 * 4, 3 * 4)));
  t.equal(subsetClasses(set, []).n, 0);
  t.throws(() => subsetClasses(set, [1.5]), /class ids must be non-negative integers/);
  const idx = classIndices(set);
  t.equal(idx.length, 5);
  t.same(Array.from(idx[2]), [1, 6, 11, 16]);
  t.equal(classIndices(set, 7).length, 7);
  t.throws(() => classIndices(set, 3), /label 4 of sample 2 is out of range \[0, 3\)/);
  const first = firstPerClass(set, 2);
  t.same(Array.from(first.labels), [0, 2, 4, 1, 3, 0, 2, 4, 1, 3]);
  t.equal(firstPerClass(set, 100).n, 20, 'fewer where a class has fewer');
});

t.test('dataset names', async (t) => {
  t.equal(datasetName('Fashion_MNIST'), 'fashion-mnist');
  t.equal(datasetName('CIFAR-10'), 'cifar10');
  t.throws(() => datasetName('imagenet'), new RegExp(`unknown dataset "imagenet"; valid names: ${DATASET_NAMES.join(', ')}`));
  await t.rejects(loadDataset('svhn'), /unknown dataset "svhn"; valid names: mnist, fashion-mnist, cifar10, cifar100, folder/);
  await t.rejects(loadDataset('cifar10', { path: '/nonexistent/cifar' }), /cifar10: path \/nonexistent\/cifar does not exist/);
  const m = await loadDataset('mnist', { trainPerClass: 3 });
  t.same([m.train.n, m.train.height, m.classes], [30, 32, 10], 'built-in digits, padded');
  t.ok(m.normalization && Math.abs(m.normalization.mean[0]) > 0);
});
