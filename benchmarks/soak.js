#!/usr/bin/env node
// Soak: a long incremental run (M²KD, 2 steps of 5 digits, enough epochs for 2,000+ training
// batches, the second step distilled through the teacher bank) printing native live bytes, pooled
// bytes and RSS every 100 batches. Within one phase (same model size, optimizer and teachers) the
// live bytes must not grow at all, and RSS by no more than --rss-slack-mib (default 64): the
// teacher-bank step raises both once (bigger head, masks, snapshots, pooled bank buffers), which
// is a step up between phases, not growth. Ends with a JSON summary on stdout and exits non-zero
// when a bound is broken. Build first (npx tsc).
//   node benchmarks/soak.js [--batches N (2000)] [--batch B (16)] [--threads T (2)]
'use strict';
const path = require('path');
const dist = path.resolve(__dirname, '..', 'dist', 'src');
const { train } = require(path.join(dist, 'api.js'));
const { memory, setThreads } = require(path.join(dist, 'engine', 'index.js'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const target = arg('batches', 2000);
const batch = arg('batch', 16);
const slack = arg('rss-slack-mib', 64) * 2 ** 20;
setThreads(arg('threads', 2));
const perClass = 100;
const perEpoch = Math.floor((5 * perClass) / batch) + ((5 * perClass) % batch >= 2 ? 1 : 0);
// 2 steps x (E train + E/2 fine-tune epochs) x perEpoch batches >= target
const epochs = Math.max(2, 2 * Math.ceil(target / (6 * perEpoch)));

const rows = [];
let n = 0;
let phaseKey = '';
const phases = new Map();
const mib = (b) => (b / 2 ** 20).toFixed(2);
console.error(`soak: ${epochs} epochs + ${epochs / 2} fine-tune epochs per step, ${perEpoch} batches of ${batch} per epoch`);
console.error('  batch  phase                 live MiB  pooled MiB  RSS MiB');
const t0 = Date.now();
train({
  dataset: 'mnist', methods: 'm2kd', classesPerStep: 5, epochs, finetuneEpochs: epochs / 2, batchSize: batch,
  trainPerClass: perClass, testPerClass: 20, out: null, plots: false,
  onProgress: (e) => {
    if (e.kind !== 'batch') return;
    n++;
    const key = `step ${e.step} ${e.phase}`;
    // sample after the first epoch of a phase (buffers such as momentum exist by then)
    if (n % 100 === 0 || key !== phaseKey) {
      const m = memory();
      const rss = process.memoryUsage().rss;
      const row = { batch: n, phase: key, epoch: e.epoch, live: m.liveBytes, pooled: m.pooledBytes, rss };
      rows.push(row);
      if (e.epoch > 1) {
        const p = phases.get(key) || { min: Infinity, max: -Infinity, rssMin: Infinity, rssMax: -Infinity, samples: 0 };
        p.min = Math.min(p.min, m.liveBytes);
        p.max = Math.max(p.max, m.liveBytes);
        p.rssMin = Math.min(p.rssMin, rss);
        p.rssMax = Math.max(p.rssMax, rss);
        p.samples++;
        phases.set(key, p);
      }
      if (n % 100 === 0) console.error(`  ${String(n).padStart(5)}  ${key.padEnd(20)} ${mib(m.liveBytes).padStart(9)} ${mib(m.pooledBytes).padStart(11)} ${mib(rss).padStart(8)}`);
    }
    phaseKey = key;
  },
}).then((r) => {
  const s = rows.filter((x) => x.batch % 100 === 0);
  const q = Math.max(1, Math.floor(s.length / 4));
  const rssFirst = Math.max(...s.slice(0, q).map((x) => x.rss));
  const rssLast = Math.max(...s.slice(-q).map((x) => x.rss));
  const growth = [...phases].map(([k, p]) => ({ phase: k, samples: p.samples, live_growth_bytes: p.max - p.min, rss_growth_mib: +mib(p.rssMax - p.rssMin) }));
  const out = {
    batches: n,
    seconds: (Date.now() - t0) / 1000,
    final_top1: r.results.methods.m2kd.orders[0].steps.map((x) => x.top1),
    live_growth_within_phases: growth,
    rss_first_quarter_mib: +mib(rssFirst),
    rss_last_quarter_mib: +mib(rssLast),
    rss_growth_mib: +mib(rssLast - rssFirst),
    live_after_run_bytes: memory().liveBytes,
    table: s.map((x) => ({ batch: x.batch, phase: x.phase, live: x.live, pooled: x.pooled, rss: x.rss })),
  };
  console.log(JSON.stringify(out));
  const ok = n >= target && growth.every((g) => g.live_growth_bytes === 0 && g.rss_growth_mib * 2 ** 20 <= slack);
  console.error(ok ? `soak ok: ${n} batches, live bytes flat and RSS within ${mib(slack)} MiB inside every phase (RSS ${mib(rssFirst)} -> ${mib(rssLast)} MiB over the run)` : 'soak FAILED (see the JSON)');
  process.exit(ok ? 0 : 1);
}, (e) => {
  console.error(`soak: ${e.stack}`);
  process.exit(2);
});
