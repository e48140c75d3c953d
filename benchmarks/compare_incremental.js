#!/usr/bin/env node
// A whole incremental run, m2kd against its PyTorch peer (benchmarks/torch_incremental.py, the
// same recipe: data, model, losses, teacher cache, pruning and fine-tuning, evaluation, a
// checkpoint per step), method by method, the two sides interleaved round by round so that load
// on a shared machine hits both alike. Wall time is the whole process (start to exit) of
// `node dist/src/cli/main.js train ...` and of `torch_incremental.py ...`; the ratio is
// PyTorch / m2kd (> 1: m2kd is faster). Both sides' top-1 after every step are printed too:
// a gap beyond noise is a bug in one of them.
//
// Data: CIFAR-10-format files generated here (data_batch_1..5.bin, test_batch.bin; 32x32x3) with
// learnable classes: each class is a smooth random colour pattern, each image that pattern
// shifted by a few pixels, scaled in contrast, plus pixel noise (seeded, deterministic).
//
//   node benchmarks/compare_incremental.js [--methods ft,lwf-mc,m2kd] [--rounds 2]
//       [--train-per-class 128] [--test-per-class 100] [--epochs 2] [--threads 2] [--data DIR]
//       [--bn-recalibrate off|on]
// Needs the built addon and dist/ (npx tsc), and /usr/bin/python3 with torch (python3-torch).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const methods = opt('methods', 'ft,lwf-mc,m2kd').split(',');
const rounds = Number(opt('rounds', '2'));
const trainPerClass = Number(opt('train-per-class', '128'));
const testPerClass = Number(opt('test-per-class', '100'));
const epochs = Number(opt('epochs', '2'));
const threads = Number(opt('threads', '2'));
// off for CIFAR in m2kd; 'on' re-estimates BN statistics after each step on both sides (short
// schedules leave the running averages far behind the weights: eval accuracy near chance)
const recal = opt('bn-recalibrate', 'off');
const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-incremental-'));
const data = opt('data', '') || path.join(work, 'cifar');

// ---------------------------------------------------------------- synthetic CIFAR-10 files
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0; // mulberry32
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function writeCifar(dir, perClassTrain, perClassTest) {
  fs.mkdirSync(dir, { recursive: true });
  const r = rng(20261201);
  const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  // per class: a sum of 4 random low-frequency sinusoids per channel
  const patterns = [];
  for (let c = 0; c < 10; c++) {
    const waves = [];
    for (let ch = 0; ch < 3; ch++)
      for (let k = 0; k < 4; k++)
        waves.push({ ch, fx: 1 + Math.floor(r() * 3), fy: 1 + Math.floor(r() * 3), ph: r() * 2 * Math.PI, a: 0.5 + r() });
    patterns.push(waves);
  }
  function image(c, out, o) {
    const dx = Math.floor(r() * 7) - 3, dy = Math.floor(r() * 7) - 3, con = 0.6 + 0.6 * r();
    for (let ch = 0; ch < 3; ch++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          let v = 0;
          for (const w of patterns[c])
            if (w.ch === ch) v += w.a * Math.sin((2 * Math.PI * (w.fx * (x + dx) + w.fy * (y + dy))) / 32 + w.ph);
          const p = 128 + 40 * con * v + 50 * gauss();
          out[o + ch * 1024 + y * 32 + x] = Math.max(0, Math.min(255, Math.round(p)));
        }
  }
  function file(name, perClass) {
    const n = perClass * 10, buf = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      const c = i % 10; // classes interleaved, as in the real files
      buf[i * 3073] = c;
      image(c, buf, i * 3073 + 1);
    }
    fs.writeFileSync(path.join(dir, name), buf);
  }
  // training images split over the 5 batch files (first-per-class keeps file order)
  const per = Math.ceil(perClassTrain / 5);
  for (let b = 1; b <= 5; b++) file(`data_batch_${b}.bin`, per);
  file('test_batch.bin', perClassTest);
}

// ---------------------------------------------------------------- the two sides
const order = '0,1,2,3,4,5,6,7,8,9';
function runOurs(method) {
  const out = path.join(work, `ours-${method}`);
  fs.rmSync(out, { recursive: true, force: true });
  const argv = [path.join(root, 'dist', 'src', 'cli', 'main.js'), 'train', '--dataset', 'cifar10', '--data', data, '--method', method,
    '--order', order, '--classes-per-step', '2', '--epochs', String(epochs), '--train-per-class', String(trainPerClass),
    '--test-per-class', String(testPerClass), '--threads', String(threads), '--out', out, '--no-plots', '--checkpoint-every', 'step', '--bn-recalibrate', recal];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, M2KD_THREADS: String(threads) }, maxBuffer: 1 << 28 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`m2kd train ${method} failed (${r.status}): ${(r.stderr || '').slice(-2000)}`);
  const res = JSON.parse(fs.readFileSync(findFile(out, 'results.json'), 'utf8'));
  const steps = stepsOf(res);
  return { wall, top1: steps.map((s) => s.top1), seconds: steps.map((s) => s.seconds) };
}
function findFile(dir, name) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    }
  }
  return null;
}
function stepsOf(res) {
  // results.json: methods.<name>.orders[].steps[], top1 in percent (docs/results-schema.md)
  const m = res.methods[Object.keys(res.methods)[0]];
  return m.orders[0].steps;
}
function runTorch(method) {
  const argv = [path.join(__dirname, 'torch_incremental.py'), '--data', data, '--method', method, '--order', order,
    '--classes-per-step', '2', '--epochs', String(epochs), '--train-per-class', String(trainPerClass),
    '--test-per-class', String(testPerClass), '--out', work, '--bn-recalibrate', recal];
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/python3', argv, { encoding: 'utf8', env: { ...process.env, M2KD_TORCH_THREADS: String(threads) }, maxBuffer: 1 << 26 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`torch_incremental.py ${method} failed (${r.status}): ${(r.stderr || '').slice(-2000)}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  return { wall, top1: j.top1.map((v) => 100 * v), seconds: j.steps.map((s) => s.seconds), torch: j.torch, malloc: j.malloc };
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

if (!opt('data', '')) writeCifar(data, trainPerClass, testPerClass);
const per = {};
for (const m of methods) per[m] = { ours: [], torch: [] };
for (let r = 0; r < rounds; r++)
  for (const m of methods)
    for (const side of r % 2 ? ['torch', 'ours'] : ['ours', 'torch']) {
      const x = side === 'ours' ? runOurs(m) : runTorch(m);
      per[m][side].push(x);
      process.stderr.write(`round ${r + 1} ${m} ${side}: ${x.wall.toFixed(1)} s, top-1 % ${x.top1.map((v) => v.toFixed(1)).join(' ')}\n`);
    }
const report = {
  setting: { methods, rounds, steps: 5, classesPerStep: 2, epochs, finetuneEpochs: Math.max(1, Math.round(epochs / 2)), trainPerClass, testPerClass, threads, bnRecalibrate: recal, data: 'synthetic CIFAR-10 format', loadavg: os.loadavg() },
  methods: methods.map((m) => {
    const o = per[m].ours, t = per[m].torch;
    const wo = median(o.map((x) => x.wall)), wt = median(t.map((x) => x.wall));
    return {
      method: m,
      wall_ours_s: +wo.toFixed(2),
      wall_torch_s: +wt.toFixed(2),
      ratio_torch_over_ours: +(wt / wo).toFixed(3),
      top1_ours_percent: o[0].top1.map((v) => +v.toFixed(2)),
      top1_torch_percent: t[0].top1.map((v) => +v.toFixed(2)),
      seconds_per_step_ours: o[0].seconds,
      seconds_per_step_torch: t[0].seconds,
      all_walls_ours: o.map((x) => +x.wall.toFixed(2)),
      all_walls_torch: t.map((x) => +x.wall.toFixed(2)),
    };
  }),
};
const total = (side) => report.methods.reduce((s, m) => s + (side === 'ours' ? m.wall_ours_s : m.wall_torch_s), 0);
report.total_ratio_torch_over_ours = +(total('torch') / total('ours')).toFixed(3);
console.log(JSON.stringify(report, null, 1));
fs.rmSync(work, { recursive: true, force: true });
