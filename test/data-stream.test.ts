// Streamed datasets: a folder read batch by batch from its decode cache gives exactly the pixels,
// labels and normalisation of the in-memory loader; the cache keeps its guarantees when streamed
// (hit, changed / added / removed file -> rebuilt, corrupt -> rebuilt, shared with the in-memory
// loader, no cache folder -> an unlinked temporary file); the data layer's gather / range /
// async reads, subsets and concatenation agree with the in-memory set; and incremental runs on a
// streamed set (every il/ reader: batches, teacher cache, BatchNorm recalibration, exemplars,
// evaluation) end with results identical to the same run in memory.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp = require('sharp');
import { Rng } from '../src/engine';
import {
  loadFolderDataset, loadDataset, folderCacheFiles, FolderEvent, ImageSet, ImageDataset, ImageStore,
  gatherImages, gatherImagesAsync, rangeImages, subset, subsetClasses, firstPerClass, concatSets, setStore, channelStats, isStreamed,
} from '../src/data';
import { OrderRun, METHODS, defaultConfig, IlConfig, randomOrder } from '../src/il';
import type { StepResult } from '../src/il/results';
import { saveRunState, loadRunState } from '../src/il/checkpoint';
import { readSafetensors } from '../src/io';
import { train } from '../src/api';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-stream-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** root/train/c<k>/<i>.png (perClass each) and root/val/c<k>/<i>.png (2 each), smooth random RGB. */
async function makeFolder(root: string, classes: number, perClass: number, side = 12): Promise<void> {
  const rng = new Rng(classes * 100 + perClass);
  const write = async (file: string, k: number) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const px = Buffer.alloc(side * side * 3);
    const noise = rng.uniform(px.length);
    for (let i = 0; i < px.length; i++) px[i] = Math.min(255, Math.floor(60 * k + 120 * noise[i]));
    await sharp(px, { raw: { width: side, height: side, channels: 3 } }).png().toFile(file);
  };
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < perClass; i++) await write(path.join(root, 'train', `c${k}`, `${i}.png`), k);
    for (let i = 0; i < 2; i++) await write(path.join(root, 'val', `c${k}`, `${i}.png`), k);
  }
}

function all(s: ImageSet): Float32Array {
  return gatherImages(s, Int32Array.from({ length: s.n }, (_, i) => i));
}

t.test('a streamed folder gives the in-memory pixels, labels and normalisation', async (t) => {
  const root = path.join(tmp, 'same');
  await makeFolder(root, 3, 5);
  const mem = await loadFolderDataset(root, { size: 8, cacheDir: false });
  const events: FolderEvent[] = [];
  const st = await loadFolderDataset(root, { size: 8, cacheDir: path.join(tmp, 'cache-same'), stream: true, onEvent: (e) => events.push(e) });
  t.ok(isStreamed(st.train) && isStreamed(st.test), 'both splits streamed');
  t.equal(st.train.images.length, 0, 'a streamed set holds no pixels');
  t.same(Array.from(st.train.labels), Array.from(mem.train.labels));
  t.same(Array.from(st.test.labels), Array.from(mem.test.labels));
  t.same(Array.from(all(st.train)), Array.from(mem.train.images), 'train pixels identical');
  t.same(Array.from(all(st.test)), Array.from(mem.test.images), 'test pixels identical');
  t.ok(events.some((e) => e.kind === 'cache' && e.status === 'written'), 'the cache was written while decoding');
  t.same(channelStats(st.train), channelStats(mem.train), 'streaming statistics pass: the same sums');
  // normalised through loadDataset (per-class subsets too)
  const a = await loadDataset('folder', { path: root, size: 8, cacheDir: false, stream: false, trainPerClass: 3 });
  const b = await loadDataset('folder', { path: root, size: 8, cacheDir: path.join(tmp, 'cache-same'), stream: true, trainPerClass: 3 });
  t.ok(isStreamed(b.train));
  t.same(b.normalization, a.normalization, 'the same per-channel statistics');
  t.same(Array.from(all(b.train)), Array.from(a.train.images), 'normalised train pixels identical (bit for bit)');
  t.same(Array.from(all(b.test)), Array.from(a.test.images));
  // data-layer reads agree
  const idx = Int32Array.from([4, 0, 7, 7, 2]);
  t.same(Array.from(gatherImages(b.train, idx)), Array.from(gatherImages(a.train, idx)), 'gather');
  t.same(Array.from(await gatherImagesAsync(b.train, idx)), Array.from(gatherImages(a.train, idx)), 'async gather');
  t.same(Array.from(rangeImages(b.train, 2, 4)), Array.from(a.train.images.slice(2 * 192, 6 * 192)), 'range');
  const sb = subsetClasses(b.train, [2, 0]), sa = subsetClasses(a.train, [2, 0]);
  t.same(Array.from(sb.labels), Array.from(sa.labels));
  t.same(Array.from(all(sb)), Array.from(sa.images), 'class subset of a streamed set');
  const fb = firstPerClass(subset(b.train, [8, 7, 6, 5]), 1), fa = firstPerClass(subset(a.train, [8, 7, 6, 5]), 1);
  t.same(Array.from(all(fb)), Array.from(fa.images), 'subset of a subset');
  t.throws(() => gatherImages(b.train, [b.train.n]), /index 9 outside the set's 9 images/);
  await t.rejects(gatherImagesAsync(b.train, [-1]), /index -1 outside/);
  // concatenation: streamed + in memory, in memory + in memory
  const cb = concatSets(sb, sa), ca = concatSets(sa, sa);
  t.ok(isStreamed(cb) && !isStreamed(ca));
  t.same(Array.from(cb.labels), Array.from(ca.labels));
  t.same(Array.from(all(cb)), Array.from(ca.images), 'concatenated sets read the same');
  t.same(Array.from(gatherImages(cb, [7, 0, 6, 1])), Array.from(gatherImages(ca, [7, 0, 6, 1])));
});

t.test('the streamed cache: hit, shared with the in-memory loader, rebuilt when files change or bytes rot', async (t) => {
  const root = path.join(tmp, 'cache');
  await makeFolder(root, 2, 3);
  const cacheDir = path.join(tmp, 'cache-dir');
  const load = async (stream: boolean) => {
    const ev: FolderEvent[] = [];
    const ds = await loadFolderDataset(root, { size: 8, cacheDir, stream, onEvent: (e) => ev.push(e) });
    const status = ev.filter((e): e is Extract<FolderEvent, { kind: 'cache' }> => e.kind === 'cache').map((e) => e.status + (e.reason ? `: ${e.reason}` : ''));
    return { ds, status, decoded: ev.filter((e) => e.kind === 'decode').length };
  };
  const ref = await loadFolderDataset(root, { size: 8, cacheDir: false });
  const first = await load(true);
  t.same(first.status, ['miss', 'written']);
  t.equal(first.decoded, 10);
  const second = await load(true);
  t.same(second.status, ['hit'], 'a valid cache is used');
  t.equal(second.decoded, 0, 'nothing decoded on a hit');
  t.same(Array.from(all(second.ds.train)), Array.from(ref.train.images));
  const inMem = await load(false);
  t.same(inMem.status, ['hit'], 'the in-memory loader reads the streamed cache');
  t.same(Array.from(inMem.ds.train.images), Array.from(ref.train.images));
  const [file] = folderCacheFiles(root, 8, 'cover', cacheDir);
  // a flipped pixel byte: checksum mismatch, rebuilt, right pixels
  const buf = fs.readFileSync(file);
  buf[buf.length - 100] ^= 0xff;
  fs.writeFileSync(file, buf);
  const rotted = await load(true);
  t.same(rotted.status, ['invalid: checksum mismatch', 'miss', 'written'], 'a corrupt cache is rebuilt, not trusted');
  t.same(Array.from(all(rotted.ds.train)), Array.from(ref.train.images));
  // a truncated file
  fs.truncateSync(file, 50);
  t.match((await load(true)).status, [/^invalid: /, 'miss', 'written']);
  // an added, a changed and a removed file each invalidate it
  await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(path.join(root, 'train/c1/new.png'));
  const added = await load(true);
  t.same(added.status, ['invalid: the files changed', 'miss', 'written'], 'added file');
  t.equal(added.ds.train.n, 7);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(root, 'train/c0/0.png'), later, later);
  t.same((await load(true)).status, ['invalid: the files changed', 'miss', 'written'], 'changed file');
  fs.rmSync(path.join(root, 'train/c1/new.png'));
  const removed = await load(true);
  t.same(removed.status, ['invalid: the files changed', 'miss', 'written'], 'removed file');
  t.equal(removed.ds.train.n, 6);
  t.same(Array.from(all(removed.ds.train)), Array.from(ref.train.images), 'back to the original pixels');
  // the streamed loader reads a cache the in-memory loader wrote
  fs.rmSync(file);
  t.same((await load(false)).status, ['miss', 'written']);
  const fromMem = await load(true);
  t.same(fromMem.status, ['hit'], 'and the other way round');
  t.same(Array.from(all(fromMem.ds.test)), Array.from(ref.test.images));
  // no cache folder at all: an unlinked temporary file, nothing left behind
  const before = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`m2kd-folder-${process.pid}-`));
  const anon = await loadFolderDataset(root, { size: 8, cacheDir: false, stream: true });
  t.same(Array.from(all(anon.train)), Array.from(ref.train.images), 'without a cache folder');
  t.same(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`m2kd-folder-${process.pid}-`)), before, 'the temporary file is unlinked');
  // 'auto' keeps a small folder in memory
  t.notOk(isStreamed((await loadFolderDataset(root, { size: 8, cacheDir: false, stream: 'auto' })).train));
  await t.rejects(loadFolderDataset(root, { size: 8, stream: 'yes' as unknown as boolean }), /stream must be true, false or 'auto'/);
});

// ---- incremental runs: streamed == in memory ----

/** 4 classes of 3x10x10 images quantised to u8 levels (so exemplars take the u8 palette). */
function synthetic(perClass: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const n = 4 * perClass, hw = 10, sz = 3 * hw * hw;
  const noise = rng.uniform(n * sz);
  const images = new Float32Array(n * sz);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels[i] = c;
    for (let k = 0; k < sz; k++) {
      const p = k % (hw * hw), y = Math.floor(p / hw), x = p % hw;
      const bright = (c < 2 ? y < 5 : y >= 5) && (c % 2 ? x >= 5 : x < 5);
      images[i * sz + k] = Math.floor(255 * Math.min(1, noise[i * sz + k] * 0.4 + (bright ? 0.5 : 0))) / 255;
    }
  }
  return { images, labels, n, channels: 3, height: hw, width: hw };
}

/** The same set, streamed through a store (with or without asynchronous reads). */
function streamed(s: ImageSet, async: boolean): ImageSet {
  const inner = setStore(s);
  const store: ImageStore = async ? { ...inner, read: inner.read, readAsync: async (rows, out) => inner.read(rows, out) } : inner;
  return { ...s, images: new Float32Array(0), stream: { store, rows: Int32Array.from({ length: s.n }, (_, i) => i) } };
}

async function runResults(method: string, ds: ImageDataset, cfg: IlConfig): Promise<StepResult[]> {
  const run = new OrderRun({ dataset: ds, method: METHODS[method], order: randomOrder(4, 3), orderIndex: 0, cfg });
  try {
    const r = await run.run();
    return r.map((s) => ({ ...s, seconds: { train: 0, finetune: 0, teachers: 0, eval: 0, total: 0 } }));
  } finally {
    run.dispose();
  }
}

t.test('incremental runs on a streamed set end with the in-memory results, bit for bit', async (t) => {
  const train = synthetic(10, 1), test = synthetic(4, 2);
  const mem: ImageDataset = { name: 'synthetic', classes: 4, classNames: ['a', 'b', 'c', 'd'], train, test };
  const cfg: IlConfig = { ...defaultConfig('synthetic', 2), epochs: 2, milestones: [1], finetuneEpochs: 1, batchSize: 12, lr: 0.5, memory: 8, evalBatchSize: 16, flip: true, bnRecalibrate: true };
  for (const [method, async] of [['m2kd', true], ['icarl-m2kd', true], ['lwf-mc', false], ['icarl', false]] as const) {
    const st: ImageDataset = { ...mem, train: streamed(train, async), test: streamed(test, async) };
    const a = await runResults(method, mem, cfg);
    const b = await runResults(method, st, cfg);
    t.same(b, a, `${method}${async ? ' (asynchronous reads, prefetch)' : ''}: identical step results (accuracy, confusion, loss, memory)`);
  }
  // a run with the teacher cache off (teachers on the fly on streamed batches) too
  const st: ImageDataset = { ...mem, train: streamed(train, true), test: streamed(test, true) };
  t.same(await runResults('m2kd', st, { ...cfg, teacherCache: false }), await runResults('m2kd', mem, { ...cfg, teacherCache: false }), 'teachers on the fly');
});

t.test('iCaRL on a streamed folder keeps u8 exemplars and the in-memory results', async (t) => {
  const root = path.join(tmp, 'icarl');
  await makeFolder(root, 4, 6);
  const a = await loadDataset('folder', { path: root, size: 8, cacheDir: false, stream: false });
  const b = await loadDataset('folder', { path: root, size: 8, cacheDir: false, stream: true });
  const cfg: IlConfig = { ...defaultConfig('folder', 2, 4), epochs: 1, milestones: [], finetuneEpochs: 1, batchSize: 8, memory: 8, evalBatchSize: 8 };
  const run = new OrderRun({ dataset: b, method: METHODS['icarl-m2kd'], order: randomOrder(4, 5), orderIndex: 0, cfg });
  let rb: StepResult[];
  try {
    rb = (await run.run()).map((s) => ({ ...s, seconds: { train: 0, finetune: 0, teachers: 0, eval: 0, total: 0 } }));
    t.equal(run.exemplars!.storage, 'u8-palette', 'exemplars of a streamed folder are stored as u8 codes');
    t.equal(run.exemplars!.size, 8);
  } finally {
    run.dispose();
  }
  t.same(rb, await runIn(a, cfg), 'the same results in memory');
});

async function runIn(ds: ImageDataset, cfg: IlConfig): Promise<StepResult[]> {
  const run = new OrderRun({ dataset: ds, method: METHODS['icarl-m2kd'], order: randomOrder(4, 5), orderIndex: 0, cfg });
  try {
    return (await run.run()).map((s) => ({ ...s, seconds: { train: 0, finetune: 0, teachers: 0, eval: 0, total: 0 } }));
  } finally {
    run.dispose();
  }
}

t.test('a streamed iCaRL run with u8 exemplars resumes from its checkpoint (codes + palettes) to the same numbers', async (t) => {
  const train = synthetic(10, 1), test = synthetic(4, 2);
  const ds: ImageDataset = { name: 'synthetic', classes: 4, classNames: ['a', 'b', 'c', 'd'], train: streamed(train, true), test: streamed(test, true) };
  const cfg: IlConfig = { ...defaultConfig('synthetic', 2), epochs: 2, milestones: [1], finetuneEpochs: 1, batchSize: 12, lr: 0.5, memory: 8, evalBatchSize: 16, flip: true };
  const want = await runResults('icarl', ds, cfg);
  const dir = path.join(tmp, 'ckpt-icarl');
  const ctrl = new AbortController();
  let epochs = 0;
  const a = new OrderRun({
    dataset: ds, method: METHODS.icarl, order: randomOrder(4, 3), orderIndex: 0, cfg, signal: ctrl.signal,
    onCheckpoint: (r, at) => {
      saveRunState(dir, r, cfg);
      if (at.phase !== 'step' && ++epochs >= 3) ctrl.abort();
    },
  });
  await t.rejects(a.run(), /aborted/, 'killed in the second step');
  t.equal(a.exemplars!.storage, 'u8-palette');
  a.dispose();
  t.ok(readSafetensors(path.join(dir, 'exemplars.safetensors')).entries.get('codes')?.dtype === 'U8', 'the checkpoint holds the exemplars as u8 codes');
  const b = new OrderRun({ dataset: ds, method: METHODS.icarl, order: randomOrder(4, 3), orderIndex: 0, cfg });
  loadRunState(dir, b);
  const got = (await b.run()).map((s) => ({ ...s, seconds: { train: 0, finetune: 0, teachers: 0, eval: 0, total: 0 } }));
  b.dispose();
  // (the first step's result comes back from the checkpoint's JSON: compare as JSON)
  t.same(JSON.parse(JSON.stringify(got)), JSON.parse(JSON.stringify(want)), 'resumed = uninterrupted');
});

t.test('train() on a folder: stream on and off give the same results', async (t) => {
  const root = path.join(tmp, 'api');
  await makeFolder(root, 4, 5);
  const opts = { dataset: 'folder', data: root, methods: 'm2kd,icarl', classesPerStep: 2, epochs: 1, batchSize: 8, memory: 8, out: null, plots: false } as const;
  const a = await train({ ...opts, stream: false });
  const b = await train({ ...opts, stream: true });
  const strip = (r: typeof a.results) => JSON.parse(JSON.stringify(r.methods, (k, v) => (k === 'seconds' ? undefined : v)));
  t.same(strip(b.results), strip(a.results), 'identical results');
  t.equal(a.results.methods.m2kd.config.lr, 0.08, 'the folder default lr follows its 4 classes');
});
