// CIFAR-10 / CIFAR-100 binary loaders: files written here in the official record formats (some
// gzipped), the extracted folder or its parent, class-name files, fine/coarse labels, and clear
// errors for truncated records, missing files, bad labels.
import t from 'tap';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { loadCifar10, loadCifar100, loadDataset, CIFAR10_CLASSES, CIFAR100_FINE_CLASSES, CIFAR100_COARSE_CLASSES } from '../src/data';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-cifar-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PIX = 3072;
/** A record's pixel bytes: a pattern that differs per (file seed, record, position). */
function pixels(seed: number, r: number): Uint8Array {
  const p = new Uint8Array(PIX);
  for (let j = 0; j < PIX; j++) p[j] = (j * 13 + r * 101 + seed * 7) & 0xff;
  return p;
}
function records(labels: number[][], seed: number): Buffer {
  const lb = labels[0].length;
  const out = Buffer.alloc(labels.length * (lb + PIX));
  labels.forEach((ls, r) => {
    const off = r * (lb + PIX);
    ls.forEach((l, k) => (out[off + k] = l));
    out.set(pixels(seed, r), off + lb);
  });
  return out;
}
function write(file: string, buf: Buffer, gz = false): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(gz ? file + '.gz' : file, gz ? zlib.gzipSync(buf) : buf);
}

/** CIFAR-10 in parent/cifar-10-batches-bin: batch i has i + 1 records, label (r + i) % 10. */
function makeCifar10(parent: string, opts: { meta?: string; gz?: boolean } = {}): string {
  const d = path.join(parent, 'cifar-10-batches-bin');
  for (let i = 1; i <= 5; i++)
    write(path.join(d, `data_batch_${i}.bin`), records(Array.from({ length: i + 1 }, (_, r) => [(r + i) % 10]), i), (opts.gz ?? false) && i % 2 === 1);
  write(path.join(d, 'test_batch.bin'), records([[9], [0], [4]], 0), opts.gz ?? false);
  if (opts.meta !== undefined) fs.writeFileSync(path.join(d, 'batches.meta.txt'), opts.meta);
  return d;
}

t.test('CIFAR-10: records, labels, CHW pixels, parent or extracted folder', async (t) => {
  const parent = path.join(tmp, 'c10');
  const d = makeCifar10(parent, { gz: true });
  for (const dir of [parent, d]) {
    const ds = loadCifar10(dir);
    t.equal(ds.source, d);
    t.equal(ds.classes, 10);
    t.same(ds.classNames, CIFAR10_CLASSES);
    t.equal(ds.train.n, 2 + 3 + 4 + 5 + 6);
    t.same([ds.train.channels, ds.train.height, ds.train.width], [3, 32, 32]);
    t.same(Array.from(ds.test.labels), [9, 0, 4]);
    const expectLabels: number[] = [];
    for (let i = 1; i <= 5; i++) for (let r = 0; r <= i; r++) expectLabels.push((r + i) % 10);
    t.same(Array.from(ds.train.labels), expectLabels);
    // record 1 of batch 3 is train sample 2 + 3 + 1 = 6; its bytes are R plane, G plane, B plane
    const p = pixels(3, 1);
    let bad = 0;
    for (let j = 0; j < PIX; j++) if (ds.train.images[6 * PIX + j] !== Math.fround(p[j] / 255)) bad++;
    t.equal(bad, 0, 'pixels are byte / 255 in CHW order');
    t.equal(ds.test.images[2 * PIX + 5], Math.fround(pixels(0, 2)[5] / 255));
  }
});

t.test('CIFAR-10: batches.meta.txt gives the class names', async (t) => {
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
  const ds = loadCifar10(makeCifar10(path.join(tmp, 'c10meta'), { meta: names.join('\n') + '\n\n' }));
  t.same(ds.classNames, names);
  t.throws(() => loadCifar10(makeCifar10(path.join(tmp, 'c10meta2'), { meta: 'a\nb\n' })), /batches\.meta\.txt: 2 class names, expected 10/);
});

t.test('CIFAR-10: bad input', async (t) => {
  const d1 = makeCifar10(path.join(tmp, 'trunc'));
  const f = path.join(d1, 'data_batch_2.bin');
  fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 3073 * 2 + 100));
  t.throws(() => loadCifar10(d1), /data_batch_2\.bin: truncated or corrupt CIFAR file: 6246 bytes is not a whole number of 3073-byte records \(2 records and 100 bytes left over\)/);

  const d2 = makeCifar10(path.join(tmp, 'miss'));
  fs.unlinkSync(path.join(d2, 'test_batch.bin'));
  t.throws(() => loadCifar10(d2), /cifar10: missing test_batch\.bin \(or test_batch\.bin\.gz\) in .*miss/);

  const d3 = makeCifar10(path.join(tmp, 'range'));
  write(path.join(d3, 'data_batch_4.bin'), records([[3], [10]], 4));
  t.throws(() => loadCifar10(d3), /data_batch_4\.bin: label 10 of record 1 is out of range \[0, 10\)/);

  const d4 = makeCifar10(path.join(tmp, 'empty'));
  fs.writeFileSync(path.join(d4, 'data_batch_5.bin'), Buffer.alloc(0));
  t.throws(() => loadCifar10(d4), /data_batch_5\.bin: empty CIFAR file/);

  const d5 = makeCifar10(path.join(tmp, 'badgz'), { gz: true });
  const g = path.join(d5, 'data_batch_1.bin.gz');
  fs.writeFileSync(g, fs.readFileSync(g).subarray(0, 40));
  t.throws(() => loadCifar10(d5), /data_batch_1\.bin\.gz: corrupt or truncated gzip data/);

  const none = path.join(tmp, 'none');
  fs.mkdirSync(none);
  fs.writeFileSync(path.join(none, 'cifar-10-binary.tar.gz'), 'x');
  t.throws(() => loadCifar10(none), /missing data_batch_1\.bin .*extract it first \(tar xzf cifar-10-binary\.tar\.gz\)/);
  t.throws(() => loadCifar10(path.join(tmp, 'nowhere')), /cifar10: folder .*nowhere does not exist/);
});

/** CIFAR-100 in parent/cifar-100-binary: record r has coarse r % 20, fine (3r + 1) % 100. */
function makeCifar100(parent: string, nTrain = 7, nTest = 4, gz = false): string {
  const d = path.join(parent, 'cifar-100-binary');
  const lab = (n: number) => Array.from({ length: n }, (_, r) => [r % 20, (3 * r + 1) % 100]);
  write(path.join(d, 'train.bin'), records(lab(nTrain), 1), gz);
  write(path.join(d, 'test.bin'), records(lab(nTest), 2));
  return d;
}

t.test('CIFAR-100: fine and coarse labels, names, pixels', async (t) => {
  const parent = path.join(tmp, 'c100');
  const d = makeCifar100(parent, 7, 4, true);
  const fine = loadCifar100(parent);
  t.equal(fine.name, 'cifar100');
  t.equal(fine.classes, 100);
  t.same(fine.classNames, CIFAR100_FINE_CLASSES);
  t.same(Array.from(fine.train.labels), [1, 4, 7, 10, 13, 16, 19]);
  t.same(Array.from(fine.test.labels), [1, 4, 7, 10]);
  t.equal(fine.train.images[3 * PIX + 17], Math.fround(pixels(1, 3)[17] / 255), 'pixels start after the two label bytes');
  const coarse = loadCifar100(d, { labels: 'coarse' });
  t.equal(coarse.classes, 20);
  t.same(coarse.classNames, CIFAR100_COARSE_CLASSES);
  t.same(Array.from(coarse.train.labels), [0, 1, 2, 3, 4, 5, 6]);
  fs.writeFileSync(path.join(d, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `super${i}`).join('\n'));
  t.equal(loadCifar100(d, { labels: 'coarse' }).classNames[19], 'super19');
  t.throws(() => loadCifar100(d, { labels: 'medium' as 'fine' }), /labels must be 'fine' or 'coarse'/);
});

t.test('CIFAR-100: bad input', async (t) => {
  const d1 = makeCifar100(path.join(tmp, 't100'));
  fs.appendFileSync(path.join(d1, 'test.bin'), Buffer.alloc(10));
  t.throws(() => loadCifar100(d1), /test\.bin: truncated or corrupt CIFAR file: .* 3074-byte records \(4 records and 10 bytes left over\)/);
  const d2 = makeCifar100(path.join(tmp, 'r100'));
  write(path.join(d2, 'train.bin'), records([[0, 5], [20, 6]], 1));
  t.equal(loadCifar100(d2).train.n, 2, 'the fine labels are fine');
  t.throws(() => loadCifar100(d2, { labels: 'coarse' }), /train\.bin: label 20 of record 1 is out of range \[0, 20\)/);
  write(path.join(d2, 'train.bin'), records([[0, 100]], 1));
  t.throws(() => loadCifar100(d2), /label 100 of record 0 is out of range \[0, 100\)/);
  const d3 = makeCifar100(path.join(tmp, 'm100'));
  fs.unlinkSync(path.join(d3, 'test.bin'));
  t.throws(() => loadCifar100(d3), /cifar100: missing test\.bin \(or test\.bin\.gz\)/);
  t.throws(() => loadCifar100(path.join(tmp, 'c10')), /cifar100: missing train\.bin/, 'a CIFAR-10 folder is not CIFAR-100');
});

t.test('loadDataset: cifar10 / cifar100 with trainPerClass and normalisation', async (t) => {
  const ds = await loadDataset('cifar10', { path: path.join(tmp, 'c10'), trainPerClass: 1 });
  // first record of each class in file order
  const seen = new Set<number>();
  const expect: number[] = [];
  for (let i = 1; i <= 5; i++)
    for (let r = 0; r <= i; r++) {
      const l = (r + i) % 10;
      if (!seen.has(l)) {
        seen.add(l);
        expect.push(l);
      }
    }
  t.same(Array.from(ds.train.labels), expect);
  t.equal(ds.normalization!.mean.length, 3);
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let i = 0; i < ds.train.n; i++) for (let k = 0; k < 1024; k++) s += ds.train.images[(i * 3 + c) * 1024 + k];
    t.ok(Math.abs(s / (ds.train.n * 1024)) < 1e-5, `channel ${c} mean 0 after normalising with the kept train images`);
  }
  const c100 = await loadDataset('CIFAR-100', { path: path.join(tmp, 'c100'), labels: 'coarse', normalize: false });
  t.equal(c100.classes, 20);
  await t.rejects(loadDataset('cifar10', {}), /cifar10: needs a path/);
  await t.rejects(loadDataset('cifar10', { path: path.join(tmp, 'c10'), size: 64 }), /images are 32x32/);
  await t.rejects(loadDataset('cifar10', { path: path.join(tmp, 'c10'), trainPerClass: 0 }), /trainPerClass must be a positive integer/);
});
