#!/usr/bin/env node
// Streamed folder datasets: generates an ImageNet-style folder of PNGs (default 20,000 training
// images of 256x256 in 20 classes, with sharp, in a temporary folder), then in separate
// processes (so that each peak resident set size is its own):
//   cache:  builds the decode cache at --size (default 224) with sharp in parallel, streaming each
//           image into the file: decode images/s and peak RSS;
//   run:    loads the dataset streamed (cache hit: SHA-256 check of the whole file, streaming
//           per-channel statistics), reads one shuffled epoch of the training set batch by batch
//           with prefetch (loader images/s), then trains a real incremental run (OrderRun, FT,
//           ResNet-32, first step) for --train-batches batches on streamed, prefetched batches
//           (training images/s, first batch excluded as warm-up); peak RSS of the process;
//   run-small: the same on --small-per-class images per class of the same cache, to show that
//           peak RSS does not follow the dataset's size.
// Prints one JSON object; removes the folder and the cache unless --keep. Build first (npx tsc).
//   node benchmarks/stream_loader.js [--images 20000] [--classes 20] [--size 224] [--batch 16]
//        [--train-batches 4] [--small-per-class 50] [--threads 2] [--dir DIR] [--keep]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const dist = path.resolve(__dirname, '..', 'dist', 'src');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  return typeof def === 'number' ? Number(v) : v;
}
const flag = (name) => process.argv.includes(`--${name}`);
const mib = (b) => Math.round((b / 2 ** 20) * 10) / 10;

const images = arg('images', 20000);
const classes = arg('classes', 20);
const size = arg('size', 224);
const batch = arg('batch', 16);
const trainBatches = arg('train-batches', 4);
const smallPerClass = arg('small-per-class', 50);
const threads = arg('threads', 2);

async function generate(dir) {
  const sharp = require('sharp');
  const per = Math.ceil(images / classes);
  const src = 256;
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
  const jobs = [];
  for (let k = 0; k < classes; k++) {
    for (let i = 0; i < per; i++) jobs.push(path.join(dir, 'train', `class${String(k).padStart(3, '0')}`, `${i}.png`));
    for (let i = 0; i < 2; i++) jobs.push(path.join(dir, 'val', `class${String(k).padStart(3, '0')}`, `${i}.png`));
  }
  for (let k = 0; k < classes; k++) for (const s of ['train', 'val']) fs.mkdirSync(path.join(dir, s, `class${String(k).padStart(3, '0')}`), { recursive: true });
  let next = 0;
  const t0 = Date.now();
  const worker = async () => {
    for (;;) {
      const j = next++;
      if (j >= jobs.length) return;
      // a smooth image: 8x8 random colours upscaled (small PNGs, a real resize when decoded)
      const px = Buffer.alloc(8 * 8 * 3);
      for (let q = 0; q < px.length; q++) px[q] = Math.floor(rand() * 256);
      await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).resize(src, src, { kernel: 'cubic' }).png({ compressionLevel: 1 }).toFile(jobs[j]);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return { files: jobs.length, seconds: (Date.now() - t0) / 1000 };
}

function child(phase, dir, extra = []) {
  const r = spawnSync(process.execPath, [__filename, '--phase', phase, '--dir', dir, '--size', String(size), '--batch', String(batch), '--train-batches', String(trainBatches), '--threads', String(threads), ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`phase ${phase} failed (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function phaseCache(dir) {
  const { loadFolderDataset } = require(path.join(dist, 'data', 'index.js'));
  const t0 = Date.now();
  let decoded = 0;
  const ds = await loadFolderDataset(dir, { size, stream: true, cacheDir: path.join(dir, '.m2kd-cache'), concurrency: 4, onEvent: (e) => void (e.kind === 'decode' && decoded++) });
  const secs = (Date.now() - t0) / 1000;
  return { images: ds.train.n + ds.test.n, decoded, seconds: secs, decode_images_per_s: decoded / secs, peak_rss_mib: mib(process.resourceUsage().maxRSS * 1024) };
}

async function phaseRun(dir, perClass) {
  const { loadDataset, gatherImagesAsync } = require(path.join(dist, 'data', 'index.js'));
  const { OrderRun, METHODS, defaultConfig, randomOrder } = require(path.join(dist, 'il', 'index.js'));
  const { setThreads, Rng } = require(path.join(dist, 'engine', 'index.js'));
  setThreads(threads);
  const rss = () => process.memoryUsage().rss;
  const t0 = Date.now();
  const ds = await loadDataset('folder', { path: dir, size, stream: true, cacheDir: path.join(dir, '.m2kd-cache'), trainPerClass: perClass });
  const loadSecs = (Date.now() - t0) / 1000;
  const afterLoad = rss();
  // loader: one shuffled epoch, batch b + 1 read while batch b is converted and dropped
  const set = ds.train;
  const perm = new Rng(1).permutation(set.n);
  const nb = Math.floor(set.n / batch);
  let peakLoader = 0;
  const l0 = Date.now();
  let next = gatherImagesAsync(set, perm.subarray(0, batch));
  for (let b = 0; b < nb; b++) {
    const x = await next;
    if (b + 1 < nb) next = gatherImagesAsync(set, perm.subarray((b + 1) * batch, (b + 2) * batch));
    if (x.length !== batch * 3 * size * size) throw new Error('short batch');
    if (b % 50 === 0) peakLoader = Math.max(peakLoader, rss());
  }
  const loaderSecs = (Date.now() - l0) / 1000;
  // training: the first step of an FT run (2 classes), stopped after trainBatches batches
  const cfg = { ...defaultConfig('folder', 2, ds.classes), epochs: 1, milestones: [], finetuneEpochs: 0, batchSize: batch, evalBatchSize: batch, flip: true };
  const ctrl = new AbortController();
  const stamps = [];
  let peakTrain = 0;
  const run = new OrderRun({
    dataset: ds,
    method: METHODS.ft,
    order: randomOrder(ds.classes, 1),
    orderIndex: 0,
    cfg,
    signal: ctrl.signal,
    emit: (e) => {
      if (e.kind !== 'batch') return;
      stamps.push(Date.now());
      peakTrain = Math.max(peakTrain, rss());
      if (stamps.length >= trainBatches) ctrl.abort();
    },
  });
  const r0 = Date.now();
  try {
    await run.run();
  } catch (e) {
    if (!/aborted/.test(e.message)) throw e;
  }
  run.dispose();
  const timed = stamps.length - 1;
  const trainSecs = timed > 0 ? (stamps[stamps.length - 1] - stamps[0]) / 1000 : NaN;
  return {
    train_images: set.n,
    test_images: ds.test.n,
    image_bytes_u8: 3 * size * size,
    load_seconds: loadSecs,
    loader: { batches: nb, seconds: loaderSecs, images_per_s: (nb * batch) / loaderSecs, peak_rss_mib: mib(peakLoader) },
    training: { batches: stamps.length, first_batch_seconds: (stamps[0] - r0) / 1000, images_per_s: (timed * batch) / trainSecs, peak_rss_mib: mib(peakTrain) },
    rss_after_load_mib: mib(afterLoad),
    peak_rss_mib: mib(process.resourceUsage().maxRSS * 1024),
  };
}

async function main() {
  const phase = arg('phase', '');
  if (phase) {
    const dir = arg('dir', '');
    const out = phase === 'cache' ? await phaseCache(dir) : await phaseRun(dir, phase === 'run-small' ? smallPerClass : undefined);
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  const dir = arg('dir', '') || fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-stream-bench-'));
  const keep = flag('keep');
  try {
    const gen = fs.existsSync(path.join(dir, 'train')) ? { reused: true } : await generate(dir);
    process.stderr.write(`folder ready: ${JSON.stringify(gen)}\n`);
    const cache = child('cache', dir);
    process.stderr.write(`cache: ${JSON.stringify(cache)}\n`);
    const full = child('run', dir);
    process.stderr.write(`run: ${JSON.stringify(full)}\n`);
    const small = child('run-small', dir, ['--small-per-class', String(smallPerClass)]);
    const res = {
      benchmark: 'stream_loader',
      machine: { cpus: os.cpus().length, load: os.loadavg(), threads },
      size,
      batch,
      generate: gen,
      cache,
      run: full,
      run_small: small,
      ratios: {
        loader_over_training_images_per_s: full.loader.images_per_s / full.training.images_per_s,
        peak_rss_full_over_small: full.peak_rss_mib / small.peak_rss_mib,
        dataset_float32_gib_if_in_memory: (full.train_images * 3 * size * size * 4) / 2 ** 30,
      },
    };
    console.log(JSON.stringify(res, null, 2));
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
