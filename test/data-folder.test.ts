// Image-folder loader: PNG/JPEG files made here with sharp in root/{train,val|test}/<class>/,
// exact PNG pixels, class mapping, grey/alpha to RGB, resizing, the decoded-image cache (hit,
// corrupt -> rebuilt, stale -> rebuilt, unwritable -> tmpdir) and clear errors for bad input.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp = require('sharp');
import { loadFolderDataset, loadDataset, folderCacheFiles, FolderEvent } from '../src/data';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-folder-'));
const tmpCacheFiles: string[] = [];
t.teardown(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const f of tmpCacheFiles) fs.rmSync(f, { force: true });
});

const S = 8;
/** Random-looking RGB pixels (HWC) from a seed. */
function rgb(seed: number, w = S, h = S): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let i = 0; i < b.length; i++) b[i] = (i * 53 + seed * 97 + ((i * i) >> 3)) & 0xff;
  return b;
}
async function png(file: string, px: Buffer, channels: 1 | 3 | 4 = 3, w = S, h = S): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(px, { raw: { width: w, height: h, channels } }).png().toFile(file);
}
async function jpeg(file: string, color: [number, number, number], w = S, h = S): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: color[0], g: color[1], b: color[2] } } })
    .jpeg({ quality: 95 })
    .toFile(file);
}
/** CHW [0,1] floats of an HWC byte image. */
function chw(px: Buffer, hw = S * S): Float32Array {
  const out = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) out[c * hw + p] = Math.fround(px[p * 3 + c] / 255);
  return out;
}
function sample(set: { images: Float32Array }, i: number): Float32Array {
  return set.images.subarray(i * 3 * S * S, (i + 1) * 3 * S * S);
}

/** root/train/{ant,cat,dog}, root/<testName>/{ant,dog}; returns the PNG pixels by name. */
async function makeRoot(root: string, testName = 'val'): Promise<Record<string, Buffer>> {
  const px: Record<string, Buffer> = {};
  const p = async (rel: string, seed: number) => {
    px[rel] = rgb(seed);
    await png(path.join(root, rel), px[rel]);
  };
  await p('train/ant/a0.PNG', 1);
  const grey = Buffer.from(Array.from({ length: S * S }, (_, i) => i * 4));
  await png(path.join(root, 'train/ant/sub/a1.png'), grey, 1);
  fs.writeFileSync(path.join(root, 'train/ant/notes.txt'), 'not an image, ignored');
  fs.writeFileSync(path.join(root, 'train/ant/.hidden.png'), 'hidden, ignored');
  await p('train/cat/c0.png', 2);
  const rgba = Buffer.alloc(S * S * 4);
  for (let i = 0; i < S * S; i++) rgba.set([10, 20 + i, 30, i % 2 ? 255 : 128], i * 4);
  await png(path.join(root, 'train/cat/c1.png'), rgba, 4);
  await jpeg(path.join(root, 'train/dog/d0.jpg'), [200, 100, 50]);
  await jpeg(path.join(root, 'train/dog/d1.jpeg'), [20, 220, 120]);
  await p(`${testName}/ant/v0.png`, 3);
  await jpeg(path.join(root, `${testName}/dog/v1.jpg`), [90, 90, 250]);
  return px;
}

t.test('classes, labels, exact PNG pixels, grey and alpha to RGB, JPEG colours', async (t) => {
  const root = path.join(tmp, 'basic');
  const px = await makeRoot(root);
  const ds = await loadFolderDataset(root, { size: S, cacheDir: false });
  t.equal(ds.name, 'basic');
  t.same(ds.classNames, ['ant', 'cat', 'dog'], 'sorted class folders');
  t.equal(ds.classes, 3);
  t.same(Array.from(ds.train.labels), [0, 0, 1, 1, 2, 2], 'notes.txt and .hidden.png are skipped; sub-folders are walked');
  t.same(Array.from(ds.test.labels), [0, 2], 'a class may have no test images');
  t.same([ds.train.channels, ds.train.height, ds.train.width], [3, S, S]);
  t.same(Array.from(sample(ds.train, 0)), Array.from(chw(px['train/ant/a0.PNG'])), 'PNG pixels survive exactly');
  t.same(Array.from(sample(ds.train, 2)), Array.from(chw(px['train/cat/c0.png'])));
  t.same(Array.from(sample(ds.test, 0)), Array.from(chw(px['val/ant/v0.png'])));
  const g = sample(ds.train, 1);
  t.ok([5, 17, 63].every((p) => g[p] === Math.fround((p * 4) / 255) && g[64 + p] === g[p] && g[128 + p] === g[p]), 'grey PNG -> three equal channels');
  const a = sample(ds.train, 3);
  t.ok(Math.abs(a[7] * 255 - 10) <= 1 && Math.abs(a[64 + 7] * 255 - 27) <= 1 && Math.abs(a[128 + 7] * 255 - 30) <= 1, 'alpha dropped, colour kept');
  const mean = (s: Float32Array, c: number) => s.subarray(c * 64, (c + 1) * 64).reduce((x, y) => x + y, 0) / 64;
  const d0 = sample(ds.train, 4);
  t.ok([200, 100, 50].every((v, c) => Math.abs(mean(d0, c) * 255 - v) < 4), `JPEG colour ${[0, 1, 2].map((c) => (mean(d0, c) * 255).toFixed(1))}`);
});

t.test('"test" is accepted instead of "val"; resizing', async (t) => {
  const root = path.join(tmp, 'testsplit');
  await makeRoot(root, 'test');
  const ds = await loadFolderDataset(root, { size: S, cacheDir: false });
  t.equal(ds.test.n, 2);
  const r2 = path.join(tmp, 'resize');
  await jpeg(path.join(r2, 'train/x/big.jpg'), [255, 0, 0], 40, 24);
  const stripes = Buffer.alloc(16 * 12 * 3);
  for (let y = 0; y < 12; y++) for (let x = 0; x < 16; x++) stripes.set(x < 8 ? [0, 0, 0] : [255, 255, 255], (y * 16 + x) * 3);
  await png(path.join(r2, 'val/x/stripes.png'), stripes, 3, 16, 12);
  const small = await loadFolderDataset(r2, { size: 4, cacheDir: false });
  t.same([small.train.height, small.train.width, small.train.images.length], [4, 4, 48]);
  t.ok(small.train.images.subarray(0, 16).every((v) => v > 0.95) && small.train.images.subarray(16).every((v) => v < 0.05), 'red stays red');
  const st = small.test.images;
  t.ok(st[0] < 0.05 && st[3] > 0.95, 'cover keeps the left/right halves (centre crop of the 16x12 image)');
  const filled = await loadFolderDataset(r2, { size: 6, fit: 'fill', cacheDir: false });
  t.same([filled.test.height, filled.test.width], [6, 6]);
  await t.rejects(loadFolderDataset(r2, { size: 0 }), /size must be an integer in \[1, 4096\], got 0/);
  await t.rejects(loadFolderDataset(r2, { fit: 'stretch' as 'fill' }), /fit must be 'cover', 'fill' or 'contain'/);
});

async function load(root: string, opts: { cacheDir?: string | false } = {}) {
  const events: FolderEvent[] = [];
  const ds = await loadFolderDataset(root, { size: S, ...opts, onEvent: (e) => events.push(e) });
  const cache = events.filter((e) => e.kind === 'cache') as Extract<FolderEvent, { kind: 'cache' }>[];
  return { ds, decoded: events.filter((e) => e.kind === 'decode').length, cache, status: cache.map((e) => e.status) };
}

t.test('the decoded-image cache: hit, corrupt, truncated, stale', async (t) => {
  const root = path.join(tmp, 'cached');
  await makeRoot(root);
  const first = await load(root);
  t.equal(first.decoded, 8, 'first load decodes every image');
  t.same(first.status, ['miss', 'written']);
  const file = first.cache[1].file!;
  t.equal(path.dirname(file), path.join(root, '.m2kd-cache'));
  t.equal(file, folderCacheFiles(root, S, 'cover')[0]);

  const second = await load(root);
  t.equal(second.decoded, 0, 'second load decodes nothing');
  t.same(second.status, ['hit']);
  t.same(Array.from(second.ds.train.images), Array.from(first.ds.train.images));
  t.same(Array.from(second.ds.test.labels), Array.from(first.ds.test.labels));
  t.same(second.ds.classNames, first.ds.classNames);

  const bytes = fs.readFileSync(file);
  const flipped = Buffer.from(bytes);
  flipped[bytes.length - 100] ^= 0x55; // a pixel byte
  fs.writeFileSync(file, flipped);
  const third = await load(root);
  t.same(third.status, ['invalid', 'miss', 'written'], 'a corrupt cache is rebuilt');
  t.match(third.cache[0].reason, /checksum mismatch/);
  t.equal(third.decoded, 8);
  t.same(Array.from(third.ds.train.images), Array.from(first.ds.train.images), 'with the right pixels');
  t.same(fs.readFileSync(file), bytes, 'and rewritten');

  fs.writeFileSync(file, bytes.subarray(0, 1000));
  const fourth = await load(root);
  t.same(fourth.status, ['invalid', 'miss', 'written'], 'a truncated cache is rebuilt');
  fs.writeFileSync(file, Buffer.from('M2KD'));
  t.match((await load(root)).cache[0].reason, /too short/);

  // change one image: new content and mtime -> the key changes
  const c0 = path.join(root, 'train/cat/c0.png');
  const newPx = rgb(42);
  await png(c0, newPx);
  fs.utimesSync(c0, new Date(), new Date(Date.now() + 5000));
  const fifth = await load(root);
  t.same(fifth.status, ['invalid', 'miss', 'written']);
  t.match(fifth.cache[0].reason, /the files changed/);
  t.same(Array.from(sample(fifth.ds.train, 2)), Array.from(chw(newPx)), 'the new pixels, not the cached ones');
  t.same((await load(root)).status, ['hit']);
  // a new file also changes the key
  await png(path.join(root, 'val/cat/new.png'), rgb(7));
  const sixth = await load(root);
  t.same(sixth.status, ['invalid', 'miss', 'written']);
  t.same(Array.from(sixth.ds.test.labels), [0, 1, 2]);
});

t.test('cache location: given folder, unwritable root -> tmpdir, disabled', async (t) => {
  const root = path.join(tmp, 'where');
  await makeRoot(root);
  const dir = path.join(tmp, 'mycache');
  const a = await load(root, { cacheDir: dir });
  t.same(a.status, ['miss', 'written']);
  t.equal(path.dirname(a.cache[1].file!), dir);
  t.same((await load(root, { cacheDir: dir })).status, ['hit']);
  t.notOk(fs.existsSync(path.join(root, '.m2kd-cache')), 'nothing written in the root');

  const off = await load(root, { cacheDir: false });
  t.same(off.status, ['disabled']);
  t.equal(off.decoded, 8);
  t.notOk(fs.existsSync(path.join(root, '.m2kd-cache')));

  // <root>/.m2kd-cache cannot be created (a file is in the way): fall back to os.tmpdir()
  const root2 = path.join(tmp, 'readonly');
  await makeRoot(root2);
  fs.writeFileSync(path.join(root2, '.m2kd-cache'), 'in the way');
  const fallback = folderCacheFiles(root2, S, 'cover')[1];
  tmpCacheFiles.push(fallback);
  const b = await load(root2);
  t.same(b.status, ['miss', 'written']);
  t.equal(b.cache[1].file, fallback);
  t.equal(path.dirname(path.dirname(fallback)), os.tmpdir());
  const c = await load(root2);
  t.same(c.status, ['hit']);
  t.equal(c.cache[0].file, fallback);
});

t.test('bad input gets a clear error', async (t) => {
  const root = path.join(tmp, 'bad');
  await makeRoot(root);
  fs.writeFileSync(path.join(root, 'train/cat/broken.jpg'), 'this is text, not a JPEG');
  await t.rejects(loadFolderDataset(root, { size: S, cacheDir: false }), /cannot decode image .*train\/cat\/broken\.jpg/);
  fs.unlinkSync(path.join(root, 'train/cat/broken.jpg'));
  const good = fs.readFileSync(path.join(root, 'train/cat/c0.png'));
  fs.writeFileSync(path.join(root, 'val/ant/cut.png'), good.subarray(0, good.length >> 1));
  await t.rejects(loadFolderDataset(root, { size: S, cacheDir: false }), /cannot decode image .*val\/ant\/cut\.png/, 'a truncated PNG');
  fs.unlinkSync(path.join(root, 'val/ant/cut.png'));
  t.equal((await loadFolderDataset(root, { size: S, cacheDir: false })).train.n, 6, 'fine again');

  await png(path.join(root, 'val/zebra/z.png'), rgb(1));
  await t.rejects(loadFolderDataset(root, { cacheDir: false }), /class folder 'zebra' is not among the 3 classes of .*train/);
  fs.rmSync(path.join(root, 'val/zebra'), { recursive: true });
  fs.mkdirSync(path.join(root, 'train/emu'));
  await t.rejects(loadFolderDataset(root, { cacheDir: false }), /no jpg\/jpeg\/png images for class emu in .*train/);
  fs.rmSync(path.join(root, 'train/emu'), { recursive: true });
  fs.renameSync(path.join(root, 'val'), path.join(root, 'valid'));
  await t.rejects(loadFolderDataset(root, { cacheDir: false }), /missing .*bad\/val \(or .*bad\/test\)/);
  const noTrain = path.join(tmp, 'notrain');
  fs.mkdirSync(path.join(noTrain, 'val'), { recursive: true });
  await t.rejects(loadFolderDataset(noTrain), /missing .*notrain\/train/);
  await t.rejects(loadFolderDataset(path.join(tmp, 'absent')), /folder .*absent does not exist/);
  await t.rejects(loadDataset('folder', { path: path.join(tmp, 'absent') }), /folder: path .*absent does not exist/);
  await t.rejects(loadDataset('folder'), /folder: needs a path/);
});

t.test('loadDataset("folder") normalises per channel', async (t) => {
  const root = path.join(tmp, 'reg');
  await makeRoot(root);
  const ds = await loadDataset('folder', { path: root, size: S, cacheDir: false, trainPerClass: 1 });
  t.same(Array.from(ds.train.labels), [0, 1, 2]);
  t.equal(ds.normalization!.mean.length, 3);
  let s = 0;
  for (let i = 0; i < ds.train.n; i++) for (let k = 0; k < S * S; k++) s += ds.train.images[i * 3 * S * S + k];
  t.ok(Math.abs(s) < 1e-3, 'red channel mean 0');
});
