// ImageNet-style image folders: root/train/<class>/**/*.{jpg,jpeg,png} and root/val/<class>/...
// (or root/test/<class>/...). Classes are the train sub-folders in code-point order; images are
// decoded with sharp, converted to 8-bit sRGB (alpha dropped), resized to size x size (default:
// scale to cover, centre crop) and stored as [0, 1] NCHW floats.
// Decoding is slow, so the decoded u8 pixels are cached in one binary file per (root, size, fit),
// in <root>/.m2kd-cache/ or a given cacheDir, or os.tmpdir()/m2kd-cache when those cannot be
// written. The cache holds a key (a hash of every file's path, size and mtime, the class names,
// the size and the fit) and a SHA-256 of its bytes; it is used only when both match, otherwise it
// is rebuilt. It is written atomically.
// Streamed (stream: true, or 'auto' and the decoded float32 images would pass
// STREAM_AUTO_BYTES): the cache file, the same format, is written image by image as the images
// are decoded (in parallel) and then read by range: a set keeps only its labels and row numbers
// in memory, and a batch is read from the file (FolderStore) when it is needed. Without a usable
// cache folder the file is an unlinked temporary file that lives as long as the dataset.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type SharpNs = require('sharp');
import { writeFileAtomic } from '../io/atomic';
import { ImageDataset, ImageSet, ImageStore } from './dataset';
import { bytesToUnit, isDir, requireDir } from './files';

export type FolderFit = 'cover' | 'fill' | 'contain';

export type FolderEvent =
  | { kind: 'scan'; root: string; classes: number; train: number; test: number }
  | { kind: 'decode'; file: string; done: number; total: number }
  | { kind: 'cache'; status: 'hit' | 'miss' | 'invalid' | 'written' | 'unwritable' | 'disabled'; file?: string; reason?: string };

export interface FolderOptions {
  /** output side in pixels (default 32) */
  size?: number;
  /** how to resize: 'cover' scales to cover then centre-crops (default), 'fill' stretches, 'contain' letterboxes with black */
  fit?: FolderFit;
  /** where to keep the decoded-image cache (default <root>/.m2kd-cache); false disables it */
  cacheDir?: string | false;
  /** dataset name (default: the root folder's name) */
  name?: string;
  /** file extensions taken as images, lower case without dot (default jpg, jpeg, png); other files are ignored */
  extensions?: string[];
  /** images decoded at once (default 4) */
  concurrency?: number;
  /** progress and cache reports */
  onEvent?: (e: FolderEvent) => void;
  /**
   * read the images from the cache file batch by batch instead of decoding them into memory:
   * true, false (default) or 'auto' (when the decoded float32 images would pass STREAM_AUTO_BYTES)
   */
  stream?: boolean | 'auto';
}

/** 'auto' streams a folder whose decoded float32 images (both splits) would pass this many bytes. */
export const STREAM_AUTO_BYTES = 1024 ** 3;

interface Entry {
  file: string;
  rel: string;
  label: number;
  size: number;
  mtimeMs: number;
}

const CACHE_MAGIC = Buffer.from('M2KDFC01', 'latin1');
const CACHE_VERSION = 1;

function listFiles(dir: string, exts: Set<string>): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    const ents = fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    checkNames(d, exts);
    for (const e of ents) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (exts.has(path.extname(e.name).slice(1).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * File names that are not valid UTF-8 cannot be opened through JS strings (the bytes are replaced
 * by U+FFFD): an image or folder so named is an error naming the folder, not a confusing ENOENT.
 */
function checkNames(d: string, exts: Set<string>): void {
  for (const e of fs.readdirSync(d, { withFileTypes: true, encoding: 'buffer' })) {
    const raw = e.name as unknown as Buffer;
    const name = raw.toString('utf8');
    if (Buffer.from(name, 'utf8').equals(raw) || name.startsWith('.')) continue;
    if (e.isDirectory() || exts.has(path.extname(name).slice(1).toLowerCase()))
      throw new Error(`image folder dataset: the name ${JSON.stringify(name)} in ${d} is not valid UTF-8; rename it (e.g. convmv -f latin1 -t utf8)`);
  }
}

function subdirs(dir: string): string[] {
  checkNames(dir, new Set());
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && isDir(path.join(dir, e.name)))))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function scanSplit(root: string, splitDir: string, classNames: string[], exts: Set<string>): Entry[] {
  const index = new Map(classNames.map((c, i) => [c, i]));
  const entries: Entry[] = [];
  for (const c of subdirs(splitDir)) {
    const label = index.get(c);
    if (label === undefined)
      throw new Error(`${path.join(splitDir, c)}: class folder '${c}' is not among the ${classNames.length} classes of ${path.join(root, 'train')}`);
    for (const file of listFiles(path.join(splitDir, c), exts)) {
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch (e) {
        throw new Error(`image folder dataset: cannot read ${file}: ${(e as Error).message}`);
      }
      entries.push({ file, rel: path.relative(root, file), label, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
  return entries;
}

type SharpFn = typeof SharpNs;
let sharpFn: SharpFn | null = null;
/** sharp is loaded on first use, so importing the package does not load libvips. */
function getSharp(): SharpFn {
  if (!sharpFn) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      sharpFn = require('sharp') as SharpFn;
    } catch (e) {
      throw new Error(`image folder dataset: cannot load the image decoder (npm package 'sharp'): ${(e as Error).message}`);
    }
  }
  return sharpFn;
}

/** Decodes one image file to size x size x 3 u8 RGB (HWC). */
export async function decodeImage(file: string, size: number, fit: FolderFit = 'cover'): Promise<Buffer> {
  let out: { data: Buffer; info: SharpNs.OutputInfo };
  try {
    out = await getSharp()(file)
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit, position: 'centre', background: { r: 0, g: 0, b: 0 } })
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`cannot decode image ${file}: ${(e as Error).message}`);
  }
  const { width, height, channels } = out.info;
  if (width !== size || height !== size || channels !== 3)
    throw new Error(`cannot decode image ${file}: got ${width}x${height}x${channels}, expected ${size}x${size}x3`);
  return out.data;
}

async function decodeAll(entries: Entry[], size: number, fit: FolderFit, concurrency: number, emit: (e: FolderEvent) => void, progress: { done: number; total: number }): Promise<Uint8Array> {
  const per = 3 * size * size;
  const hw = size * size;
  const out = new Uint8Array(entries.length * per);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= entries.length) return;
      const hwc = await decodeImage(entries[i].file, size, fit);
      // HWC -> CHW
      const base = i * per;
      for (let p = 0, q = 0; p < hw; p++, q += 3) {
        out[base + p] = hwc[q];
        out[base + hw + p] = hwc[q + 1];
        out[base + 2 * hw + p] = hwc[q + 2];
      }
      progress.done++;
      emit({ kind: 'decode', file: entries[i].file, done: progress.done, total: progress.total });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, entries.length)) }, worker));
  return out;
}

interface Decoded {
  train: { labels: Int32Array; pixels: Uint8Array };
  test: { labels: Int32Array; pixels: Uint8Array };
}

function cacheKey(classNames: string[], train: Entry[], test: Entry[], size: number, fit: FolderFit): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ v: CACHE_VERSION, size, fit, classNames }));
  for (const [split, list] of [['train', train], ['test', test]] as const)
    for (const e of list) h.update(`\n${split}\t${e.rel}\t${e.label}\t${e.size}\t${e.mtimeMs}`);
  return h.digest('hex');
}

function encodeCache(key: string, classNames: string[], size: number, d: Decoded): Buffer {
  const header = Buffer.from(JSON.stringify({ version: CACHE_VERSION, key, size, channels: 3, classNames, train: d.train.labels.length, test: d.test.labels.length }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length, 0);
  const parts: Buffer[] = [CACHE_MAGIC, len, header];
  for (const s of [d.train, d.test]) {
    parts.push(Buffer.from(s.labels.buffer, s.labels.byteOffset, s.labels.byteLength));
    parts.push(Buffer.from(s.pixels.buffer, s.pixels.byteOffset, s.pixels.byteLength));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, crypto.createHash('sha256').update(body).digest()]);
}

/** The cache's content if it is intact and has this key; otherwise the reason it is not usable. */
function decodeCache(buf: Buffer, key: string, size: number, classes: number): Decoded | string {
  if (buf.length < CACHE_MAGIC.length + 4 + 32) return `too short (${buf.length} bytes)`;
  if (!buf.subarray(0, CACHE_MAGIC.length).equals(CACHE_MAGIC)) return 'bad magic';
  const body = buf.subarray(0, buf.length - 32);
  if (!crypto.createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) return 'checksum mismatch';
  const hlen = buf.readUInt32LE(CACHE_MAGIC.length);
  let header: { version: number; key: string; size: number; channels: number; train: number; test: number };
  try {
    header = JSON.parse(buf.subarray(CACHE_MAGIC.length + 4, CACHE_MAGIC.length + 4 + hlen).toString('utf8'));
  } catch {
    return 'unreadable header';
  }
  if (header.version !== CACHE_VERSION) return `version ${header.version}, expected ${CACHE_VERSION}`;
  if (header.key !== key) return 'the files changed';
  if (header.size !== size || header.channels !== 3) return 'other image size';
  const per = 3 * size * size;
  let off = CACHE_MAGIC.length + 4 + hlen;
  const expected = off + (header.train + header.test) * (4 + per);
  if (body.length !== expected) return `${body.length} bytes, expected ${expected}`;
  const read = (n: number) => {
    const labels = new Int32Array(n);
    const lb = Buffer.from(labels.buffer);
    buf.copy(lb, 0, off, off + 4 * n);
    off += 4 * n;
    const pixels = new Uint8Array(n * per);
    buf.copy(pixels, 0, off, off + n * per);
    off += n * per;
    return { labels, pixels };
  };
  const train = read(header.train), test = read(header.test);
  for (const s of [train, test]) for (const l of s.labels) if (l < 0 || l >= classes) return `label ${l} out of range`;
  return { train, test };
}

function toSet(d: { labels: Int32Array; pixels: Uint8Array }, size: number): ImageSet {
  const images = new Float32Array(d.pixels.length);
  bytesToUnit(d.pixels, images);
  return { images, labels: d.labels, n: d.labels.length, channels: 3, height: size, width: size };
}

const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/** An open cache file shared by its two splits' stores; closed when no store refers to it any more. */
class CacheFd {
  constructor(readonly fd: number, readonly file: string) {
    fdCloser.register(this, fd);
  }
}
const fdCloser = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
});

function readFullSync(f: CacheFd, buf: Buffer, off: number, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const r = fs.readSync(f.fd, buf, off + done, len - done, pos + done);
    if (r === 0) throw new Error(`image folder cache ${f.file}: ended at byte ${pos + done} (truncated while in use?)`);
    done += r;
  }
}

function readFull(f: CacheFd, buf: Buffer, off: number, len: number, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === len) return resolve();
      fs.read(f.fd, buf, off + done, len - done, pos + done, (err, r) => {
        if (err) reject(new Error(`image folder cache ${f.file}: ${err.message}`));
        else if (r === 0) reject(new Error(`image folder cache ${f.file}: ended at byte ${pos + done} (truncated while in use?)`));
        else step(done + r);
      });
    };
    step(0);
  });
}

/**
 * One split of a folder's cache file, read by range: image r is 3 × size² u8 bytes (CHW) at
 * pixelOffset + r × that. Reads turn bytes into floats through a per-channel table of 256
 * values: v / 255, then (v / 255 - mean) / std once normalised, the same float32 values as the
 * in-memory path (bytesToUnit, then normalize).
 */
export class FolderStore implements ImageStore {
  readonly channels = 3;
  private readonly lut = new Float32Array(3 * 256);
  private normalized = false;
  constructor(private readonly f: CacheFd, private readonly pixelOffset: number, readonly n: number, readonly height: number, readonly width: number) {
    for (let c = 0; c < 3; c++) this.lut.set(UNIT, c * 256);
  }

  private get per(): number {
    return 3 * this.height * this.width;
  }

  private check(rows: ArrayLike<number>, out: Float32Array): void {
    if (out.length < rows.length * this.per) throw new Error(`FolderStore.read: output holds ${out.length} values, needs ${rows.length * this.per}`);
    for (let j = 0; j < rows.length; j++)
      if (!(rows[j] >= 0 && rows[j] < this.n && Number.isInteger(rows[j]))) throw new Error(`FolderStore.read: row ${rows[j]} outside [0, ${this.n})`);
  }

  private convert(buf: Buffer, from: number, out: Float32Array, to: number): void {
    const hw = this.height * this.width, lut = this.lut;
    for (let c = 0; c < 3; c++) {
      const l = c * 256, s = from + c * hw, d = to + c * hw;
      for (let k = 0; k < hw; k++) out[d + k] = lut[l + buf[s + k]];
    }
  }

  read(rows: ArrayLike<number>, out: Float32Array): void {
    this.check(rows, out);
    const per = this.per;
    const buf = Buffer.allocUnsafe(per);
    for (let j = 0; j < rows.length; j++) {
      readFullSync(this.f, buf, 0, per, this.pixelOffset + rows[j] * per);
      this.convert(buf, 0, out, j * per);
    }
  }

  async readAsync(rows: ArrayLike<number>, out: Float32Array): Promise<void> {
    this.check(rows, out);
    const per = this.per;
    const buf = Buffer.allocUnsafe(rows.length * per);
    await Promise.all(Array.from({ length: rows.length }, (_, j) => readFull(this.f, buf, j * per, per, this.pixelOffset + rows[j] * per)));
    for (let j = 0; j < rows.length; j++) this.convert(buf, j * per, out, j * per);
  }

  normalize(mean: number[], std: number[]): void {
    if (this.normalized) throw new Error('FolderStore: already normalised');
    if (mean.length !== 3 || std.length !== 3) throw new Error(`FolderStore: 3 channels but ${mean.length} means and ${std.length} stds`);
    for (let c = 0; c < 3; c++) {
      const m = mean[c], inv = 1 / std[c];
      for (let v = 0; v < 256; v++) this.lut[c * 256 + v] = (UNIT[v] - m) * inv;
    }
    this.normalized = true;
  }
}

interface StreamLayout {
  train: { n: number; labels: Int32Array; pixelOffset: number };
  test: { n: number; labels: Int32Array; pixelOffset: number };
}

/** Byte layout of a cache file: header bytes, then per split labels and pixels, then the SHA-256. */
function cacheHeader(key: string, classNames: string[], size: number, nTrain: number, nTest: number): Buffer {
  const header = Buffer.from(JSON.stringify({ version: CACHE_VERSION, key, size, channels: 3, classNames, train: nTrain, test: nTest }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length, 0);
  return Buffer.concat([CACHE_MAGIC, len, header]);
}

function layoutOf(headerBytes: number, nTrain: number, nTest: number, per: number): { train: number; test: number; end: number } {
  const train = headerBytes + 4 * nTrain; // pixels of train after its labels
  const test = train + nTrain * per + 4 * nTest;
  return { train, test, end: test + nTest * per };
}

/** SHA-256 of the file's first `len` bytes, read in chunks. */
function hashFd(f: CacheFd, len: number): Buffer {
  const h = crypto.createHash('sha256');
  const chunk = Buffer.allocUnsafe(8 << 20);
  for (let pos = 0; pos < len; ) {
    const n = Math.min(chunk.length, len - pos);
    readFullSync(f, chunk, 0, n, pos);
    h.update(chunk.subarray(0, n));
    pos += n;
  }
  return h.digest();
}

/** The layout of an open cache file if it is intact and has this key; otherwise why it is not usable. */
function checkCacheFd(f: CacheFd, key: string, size: number, classes: number): StreamLayout | string {
  const total = fs.fstatSync(f.fd).size;
  if (total < CACHE_MAGIC.length + 4 + 32) return `too short (${total} bytes)`;
  const head = Buffer.alloc(CACHE_MAGIC.length + 4);
  readFullSync(f, head, 0, head.length, 0);
  if (!head.subarray(0, CACHE_MAGIC.length).equals(CACHE_MAGIC)) return 'bad magic';
  const hlen = head.readUInt32LE(CACHE_MAGIC.length);
  if (head.length + hlen + 32 > total) return 'truncated header';
  const hb = Buffer.alloc(hlen);
  readFullSync(f, hb, 0, hlen, head.length);
  let header: { version: number; key: string; size: number; channels: number; train: number; test: number };
  try {
    header = JSON.parse(hb.toString('utf8'));
  } catch {
    return 'unreadable header';
  }
  if (header.version !== CACHE_VERSION) return `version ${header.version}, expected ${CACHE_VERSION}`;
  if (header.key !== key) return 'the files changed';
  if (header.size !== size || header.channels !== 3) return 'other image size';
  if (!Number.isSafeInteger(header.train) || !Number.isSafeInteger(header.test) || header.train < 0 || header.test < 0) return 'bad image counts';
  const per = 3 * size * size;
  const lay = layoutOf(head.length + hlen, header.train, header.test, per);
  if (total - 32 !== lay.end) return `${total - 32} bytes, expected ${lay.end}`;
  const digest = Buffer.alloc(32);
  readFullSync(f, digest, 0, 32, lay.end);
  if (!hashFd(f, lay.end).equals(digest)) return 'checksum mismatch';
  const labelsAt = (n: number, pos: number): Int32Array => {
    const labels = new Int32Array(n);
    readFullSync(f, Buffer.from(labels.buffer), 0, 4 * n, pos);
    return labels;
  };
  const trainLabels = labelsAt(header.train, lay.train - 4 * header.train);
  const testLabels = labelsAt(header.test, lay.test - 4 * header.test);
  for (const ls of [trainLabels, testLabels]) for (const l of ls) if (l < 0 || l >= classes) return `label ${l} out of range`;
  return { train: { n: header.train, labels: trainLabels, pixelOffset: lay.train }, test: { n: header.test, labels: testLabels, pixelOffset: lay.test } };
}

/**
 * Decodes every image straight into an open, empty cache file (the cache format, images at their
 * offsets, `concurrency` at a time), then appends the SHA-256 of what was written and fsyncs.
 */
async function writeStreamCache(f: CacheFd, key: string, classNames: string[], size: number, fit: FolderFit, train: Entry[], test: Entry[], concurrency: number, emit: (e: FolderEvent) => void): Promise<StreamLayout> {
  const per = 3 * size * size, hw = size * size;
  const head = cacheHeader(key, classNames, size, train.length, test.length);
  const lay = layoutOf(head.length, train.length, test.length, per);
  const writeAt = (b: Uint8Array, pos: number) => {
    for (let done = 0; done < b.length; ) done += fs.writeSync(f.fd, b, done, b.length - done, pos + done);
  };
  writeAt(head, 0);
  const trainLabels = Int32Array.from(train, (e) => e.label), testLabels = Int32Array.from(test, (e) => e.label);
  writeAt(new Uint8Array(trainLabels.buffer), lay.train - 4 * train.length);
  writeAt(new Uint8Array(testLabels.buffer), lay.test - 4 * test.length);
  const all = [...train.map((e, i) => ({ e, pos: lay.train + i * per })), ...test.map((e, i) => ({ e, pos: lay.test + i * per }))];
  let next = 0, done = 0;
  const worker = async () => {
    const chw = Buffer.allocUnsafe(per);
    for (;;) {
      const i = next++;
      if (i >= all.length) return;
      const hwc = await decodeImage(all[i].e.file, size, fit);
      for (let p = 0, q = 0; p < hw; p++, q += 3) {
        chw[p] = hwc[q];
        chw[hw + p] = hwc[q + 1];
        chw[2 * hw + p] = hwc[q + 2];
      }
      writeAt(chw, all[i].pos);
      done++;
      emit({ kind: 'decode', file: all[i].e.file, done, total: all.length });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, all.length)) }, worker));
  writeAt(hashFd(f, lay.end), lay.end);
  fs.fsyncSync(f.fd);
  return { train: { n: train.length, labels: trainLabels, pixelOffset: lay.train }, test: { n: test.length, labels: testLabels, pixelOffset: lay.test } };
}

/** The streamed dataset's splits: the validated cache when there is one, else a cache written now. */
async function streamSplits(cacheFiles: string[], key: string, classNames: string[], size: number, fit: FolderFit, train: Entry[], test: Entry[], concurrency: number, emit: (e: FolderEvent) => void): Promise<{ f: CacheFd; lay: StreamLayout }> {
  for (const file of cacheFiles) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      continue;
    }
    const f = new CacheFd(fd, file);
    let r: StreamLayout | string;
    try {
      r = checkCacheFd(f, key, size, classNames.length);
    } catch (e) {
      r = (e as Error).message;
    }
    if (typeof r === 'string') emit({ kind: 'cache', status: 'invalid', file, reason: r });
    else {
      emit({ kind: 'cache', status: 'hit', file });
      return { f, lay: r };
    }
  }
  if (cacheFiles.length) emit({ kind: 'cache', status: 'miss', file: cacheFiles[0] });
  // write into a temporary file beside the first writable place, renamed into place when complete
  const reasons: string[] = [];
  for (const file of cacheFiles) {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
    let f: CacheFd;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      f = new CacheFd(fs.openSync(tmp, 'w+'), file);
    } catch (e) {
      reasons.push((e as Error).message);
      continue;
    }
    try {
      const lay = await writeStreamCache(f, key, classNames, size, fit, train, test, concurrency, emit);
      fs.renameSync(tmp, file);
      emit({ kind: 'cache', status: 'written', file });
      return { f, lay };
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      const err = e as NodeJS.ErrnoException;
      if (!/\b(ENOSPC|EDQUOT|EACCES|EPERM|EROFS)\b/.test(`${err.code ?? ''} ${err.message}`)) throw e;
      reasons.push(`cannot write ${tmp}: ${err.message}`);
    }
  }
  if (cacheFiles.length) emit({ kind: 'cache', status: 'unwritable', reason: reasons.join('; ') });
  // no cache folder: an unlinked temporary file that lives as long as the dataset
  const tmp = path.join(os.tmpdir(), `m2kd-folder-${process.pid}-${Date.now()}-${crypto.randomBytes(4).toString('hex')}.bin`);
  const f = new CacheFd(fs.openSync(tmp, 'w+'), tmp);
  fs.unlinkSync(tmp);
  return { f, lay: await writeStreamCache(f, key, classNames, size, fit, train, test, concurrency, emit) };
}

/** The folder's cache file name for (root, size, fit), in each place it may be kept, in the order tried. */
export function folderCacheFiles(root: string, size: number, fit: FolderFit, cacheDir?: string): string[] {
  const abs = path.resolve(root);
  const id = crypto.createHash('sha256').update(`${abs}\n${size}\n${fit}`).digest('hex').slice(0, 16);
  const name = `folder-${id}-${size}px.bin`;
  const dirs = [cacheDir ?? path.join(abs, '.m2kd-cache'), path.join(os.tmpdir(), 'm2kd-cache')];
  return dirs.map((d) => path.join(d, name));
}

/** Loads an image-folder dataset (see the file comment), from its cache when that is valid. */
export async function loadFolderDataset(root: string, opts: FolderOptions = {}): Promise<ImageDataset> {
  const size = opts.size ?? 32;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new Error(`loadFolderDataset: size must be an integer in [1, 4096], got ${size}`);
  const fit = opts.fit ?? 'cover';
  if (!['cover', 'fill', 'contain'].includes(fit)) throw new Error(`loadFolderDataset: fit must be 'cover', 'fill' or 'contain', got ${JSON.stringify(fit)}`);
  const concurrency = opts.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`loadFolderDataset: concurrency must be a positive integer, got ${concurrency}`);
  const exts = new Set((opts.extensions ?? ['jpg', 'jpeg', 'png']).map((e) => e.replace(/^\./, '').toLowerCase()));
  const emit = opts.onEvent ?? (() => undefined);
  const absRoot = path.resolve(root);
  const name = opts.name ?? path.basename(absRoot);

  requireDir(absRoot, `image folder dataset`);
  const trainDir = path.join(absRoot, 'train');
  if (!isDir(trainDir)) throw new Error(`image folder dataset: missing ${trainDir} (expected ${absRoot}/train/<class>/*.jpg and ${absRoot}/val/<class>/*.jpg)`);
  const testDir = [path.join(absRoot, 'val'), path.join(absRoot, 'test')].find(isDir);
  if (!testDir) throw new Error(`image folder dataset: missing ${path.join(absRoot, 'val')} (or ${path.join(absRoot, 'test')}) beside ${trainDir}`);
  const classNames = subdirs(trainDir);
  if (classNames.length === 0) throw new Error(`image folder dataset: ${trainDir} has no class folders`);
  const train = scanSplit(absRoot, trainDir, classNames, exts);
  const test = scanSplit(absRoot, testDir, classNames, exts);
  const counts = new Array<number>(classNames.length).fill(0);
  for (const e of train) counts[e.label]++;
  const empty = classNames.filter((_, i) => counts[i] === 0);
  if (empty.length)
    throw new Error(`image folder dataset: no ${[...exts].join('/')} images for class${empty.length > 1 ? 'es' : ''} ${empty.slice(0, 5).join(', ')}${empty.length > 5 ? ', ...' : ''} in ${trainDir}`);
  emit({ kind: 'scan', root: absRoot, classes: classNames.length, train: train.length, test: test.length });

  const key = cacheKey(classNames, train, test, size, fit);
  const cacheFiles = opts.cacheDir === false ? [] : folderCacheFiles(absRoot, size, fit, opts.cacheDir);
  if (opts.cacheDir === false) emit({ kind: 'cache', status: 'disabled' });
  const stream = opts.stream ?? false;
  if (stream !== true && stream !== false && stream !== 'auto') throw new Error(`loadFolderDataset: stream must be true, false or 'auto', got ${JSON.stringify(stream)}`);
  if (stream === true || (stream === 'auto' && (train.length + test.length) * 3 * size * size * 4 > STREAM_AUTO_BYTES)) {
    const { f, lay } = await streamSplits(cacheFiles, key, classNames, size, fit, train, test, concurrency, emit);
    const split = (l: StreamLayout['train']): ImageSet => ({
      images: new Float32Array(0),
      labels: l.labels,
      n: l.n,
      channels: 3,
      height: size,
      width: size,
      stream: { store: new FolderStore(f, l.pixelOffset, l.n, size, size), rows: Int32Array.from({ length: l.n }, (_, i) => i) },
    });
    return { name, classes: classNames.length, classNames, train: split(lay.train), test: split(lay.test), source: absRoot };
  }
  let decoded: Decoded | null = null;
  for (const f of cacheFiles) {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(f);
    } catch {
      continue;
    }
    const r = decodeCache(buf, key, size, classNames.length);
    if (typeof r === 'string') emit({ kind: 'cache', status: 'invalid', file: f, reason: r });
    else {
      decoded = r;
      emit({ kind: 'cache', status: 'hit', file: f });
      break;
    }
  }
  if (!decoded) {
    if (cacheFiles.length) emit({ kind: 'cache', status: 'miss', file: cacheFiles[0] });
    const progress = { done: 0, total: train.length + test.length };
    const trainPixels = await decodeAll(train, size, fit, concurrency, emit, progress);
    const testPixels = await decodeAll(test, size, fit, concurrency, emit, progress);
    decoded = {
      train: { labels: Int32Array.from(train, (e) => e.label), pixels: trainPixels },
      test: { labels: Int32Array.from(test, (e) => e.label), pixels: testPixels },
    };
    if (cacheFiles.length) {
      const bytes = encodeCache(key, classNames, size, decoded);
      const reasons: string[] = [];
      let written = false;
      for (const f of cacheFiles) {
        try {
          fs.mkdirSync(path.dirname(f), { recursive: true });
          writeFileAtomic(f, bytes);
          emit({ kind: 'cache', status: 'written', file: f });
          written = true;
          break;
        } catch (e) {
          reasons.push((e as Error).message);
        }
      }
      if (!written) emit({ kind: 'cache', status: 'unwritable', reason: reasons.join('; ') });
    }
  }
  return {
    name,
    classes: classNames.length,
    classNames,
    train: toSet(decoded.train, size),
    test: toSet(decoded.test, size),
    source: absRoot,
  };
}
