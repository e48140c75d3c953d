#!/usr/bin/env node
// `m2kd sweep --jobs 2` against `--jobs 1` on one small grid, interleaved (jobs 1, jobs 2, jobs 2,
// jobs 1, ...) so both see the same machine state. Each run is a fresh sweep folder with the same
// total threads (--threads T: jobs 1 gives one cell T threads, jobs 2 gives two cells T/2 each).
// Prints one JSON object: every run's wall seconds, the medians, and the ratio
// jobs1 / jobs2 (> 1: running cells side by side is faster).
//
//   node benchmarks/sweep_jobs.js [--rounds 2] [--threads 2] [--methods m2kd,ft] [--orders 2]
//        [--epochs 2] [--train-per-class 40]
// Needs the built project (npx tsc -p .).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const rounds = Number(arg('rounds', '2'));
const threads = Number(arg('threads', '2'));
const grid = ['--method', arg('methods', 'm2kd,ft'), '--orders', arg('orders', '2'), '--classes-per-step', '5', '--epochs', arg('epochs', '2'),
  '--train-per-class', arg('train-per-class', '40'), '--test-per-class', '10', '--no-plots'];

function run(jobs) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `m2kd-sweep-jobs${jobs}-`));
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [cli, 'sweep', ...grid, '--out', path.join(dir, 's'), '--jobs', String(jobs), '--threads', String(threads)], { encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`sweep --jobs ${jobs} failed: ${r.stderr}`);
  return s;
}
const median = (a) => {
  const b = [...a].sort((x, y) => x - y);
  return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
};
const times = { 1: [], 2: [] };
for (let i = 0; i < rounds; i++) for (const j of i % 2 ? [2, 1] : [1, 2]) times[j].push(run(j));
const m1 = median(times[1]), m2 = median(times[2]);
console.log(JSON.stringify({ grid: grid.join(' '), threads, cpus: os.cpus().length, loadavg: os.loadavg(), rounds, jobs1_s: times[1], jobs2_s: times[2], jobs1_median_s: m1, jobs2_median_s: m2, ratio_jobs1_over_jobs2: m1 / m2 }));
