// il/exemplars: herding on hand-computable 2-D cases and against a brute-force reference on
// random data, memory rebalancing and accounting, state round-trip, NME on separable clusters,
// feature extraction with a small ResNet32Aux (flip, batching, mode restored, no native leak),
// lossless u8-palette storage and its float32 fallback, and bad input.
import t from 'tap';
import { Rng, memory } from '../src/engine';
import { ResNet32Aux } from '../src/nn';
import {
  herding, l2normalizeRows, ExemplarMemory, ExemplarMemoryState, ImageBatch, classMean, classMeans,
  nmeScores, nmeClassify, extractFeatures, selectExemplars,
} from '../src/il/exemplars';
import { Evaluator, argmax } from '../src/il/metrics';
import { ImageSet, channelStats, normalize } from '../src/data/dataset';

const f32 = (a: number[]) => Float32Array.from(a);

/** Paper's Algorithm 4 written out naively: explicit candidate means, plain number arrays. */
function herdingReference(x: Float32Array, n: number, d: number, m: number): number[] {
  const rows = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * d, (i + 1) * d)));
  const mu = new Array<number>(d).fill(0);
  for (const r of rows) r.forEach((v, j) => (mu[j] += v / n));
  const chosen: number[] = [];
  for (let k = 1; k <= m; k++) {
    let best = -1, bestDist = Infinity;
    for (let i = 0; i < n; i++) {
      if (chosen.includes(i)) continue;
      const mean = mu.map((_, j) => ([...chosen, i].reduce((s, c) => s + rows[c][j], 0)) / k);
      const dist = Math.sqrt(mean.reduce((s, v, j) => s + (mu[j] - v) ** 2, 0));
      if (dist < bestDist) {
        bestDist = dist;
        best = i;
      }
    }
    chosen.push(best);
  }
  return chosen;
}

/** n images [n, 1, 2, 2] whose pixels all equal base + i (identifiable after reduce). */
function tagged(n: number, base: number, c = 1, h = 2, w = 2): ImageBatch {
  const size = c * h * w;
  const images = new Float32Array(n * size);
  for (let i = 0; i < n; i++) images.fill(base + i, i * size, (i + 1) * size);
  return { images, n, channels: c, height: h, width: w };
}

t.test('herding: hand-computed 2-D cases', async (t) => {
  // p0=(1,0) p1=(.8,.6) p2=(.6,.8) p3=(-.6,.8); mu = (.45, .55)
  // k=1: squared distances to mu .605 .125 .085 1.165 -> p2
  // k=2: r = 2mu - p2 = (.3,.3): p0 .58 p1 .34 p3 1.06 -> p1
  // k=3: r = 3mu - p2 - p1 = (-.05,.25): p0 1.165 p3 .605 -> p3; then p0
  const x = f32([1, 0, 0.8, 0.6, 0.6, 0.8, -0.6, 0.8]);
  t.same([...herding(x, 4, 2, 4)], [2, 1, 3, 0]);
  t.same([...herding(x, 4, 2, 2)], [2, 1], 'a smaller m is a prefix');
  t.same([...herding(x, 4, 2, 0)], []);
  // exact ties (dyadic values): the four axis directions, mu = 0
  // k=1: all at distance 1 -> 0; k=2: r = -(1,0) -> 2 (exact); k=3: r = 0 -> 1 and 3 tie -> 1
  const axes = f32([1, 0, 0, 1, -1, 0, 0, -1]);
  t.same([...herding(axes, 4, 2, 4)], [0, 2, 1, 3], 'ties go to the lower index');
});

t.test('herding matches a brute-force reference on random normalised features', async (t) => {
  const rng = new Rng(17);
  for (const [n, d, m] of [[30, 8, 30], [57, 5, 20], [12, 64, 7], [1, 3, 1]]) {
    const x = l2normalizeRows(rng.normal(n * d), d);
    const got = [...herding(x, n, d, m)];
    t.same(got, herdingReference(x, n, d, m), `n=${n} d=${d} m=${m}`);
    t.equal(new Set(got).size, m, 'no repetition');
  }
});

t.test('herding: bad input', async (t) => {
  const x = f32([1, 0, 0, 1]);
  t.throws(() => herding(x, 2, 2, 3), /herding: cannot pick 3 exemplars from 2 samples/);
  t.throws(() => herding(x, 3, 2, 1), /herding: 4 features do not form \[3, 2\] \(6 expected\)/);
  t.throws(() => herding(x, 2, 2, -1), /m must be an integer >= 0/);
  t.throws(() => herding(x, 0, 2, 0), /n must be an integer >= 1/);
  t.throws(() => herding(f32([1, NaN]), 1, 2, 1), /feature \[0, 1\] is NaN/);
});

t.test('l2normalizeRows', async (t) => {
  const r = l2normalizeRows(f32([3, 4, 0, 0]), 2);
  t.same([...r], [0.6, 0.8, 0, 0].map(Math.fround), 'zero row stays zero');
  t.throws(() => l2normalizeRows(f32([1, 2, 3]), 2), /3 values are not rows of 2/);
});

for (const compact of [true, false])
  t.test(`ExemplarMemory (${compact ? 'u8-palette' : 'f32'}): M=20 rebalanced 10 -> 5 per class, herding order kept`, async (t) => {
    const mem = new ExemplarMemory(20, { compact });
    t.equal(mem.perClass(), 0, 'no classes yet');
    t.equal(mem.perClass(2), 10);
    mem.add(5, tagged(10, 500));
    mem.add(7, tagged(10, 700));
    t.equal(mem.storage, compact ? 'u8-palette' : 'f32');
    t.same(mem.classes(), [5, 7]);
    t.equal(mem.perClass(), 10);
    t.equal(mem.size, 20);
    const size = 4;
    // 20 distinct values in the single channel -> a 20-entry palette
    t.equal(mem.bytes(), compact ? 20 * size + 20 * 4 + 20 * 4 : 20 * size * 4 + 20 * 4, 'pixels as held + palette + int32 labels');
    t.equal(mem.storedBytesU8(), 20 * size + 20 * 4, 'u8 pixels + int32 labels');
    t.throws(() => mem.add(1, tagged(1, 100)), /1 exemplars of class 1 do not fit: 20 of M = 20 are used \(reduce\(\) the old classes first\)/);
    t.same(mem.classes(), [5, 7], 'a rejected add stores nothing');

    const m = mem.perClass(4);
    t.equal(m, 5);
    mem.reduce(m);
    t.equal(mem.count(5), 5);
    t.equal(mem.count(7), 5);
    t.equal(mem.bytes(), compact ? 10 * size + 20 * 4 + 10 * 4 : 10 * size * 4 + 10 * 4, 'reduce releases the dropped images (the palette keeps its entries)');
    mem.add(1, tagged(5, 100));
    mem.add(2, tagged(5, 200));
    t.equal(mem.size, 20);
    t.equal(mem.perClass(), 5);

    const set = mem.imageSet();
    t.equal(set.n, 20);
    t.same([set.channels, set.height, set.width], [1, 2, 2]);
    t.same([...set.labels], [5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    const firstPixel = Array.from({ length: 20 }, (_, i) => set.images[i * size]);
    t.same(firstPixel, [500, 501, 502, 503, 504, 700, 701, 702, 703, 704, 100, 101, 102, 103, 104, 200, 201, 202, 203, 204], 'the first m of each herding-ordered list are kept');
    const c7 = mem.classSet(7);
    t.equal(c7.n, 5);
    t.same([...c7.labels], [7, 7, 7, 7, 7]);
    c7.images[0] = -1;
    t.equal(mem.classSet(7).images[0], 700, 'classSet returns a copy');

    // a memory that owns copies: changing the caller's array afterwards changes nothing
    const src = tagged(3, 900);
    const mem2 = new ExemplarMemory(6, { compact });
    mem2.add(9, src);
    src.images.fill(0);
    t.equal(mem2.classSet(9).images[4], 901);
    // reduce to more than a class has keeps it whole
    mem2.reduce(5);
    t.equal(mem2.count(9), 3);
  });

const bitsEqual = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

t.test('ExemplarMemory storage: u8-origin images are stored as u8 codes, losslessly', async (t) => {
  // CIFAR-like: u8 pixels / 255, normalised per channel as the data layer does
  const rng = new Rng(8);
  const n = 30, C = 3, hw = 16;
  const set: ImageSet = { images: new Float32Array(n * C * hw), labels: new Int32Array(n), n, channels: C, height: 4, width: 4 };
  for (let i = 0; i < set.images.length; i++) set.images[i] = rng.int(256) / 255;
  const { mean, std } = channelStats(set);
  normalize(set, mean, std);
  const mem = new ExemplarMemory(30);
  mem.add(3, { ...set, n: 10, images: set.images.slice(0, 10 * C * hw) });
  mem.add(4, { ...set, n: 20, images: set.images.slice(10 * C * hw) });
  t.equal(mem.storage, 'u8-palette');
  t.ok(bitsEqual(mem.imageSet().images, set.images), 'bit-identical after the round trip through u8 codes');
  const pal = mem.toState().meta.paletteSizes!;
  t.ok(pal.every((s) => s <= 256), `palette sizes ${pal}`);
  t.equal(mem.bytes(), mem.storedBytesU8() + 4 * pal.reduce((a, b) => a + b, 0), 'bytes = paper size + palettes');

  // -0 and 0 are kept apart; NaN survives
  const z = new ExemplarMemory(2);
  z.add(0, { images: f32([0, -0, 1, NaN]), n: 1, channels: 1, height: 2, width: 2 });
  const back = z.classSet(0).images;
  t.ok(Object.is(back[0], 0) && Object.is(back[1], -0) && back[2] === 1 && Number.isNaN(back[3]), `zeros kept apart: ${[...back]}`);
});

t.test('ExemplarMemory storage: a 257th value switches to float32 without changing any image', async (t) => {
  const rng = new Rng(12);
  const mem = new ExemplarMemory(10);
  const a = { images: rng.normal(2 * 100), n: 2, channels: 1, height: 10, width: 10 }; // 200 values
  const b = { images: rng.normal(2 * 100), n: 2, channels: 1, height: 10, width: 10 }; // 400 in all
  mem.add(0, a);
  t.equal(mem.storage, 'u8-palette');
  t.equal(mem.bytes(), 200 + 4 * 200 + 8);
  mem.add(1, b);
  t.equal(mem.storage, 'f32');
  t.equal(mem.bytes(), 400 * 4 + 16);
  t.ok(bitsEqual(mem.classSet(0).images, a.images), 'class 0 unchanged by the switch');
  t.ok(bitsEqual(mem.classSet(1).images, b.images));
  // one image with 257 distinct values in a fresh memory: float32 from the start
  const big = new ExemplarMemory(1);
  big.add(0, { images: Float32Array.from({ length: 257 }, (_, i) => i), n: 1, channels: 1, height: 1, width: 257 });
  t.equal(big.storage, 'f32');
  t.equal(big.classSet(0).images[256], 256);
});

t.test('ExemplarMemory: bad input', async (t) => {
  t.throws(() => new ExemplarMemory(0), /total \(M\) must be an integer >= 1/);
  t.throws(() => new ExemplarMemory(2.5), /total \(M\) must be an integer/);
  const mem = new ExemplarMemory(3);
  t.throws(() => mem.perClass(4), /a memory of M = 3 exemplars cannot hold one per class for 4 classes/);
  mem.add(0, tagged(1, 0));
  t.throws(() => mem.add(0, tagged(1, 0)), /class 0 already has exemplars/);
  t.throws(() => mem.add(1, tagged(1, 0, 3, 2, 2)), /images of class 1 are \[3, 2, 2\] but the memory holds \[1, 2, 2\]/);
  t.throws(() => mem.add(1, { ...tagged(2, 0), n: 3 }), /8 values do not form \[3, 1, 2, 2\] \(12 expected\)/);
  t.throws(() => mem.add(1, tagged(0, 0)), /no exemplars given for class 1/);
  t.throws(() => mem.add(-2, tagged(1, 0)), /class must be an integer >= 0/);
  t.throws(() => mem.reduce(0), /m must be an integer >= 1/);
  t.throws(() => mem.classSet(4), /class 4 has no exemplars/);
  t.same(mem.classes(), [0]);
  const empty = new ExemplarMemory(4).imageSet();
  t.equal(empty.n, 0);
  t.equal(empty.images.length, 0);
});

for (const [name, side] of [['u8-palette', 2], ['f32', 16]] as const)
  t.test(`ExemplarMemory: state round-trip, ${name} (JSON metadata + typed arrays)`, async (t) => {
    const rng = new Rng(3);
    const size = 3 * side * side;
    const mem = new ExemplarMemory(12);
    for (const c of [4, 0, 9]) mem.add(c, { images: rng.normal(4 * size), n: 4, channels: 3, height: side, width: side });
    mem.reduce(3);
    t.equal(mem.storage, name);
    const st = mem.toState();
    t.ok(st.images instanceof Float32Array && st.images.length === 9 * size, 'toState: float32 pixels');
    const meta = JSON.parse(JSON.stringify(st.meta));
    const check = (back: ExemplarMemory, what: string) => {
      t.equal(back.total, 12, what);
      t.equal(back.storage, name, what);
      t.same(back.classes(), [4, 0, 9], what);
      t.same([9, 4, 0].map((c) => back.count(c)), [3, 3, 3], what);
      const a = mem.imageSet(), b = back.imageSet();
      t.same([...b.labels], [...a.labels], what);
      t.ok(bitsEqual(b.images, a.images), `${what}: images bit-identical`);
      // a restored palette holds only the kept values
      t.equal(back.bytes(), name === 'f32' ? mem.bytes() : 9 * size + 4 * 9 + 4 * 9 * size, `${what}: bytes`);
    };
    check(ExemplarMemory.fromState({ meta, images: st.images.slice() }), 'from toState');
    // a meta written before the storage fields existed still loads
    const { compact: _c, storage: _s, paletteSizes: _p, ...oldMeta } = meta;
    check(ExemplarMemory.fromState({ meta: oldMeta, images: st.images.slice() }), 'old meta');
    const cs = mem.toCompactState();
    if (name === 'f32') t.equal(cs, null, 'no compact state for float32 storage');
    else {
      t.ok(cs && cs.codes.length === 9 * size, 'compact state: one u8 code per pixel');
      check(ExemplarMemory.fromState({ meta: JSON.parse(JSON.stringify(cs!.meta)), codes: cs!.codes.slice(), palette: cs!.palette.slice() }), 'from toCompactState');
    }
    const emptyBack = ExemplarMemory.fromState(new ExemplarMemory(5).toState());
    t.equal(emptyBack.size, 0);
    t.equal(emptyBack.total, 5);
    const f32Back = ExemplarMemory.fromState(new ExemplarMemory(5, { compact: false }).toState());
    t.equal(f32Back.compact, false, 'the compact option survives');

    const bad = (s: unknown) => () => ExemplarMemory.fromState(s as ExemplarMemoryState);
    const ok = { meta, images: st.images };
    t.throws(bad({ ...ok, images: st.images.subarray(1) }), new RegExp(`${9 * size - 1} pixel values for 9 exemplars of \\[3, ${side}, ${side}\\] \\(${9 * size} expected\\)`));
    t.throws(bad({ ...ok, meta: { ...meta, format: 'x' } }), /not an exemplar memory state/);
    t.throws(bad({ ...ok, meta: { ...meta, version: 2 } }), /unsupported version 2/);
    t.throws(bad({ ...ok, meta: { ...meta, counts: [3, 3] } }), /classes and counts must be arrays of the same length/);
    t.throws(bad({ ...ok, meta: { ...meta, counts: [3, 0, 6] } }), /counts\[1\] must be an integer >= 1/);
    t.throws(bad({ ...ok, meta: { ...meta, total: 8 } }), /do not fit: 6 of M = 8 are used/);
    t.throws(bad({ ...ok, images: Array.from(st.images) }), /images must be a Float32Array/);
    t.throws(bad(null), /not an exemplar memory state/);
    if (cs) {
      const cok = { meta: cs.meta, codes: cs.codes, palette: cs.palette };
      t.throws(bad({ ...cok, codes: Array.from(cs.codes) }), /codes must be a Uint8Array/);
      t.throws(bad({ ...cok, palette: cs.palette.subarray(1) }), /palette has \d+ values, paletteSizes sum to \d+/);
      t.throws(bad({ ...cok, meta: { ...cs.meta, paletteSizes: [1, 2] } }), /paletteSizes must list 3 channels/);
      t.throws(bad({ ...cok, meta: { ...cs.meta, paletteSizes: [300, 0, 0] } }), /paletteSizes\[0\] = 300 is over 256/);
      const codes = cs.codes.slice();
      codes[0] = 255;
      t.throws(bad({ ...cok, codes }), /pixel code 255 is outside the \d+-entry palette of channel 0/);
    }
  });

t.test('NME on separable clusters', async (t) => {
  const rng = new Rng(9);
  const d = 6, C = 4, per = 25;
  const centres = l2normalizeRows(rng.normal(C * d), d);
  const n = C * per;
  const feats = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % C;
    labels[i] = c;
    for (let j = 0; j < d; j++) feats[i * d + j] = centres[c * d + j] + 0.05 * rng.normal(1)[0];
  }
  l2normalizeRows(feats, d);
  // class means from the first 5 samples of each class (flip off)
  const means = new Float32Array(C * d);
  for (let c = 0; c < C; c++) {
    const rows = new Float32Array(5 * d);
    for (let k = 0; k < 5; k++) rows.set(feats.subarray((k * C + c) * d, (k * C + c + 1) * d), k * d);
    means.set(classMean({ n: 5, d, features: rows, flipped: null }), c * d);
  }
  const pred = nmeClassify(feats, means, d);
  t.same([...pred], [...labels], 'every sample goes to its own cluster');
  const scores = nmeScores(feats, means, d);
  t.same([...argmax(scores, n, C)], [...pred], 'scores agree with classify');
  const ev = new Evaluator({ classes: C });
  ev.add(scores, labels);
  t.equal(ev.result().top1, 100);
  // hand case: distances to (1,0) and (0,1); a tie goes to column 0
  t.same([...nmeClassify(f32([0.6, 0.8, Math.SQRT1_2, Math.SQRT1_2]), f32([1, 0, 0, 1]), 2)], [1, 0]);
  const s = nmeScores(f32([0.6, 0.8]), f32([1, 0, 0, 1]), 2);
  t.ok(Math.abs(s[0] + 0.8) < 1e-6 && Math.abs(s[1] + 0.4) < 1e-6, `scores ${[...s]}`);
  t.throws(() => nmeClassify(f32([1, 2, 3]), f32([1, 0]), 2), /nmeClassify: 3 features are not rows of 2/);
  t.throws(() => nmeScores(f32([1, 2]), f32([]), 2), /0 mean values are not \(at least one\) rows of 2/);
});

t.test('classMean: flip averaging then normalisation', async (t) => {
  const m = classMean({ n: 2, d: 2, features: f32([1, 0, 1, 0]), flipped: f32([0, 1, 0, 1]) });
  t.ok(Math.abs(m[0] - Math.SQRT1_2) < 1e-7 && Math.abs(m[1] - Math.SQRT1_2) < 1e-7, `mean ${[...m]}`);
  const m2 = classMean({ n: 2, d: 2, features: f32([1, 0, 0, 1]), flipped: null });
  t.ok(Math.abs(m2[0] - Math.SQRT1_2) < 1e-7, 'no flip: normalised mean of the features');
  t.throws(() => classMean({ n: 0, d: 2, features: f32([]), flipped: null }), /no features/);
});

t.test('with a ResNet32Aux: extraction, flip, herding selection, class means', async (t) => {
  const rng = new Rng(21);
  const model = new ResNet32Aux(3, { inChannels: 1, seed: 4 });
  const n = 9, c = 1, h = 8, w = 8;
  const x: ImageBatch = { images: rng.normal(n * c * h * w), n, channels: c, height: h, width: w };
  const base = memory().liveBytes;
  model.train();
  const ef = extractFeatures(model, x, 4);
  t.equal(model.training, true, 'train mode restored');
  t.equal(memory().liveBytes, base, 'no native memory left behind');
  t.equal(ef.d, 64);
  t.equal(ef.features.length, n * 64);
  for (let i = 0; i < n; i++) {
    let a = 0, b = 0;
    for (let j = 0; j < 64; j++) {
      a += ef.features[i * 64 + j] ** 2;
      b += ef.flipped![i * 64 + j] ** 2;
    }
    if (Math.abs(a - 1) > 1e-5 || Math.abs(b - 1) > 1e-5) t.fail(`row ${i} not normalised: ${a} ${b}`);
  }
  // flipped == features of explicitly mirrored images; batch size does not matter (eval mode)
  const mirrored = new Float32Array(x.images.length);
  for (let i = 0; i < n * c * h; i++) for (let k = 0; k < w; k++) mirrored[i * w + k] = x.images[i * w + (w - 1 - k)];
  const efm = extractFeatures(model, { ...x, images: mirrored }, 128, { flip: false });
  t.equal(efm.flipped, null);
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  t.ok(maxDiff(efm.features, ef.flipped!) < 1e-5, `flip branch matches mirrored images (${maxDiff(efm.features, ef.flipped!)})`);
  t.ok(maxDiff(ef.features, ef.flipped!) > 1e-3, 'flipped features differ from the originals');
  const ef1 = extractFeatures(model, x, 128);
  t.ok(maxDiff(ef1.features, ef.features) < 1e-5, 'batch size independent');

  const sel = selectExemplars(model, x, 4, 3);
  t.same([...sel.indices], [...herding(ef.features, n, 64, 4)], 'herding on the un-flipped normalised features');
  for (let j = 0; j < 4; j++)
    if (sel.exemplars.images[j * 64] !== x.images[sel.indices[j] * 64]) t.fail(`exemplar ${j} is not image ${sel.indices[j]}`);
  t.equal(sel.exemplars.n, 4);
  t.throws(() => selectExemplars(model, x, 10), /cannot pick 10 exemplars from 9 images/);

  const mem = new ExemplarMemory(8);
  mem.add(2, sel.exemplars);
  mem.add(0, { ...x, n: 3, images: x.images.slice(0, 3 * 64) });
  const means = classMeans(model, mem, 2);
  t.equal(means.length, 2 * 64);
  const want0 = classMean(extractFeatures(model, mem.classSet(2)));
  t.ok(maxDiff(means.subarray(0, 64), want0) < 1e-6, 'row 0 is class 2 (the order added)');
  const swapped = classMeans(model, mem, 2, [0, 2]);
  t.ok(maxDiff(swapped.subarray(64), want0) < 1e-6, 'explicit class order');
  t.throws(() => classMeans(model, mem, 2, [5]), /class 5 has no exemplars/);
  const pred = nmeClassify(extractFeatures(model, x, 16, { flip: false }).features, means, 64);
  t.equal(pred.length, n);
  t.throws(() => extractFeatures(model, { ...x, n: 10 }), /extractFeatures: 576 values do not form \[10, 1, 8, 8\]/);
  t.throws(() => extractFeatures(model, x, 0), /batchSize must be an integer >= 1/);
  t.throws(() => extractFeatures(model, { ...x, channels: 3, images: new Float32Array(9 * 3 * 64) }), /conv/i);
  t.equal(model.training, true, 'mode restored after a throw');
  t.equal(memory().liveBytes, base, 'no native memory left behind after a throw');
  model.dispose();
});
