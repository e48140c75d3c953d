// Fuzz targets: every format m2kd reads, each with a valid corpus built once (prepare), a writer
// of one mutated case into a fresh folder (write) and the project's own loader (load). A case
// must end in a correct load or a clear error: an Error of a plain kind (not a TypeError,
// RangeError or bare SyntaxError from deep inside) whose message names the file (or the folder)
// it came from. Crashes and hangs are caught by the driver (scripts/fuzz.js), which runs cases in
// a child process with a deadline.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { Rng } from '../../src/engine';
import { Linear } from '../../src/nn';
import { SGD } from '../../src/optim';
import { encodeSafetensors, readSafetensors, saveCheckpoint, loadCheckpoint, entryToTensor, StEntry } from '../../src/io';
import { loadIdxDataset, loadCifar10, loadCifar100, loadFolderDataset } from '../../src/data';
import type { ImageDataset, ImageSet } from '../../src/data';
import { OrderRun, METHODS, defaultConfig, randomOrder } from '../../src/il';
import { saveRunState, loadRunState } from '../../src/il/checkpoint';
import { readResults, reportCommand, compareCommand } from '../../src/report';
import { parseArgs, Flags } from '../../src/cli/args';
import { trainOptions } from '../../src/cli/train';
import { FuzzRng, mutateBytes, mutateJson, mutateJsonText } from './mutate';

export interface Target {
  name: string;
  prepare(work: string): Promise<void>;
  /** writes one mutated case into the empty folder dir; returns what load takes */
  write(rng: FuzzRng, dir: string): string;
  load(arg: string): Promise<void>;
  /** true when errors need not name a file (command-line arguments) */
  noFile?: boolean;
}

export type Outcome = { kind: 'ok' } | { kind: 'clean'; message: string } | { kind: 'unclear'; message: string };

const INTERNAL = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'AssertionError']);

/** Classifies what a load did: a correct load, a clear error naming the case's files, or a bug. */
export function classify(err: unknown, dir: string, noFile = false): Outcome {
  if (err === undefined) return { kind: 'ok' };
  if (!(err instanceof Error)) return { kind: 'unclear', message: `threw a non-Error: ${String(err)}` };
  const msg = err.message ?? '';
  const ctor = err.constructor?.name ?? 'Error';
  if (INTERNAL.has(ctor) || INTERNAL.has(err.name)) return { kind: 'unclear', message: `${err.name}: ${msg}\n${err.stack ?? ''}` };
  if (!msg.trim()) return { kind: 'unclear', message: 'an empty error message' };
  if (!noFile && !msg.includes(dir) && !msg.includes(path.basename(dir))) return { kind: 'unclear', message: `does not name the file: ${msg}` };
  return { kind: 'clean', message: msg };
}

function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, e.name), b = path.join(to, e.name);
    if (e.isDirectory()) copyDir(a, b);
    else fs.copyFileSync(a, b);
  }
}

/** A safetensors file with a mutated header (re-encoded with a true or hostile length) or bytes. */
function mutateSafetensors(rng: FuzzRng, buf: Buffer): Buffer {
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, unknown>;
  const data = buf.subarray(8 + hlen);
  switch (rng.int(6)) {
    case 0:
    case 1:
    case 2: {
      const h = Buffer.from(JSON.stringify(mutateJson(rng, header)), 'utf8');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h, data]);
    }
    case 3: {
      // a hostile header length
      const b = Buffer.from(buf);
      b.writeBigUInt64LE(rng.pick([0n, 1n, 7n, BigInt(hlen + 1), BigInt(hlen - 1), 2n ** 63n, 2n ** 64n - 1n, 2n ** 32n, BigInt(buf.length)]));
      return b;
    }
    case 4: {
      // NaN / Inf payloads (a correct load: the values are data)
      const b = Buffer.from(buf);
      for (let k = 0; k < 4 && data.length >= 4; k++) b.writeFloatLE(rng.pick([NaN, Infinity, -Infinity, -0]), 8 + hlen + 4 * rng.int(data.length >> 2));
      return b;
    }
    default: {
      // non-UTF-8 bytes inside the header's names
      const b = Buffer.from(buf);
      const q = buf.indexOf('"', 9);
      if (q > 0 && q < 8 + hlen) b[q + 1] = rng.pick([0xff, 0xc3, 0x80, 0xed]);
      return rng.chance(0.5) ? b : mutateBytes(rng, b);
    }
  }
}

// --- safetensors --------------------------------------------------------------------------
function safetensorsTarget(): Target {
  let corpus: Buffer;
  return {
    name: 'safetensors',
    async prepare() {
      const f32 = new Float32Array([1, 2, 3, 4, 5, 6]);
      const m = new Map<string, StEntry>([
        ['a.weight', { dtype: 'F32', shape: [2, 3], data: new Uint8Array(f32.buffer) }],
        ['b', { dtype: 'I32', shape: [2], data: new Uint8Array(new Int32Array([7, -8]).buffer) }],
        ['c', { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }],
        ['n', { dtype: 'I64', shape: [], data: new Uint8Array(8) }],
      ]);
      corpus = Buffer.from(encodeSafetensors(m, { format: 'pt' }));
    },
    write(rng, dir) {
      const f = path.join(dir, 'model.safetensors');
      fs.writeFileSync(f, rng.chance(0.7) ? mutateSafetensors(rng, corpus) : mutateBytes(rng, corpus));
      return f;
    },
    async load(f) {
      const { entries } = readSafetensors(f);
      for (const [n, e] of entries) if (e.dtype === 'F32' || e.dtype === 'I32' || e.dtype === 'U8') entryToTensor(e, n).dispose();
    },
  };
}

// --- model checkpoints (manifest + safetensors) -------------------------------------------
function checkpointTarget(): Target {
  let src = '';
  const model = () => new Linear(4, 3, new Rng(1));
  return {
    name: 'checkpoint',
    async prepare(work) {
      src = path.join(work, 'checkpoint');
      const m = model();
      const opt = new SGD(m.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0 });
      opt.setMomentumBuffer(0, m.weight);
      saveCheckpoint(src, m, { optimizer: opt, meta: { task: 'fuzz' } });
      m.dispose();
    },
    write(rng, dir) {
      copyDir(src, dir);
      const which = rng.pick(['manifest.json', 'manifest.json', 'model.safetensors', 'optimizer.safetensors']);
      const f = path.join(dir, which);
      const buf = fs.readFileSync(f);
      if (rng.chance(0.05)) fs.rmSync(f);
      else fs.writeFileSync(f, which.endsWith('.json') ? mutateJsonText(rng, buf.toString('utf8')) : mutateSafetensors(rng, buf));
      return dir;
    },
    async load(dir) {
      const m = model();
      const opt = new SGD(m.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0 });
      try {
        loadCheckpoint(dir, m, opt);
      } finally {
        m.dispose();
      }
    },
  };
}

// --- run-state checkpoints ----------------------------------------------------------------
function synthetic(perClass: number, seed: number): ImageSet {
  const rng = new Rng(seed);
  const n = 4 * perClass, hw = 8;
  const images = rng.normal(n * hw * hw, 0, 0.3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % 4;
  return { images, labels, n, channels: 1, height: hw, width: hw };
}
const SYNTH: ImageDataset = { name: 'synthetic', classes: 4, classNames: ['a', 'b', 'c', 'd'], train: synthetic(4, 1), test: synthetic(2, 2) };
const RUN_CFG = { ...defaultConfig('synthetic', 2), epochs: 1, milestones: [], finetuneEpochs: 1, batchSize: 8, lr: 0.05, evalBatchSize: 16, flip: false, memory: 8 };

function runStateTarget(method: 'm2kd' | 'icarl'): Target {
  let src = '';
  const newRun = () => new OrderRun({ dataset: SYNTH, method: METHODS[method], order: randomOrder(4, 1), orderIndex: 0, cfg: RUN_CFG });
  return {
    name: `run-state-${method}`,
    async prepare(work) {
      src = path.join(work, `state-${method}`);
      // a real run's state in the middle of step 2 (masks, snapshots, momentum, exemplars, results)
      let n = 0;
      const run = new OrderRun({
        dataset: SYNTH, method: METHODS[method], order: randomOrder(4, 1), orderIndex: 0, cfg: RUN_CFG,
        onCheckpoint: (r, at) => {
          if (++n === (method === 'm2kd' ? 4 : 3)) {
            saveRunState(src, r, RUN_CFG);
            throw new Error('stop here');
          }
          void at;
        },
      });
      await run.run().catch(() => undefined);
      run.dispose();
      if (!fs.existsSync(path.join(src, 'state.json'))) throw new Error(`fuzz: no run state was written for ${method}`);
    },
    write(rng, dir) {
      copyDir(src, dir);
      const files = fs.readdirSync(dir);
      const which = rng.chance(0.5) ? 'state.json' : rng.pick(files);
      const f = path.join(dir, which);
      const buf = fs.readFileSync(f);
      if (rng.chance(0.05)) fs.rmSync(f);
      else fs.writeFileSync(f, which.endsWith('.json') ? mutateJsonText(rng, buf.toString('utf8')) : mutateSafetensors(rng, buf));
      return dir;
    },
    async load(dir) {
      const run = newRun();
      try {
        loadRunState(dir, run);
      } finally {
        run.dispose();
      }
    },
  };
}

// --- IDX (MNIST family) -------------------------------------------------------------------
function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, Buffer.from(data)]);
}

function maybeGzip(rng: FuzzRng, b: Buffer): Buffer {
  if (!rng.chance(0.3)) return b;
  const z = zlib.gzipSync(b);
  return rng.chance(0.3) ? mutateBytes(rng, z) : z;
}

function idxTarget(): Target {
  const files: Record<string, Buffer> = {};
  return {
    name: 'idx',
    async prepare() {
      const px = (n: number) => Uint8Array.from({ length: n * 16 }, (_, i) => (i * 37) & 255);
      files['train-images-idx3-ubyte'] = idx(0x803, [6, 4, 4], px(6));
      files['train-labels-idx1-ubyte'] = idx(0x801, [6], Uint8Array.from([0, 1, 2, 3, 4, 5]));
      files['t10k-images-idx3-ubyte'] = idx(0x803, [2, 4, 4], px(2));
      files['t10k-labels-idx1-ubyte'] = idx(0x801, [2], Uint8Array.from([9, 8]));
    },
    write(rng, dir) {
      const victim = rng.pick(Object.keys(files));
      for (const [n, b] of Object.entries(files)) {
        let out = b;
        if (n === victim) {
          if (rng.chance(0.3)) {
            // structure-aware: hostile magic or dims
            out = Buffer.from(b);
            const dimCount = out[3];
            const at = rng.chance(0.3) ? 0 : 4 + 4 * rng.int(Math.max(1, dimCount));
            if (at + 4 <= out.length) out.writeUInt32BE(rng.pick([0, 1, 3, 0x7fffffff, 0xffffffff, 0x803, 0x801, 0x80d, 0x0c03, 1 << 20]) >>> 0, at);
          } else out = mutateBytes(rng, b);
        }
        const gz = rng.chance(0.2);
        fs.writeFileSync(path.join(dir, gz ? `${n}.gz` : n), gz ? maybeGzip(new FuzzRng(rng.int(1e9)), out) : out);
      }
      return dir;
    },
    async load(dir) {
      loadIdxDataset(dir, { name: 'fuzz' });
    },
  };
}

// --- CIFAR binary (plain and gzipped) ---------------------------------------------------------
function cifarTarget(kind: 10 | 100): Target {
  const files: Record<string, Buffer> = {};
  const lb = kind === 10 ? 1 : 2;
  return {
    name: `cifar${kind}`,
    async prepare() {
      const rec = (labels: number[]) => Buffer.concat([Buffer.from(labels), Buffer.from(Uint8Array.from({ length: 3072 }, (_, i) => (i * 13 + labels[0]) & 255))]);
      const part = (k: number) => Buffer.concat(Array.from({ length: 2 }, (_, r) => rec(lb === 1 ? [(k + r) % 10] : [(k + r) % 20, (k * 7 + r) % 100])));
      const names = kind === 10 ? ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'] : ['train.bin', 'test.bin'];
      names.forEach((n, k) => (files[n] = part(k)));
    },
    write(rng, dir) {
      const victim = rng.pick(Object.keys(files));
      for (const [n, b] of Object.entries(files)) {
        let out = b;
        if (n === victim) {
          if (rng.chance(0.3)) {
            out = Buffer.from(b);
            out[rng.pick([0, 1, 3073, 3074])] = rng.pick([10, 20, 99, 100, 255]); // labels out of range
          } else out = rng.chance(0.1) ? Buffer.alloc(0) : mutateBytes(rng, b);
        }
        const gz = rng.chance(0.25);
        fs.writeFileSync(path.join(dir, gz ? `${n}.gz` : n), gz ? maybeGzip(new FuzzRng(rng.int(1e9) | 1), out) : out);
      }
      if (rng.chance(0.05)) fs.writeFileSync(path.join(dir, kind === 10 ? 'batches.meta.txt' : 'fine_label_names.txt'), mutateBytes(rng, Buffer.from('a\nb\nc\n')));
      return dir;
    },
    async load(dir) {
      if (kind === 10) loadCifar10(dir);
      else loadCifar100(dir);
    },
  };
}

// --- image folders ----------------------------------------------------------------------------
let CRC_TABLE: Uint32Array | null = null;
function crc32(b: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG whose IHDR declares other dimensions, with a correct CRC (so decoders believe it). */
function pngWithDims(png: Buffer, w: number, h: number): Buffer {
  const b = Buffer.from(png);
  b.writeUInt32BE(w >>> 0, 16);
  b.writeUInt32BE(h >>> 0, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return b;
}

function folderTarget(): Target {
  const images: Record<string, Buffer> = {};
  return {
    name: 'image-folder',
    async prepare() {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const sharp = require('sharp') as typeof import('sharp');
      const raw = Buffer.from(Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 29) & 255));
      const base = () => sharp(raw, { raw: { width: 8, height: 8, channels: 3 } });
      images['rgb.png'] = await base().png().toBuffer();
      images['rgb.jpg'] = await base().jpeg().toBuffer();
      images['grey.png'] = await base().greyscale().png().toBuffer();
      images['deep.png'] = await base().png().toColourspace('rgb16').toBuffer();
      images['alpha.png'] = await base().ensureAlpha().png().toBuffer();
      images['cmyk.jpg'] = await base().toColourspace('cmyk').jpeg().toBuffer();
    },
    write(rng, dir) {
      const names = Object.keys(images);
      const put = (split: string, cls: string, i: number) => {
        const d = path.join(dir, split, cls);
        fs.mkdirSync(d, { recursive: true });
        const n = rng.pick(names);
        fs.writeFileSync(path.join(d, `${i}${path.extname(n)}`), images[n]);
        return path.join(d, `${i}${path.extname(n)}`);
      };
      const all = [put('train', 'a', 0), put('train', 'b', 0), put('train', 'b', 1), put('val', 'a', 0), put('val', 'b', 0)];
      const victim = rng.pick(all);
      switch (rng.int(7)) {
        case 0:
          fs.writeFileSync(victim, Buffer.alloc(0)); // zero bytes
          break;
        case 1: {
          // huge or zero declared dimensions in a valid-looking PNG
          const w = rng.pick([0, 1, 16384, 65535, 0x7fffffff, 100000]), h = rng.pick([0, 1, 16384, 65535, 0x7fffffff, 100000]);
          fs.writeFileSync(victim.replace(/\.\w+$/, '.png'), pngWithDims(images['rgb.png'], w, h));
          if (!victim.endsWith('.png')) fs.rmSync(victim);
          break;
        }
        case 2:
          // a symlink loop inside a class folder
          fs.symlinkSync('..', path.join(path.dirname(victim), 'loop'));
          fs.symlinkSync(path.join(path.dirname(victim), 'self'), path.join(path.dirname(victim), 'self'));
          break;
        case 3:
          // a non-UTF-8 file name
          fs.renameSync(victim, Buffer.concat([Buffer.from(path.dirname(victim) + '/'), Buffer.from([0x66, 0xff, 0xfe, 0x2e]), Buffer.from(path.extname(victim).slice(1))]) as unknown as string);
          break;
        case 4:
          fs.writeFileSync(victim, mutateBytes(rng, fs.readFileSync(victim)).subarray(0, rng.chance(0.5) ? undefined : 40)); // truncated
          break;
        default:
          fs.writeFileSync(victim, mutateBytes(rng, fs.readFileSync(victim)));
      }
      return dir;
    },
    async load(dir) {
      await loadFolderDataset(dir, { size: 8, cacheDir: false, concurrency: 2 });
    },
  };
}

// --- results.json (report / compare) ------------------------------------------------------------
function resultsTarget(): Target {
  let text = '';
  return {
    name: 'results',
    async prepare() {
      const f = path.resolve(__dirname, '..', '..', '..', 'docs', 'results', 'fashion-mnist', 'results-finetune-continue.json');
      text = fs.readFileSync(f, 'utf8');
    },
    write(rng, dir) {
      fs.writeFileSync(path.join(dir, 'results.json'), mutateJsonText(rng, text));
      return dir;
    },
    async load(dir) {
      readResults(dir);
      const sink = () => undefined;
      await reportCommand([dir, '--no-plots'], { out: sink });
      await compareCommand([dir, dir], { out: sink });
    },
  };
}

// --- command-line arguments of m2kd train ---------------------------------------------------------
const FLAGS = ['dataset', 'data', 'method', 'classes-per-step', 'epochs', 'finetune-epochs', 'ratio', 'finetune-lr', 'orders', 'order', 'seed', 'order-seed',
  'train-per-class', 'test-per-class', 'memory', 'lr', 'batch', 'preset', 'no-cache', 'crop', 'no-flip', 'bn-recalibrate', 'device', 'out', 'resume', 'no-plots',
  'checkpoint-every', 'threads', 'bogus', ''];
const VALUES = ['1', '0', '-1', '2.5', '1e309', 'NaN', 'Infinity', '', ' ', 'x', '0x10', '1e3', '99999999999999999999', 'epoch', 'step', 'on', 'off', 'restart', 'cpu', 'cuda',
  'm2kd,ft', 'A', '1,2,3', 'true', 'false', '--', '=', '\u00e9', '\ud800', 'a,,b', '-0', '4097'];

function cliTarget(): Target {
  return {
    name: 'cli-args',
    noFile: true,
    async prepare() {},
    write(rng, dir) {
      const argv: string[] = [];
      for (let k = rng.int(6); k > 0; k--) {
        const f = rng.pick(FLAGS);
        if (rng.chance(0.3)) argv.push(`--${f}=${rng.pick(VALUES)}`);
        else {
          argv.push(rng.chance(0.95) ? `--${f}` : f);
          if (rng.chance(0.7)) argv.push(rng.pick(VALUES));
        }
      }
      fs.writeFileSync(path.join(dir, 'argv.json'), JSON.stringify(argv));
      return path.join(dir, 'argv.json');
    },
    async load(f) {
      const argv = JSON.parse(fs.readFileSync(f, 'utf8')) as string[];
      const { flags } = parseArgs(argv);
      const fl = new Flags(flags);
      trainOptions(fl, argv, false);
      fl.done();
    },
  };
}

export function allTargets(): Target[] {
  return [safetensorsTarget(), checkpointTarget(), runStateTarget('m2kd'), runStateTarget('icarl'), idxTarget(), cifarTarget(10), cifarTarget(100), folderTarget(), resultsTarget(), cliTarget()];
}

/** Runs one case of a target in dir (created empty) and classifies it. */
export async function runCase(t: Target, rng: FuzzRng, dir: string): Promise<Outcome> {
  fs.mkdirSync(dir, { recursive: true });
  let arg: string;
  try {
    arg = t.write(rng, dir);
  } catch (e) {
    throw new Error(`fuzz target ${t.name}: writing the case failed: ${(e as Error).stack}`);
  }
  let err: unknown = undefined;
  try {
    await t.load(arg);
  } catch (e) {
    err = e ?? new Error('threw undefined');
  }
  return classify(err, dir, t.noFile);
}
