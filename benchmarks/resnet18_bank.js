#!/usr/bin/env node
// The teacher bank on ResNet-18 (the paper's ImageNet network, 224x224 by default) against its
// peer in the same process: K past models of a pruned ResNet18Aux on one batch, all K in one pass
// of fused masked convolutions (MaskedTeacherBank, src/bench/reconstruct.ts's workload) vs the
// K teachers materialised as ordinary models (rebuildTeacherModel) run one after the other
// through the engine's dense conv (what a run without the bank would do). The two sides
// alternate every round; medians over the rounds. Also checks that both give the same logits.
// Prints one JSON object: per K, images*models/s of each side and ratio = dense time / bank time
// (> 1: the bank is faster), and the worst max |diff| of their logits.
//
//   node benchmarks/resnet18_bank.js [--k 1,4] [--batch 16] [--size 224] [--rounds 3] [--threads 2]
// Needs the built project (npm run build).
'use strict';
const path = require('path');
const root = path.resolve(__dirname, '..');
const m2kd = require(path.join(root, 'dist', 'src'));
const { ReconstructWorkload } = require(path.join(root, 'dist', 'src', 'bench', 'reconstruct'));
const { rebuildTeacherModel } = require(path.join(root, 'dist', 'src', 'prune', 'teacherBank'));
const { noGrad, runtimeInfo, setThreads } = m2kd;

const o = { k: [1, 4], batch: 16, size: 224, rounds: 3, threads: 2 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i], v = argv[++i];
  if (a === '--k') o.k = v.split(',').map(Number);
  else if (['--batch', '--size', '--rounds', '--threads'].includes(a)) o[a.slice(2)] = Number(v);
  else throw new Error(`unknown option ${a}`);
}
for (const k of o.k) if (!Number.isInteger(k) || k < 1 || k > 255) throw new Error('--k needs integers in [1, 255]');
setThreads(o.threads);

const now = () => Number(process.hrtime.bigint()) / 1e9;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const wl = new ReconstructWorkload(Math.max(...o.k), o.batch, 0.75, 10, 1, 1, 'resnet18', o.size);
const results = [];
let worst = 0;
for (const K of o.k) {
  const bank = wl.bank(K);
  const teachers = wl.snapshots.slice(0, K).map((s) => rebuildTeacherModel(wl.model, wl.masks, s));
  const req = wl.snapshots.slice(0, K).map((s) => ({ step: s.step, start: 0, end: s.classesSeen }));
  const runBank = () => {
    const outs = bank.forward(wl.x, req);
    const v = outs.map((q) => q.main.toFloat32());
    for (const q of outs) (q.main.dispose(), q.aux.dispose());
    return v;
  };
  const runDense = () =>
    teachers.map((t) =>
      noGrad(() => {
        const r = t.forwardAux(wl.x);
        const v = r.logits.toFloat32();
        r.logits.dispose(), r.auxLogits.dispose(), r.features.dispose();
        return v;
      }),
    );
  // warm-up and the equality check
  const a = runBank(), b = runDense();
  a.forEach((v, i) => v.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - b[i][j])))));
  const tb = [], td = [];
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? ['bank', 'dense'] : ['dense', 'bank'];
    for (const side of order) {
      const t0 = now();
      if (side === 'bank') runBank();
      else runDense();
      (side === 'bank' ? tb : td).push(now() - t0);
    }
  }
  const mb = median(tb), md = median(td);
  results.push({
    K,
    batch: o.batch,
    bank_images_models_per_s: (o.batch * K) / mb,
    dense_images_models_per_s: (o.batch * K) / md,
    ratio: md / mb,
    mean_density: wl.meanDensity(K),
    bank_ms: tb.map((t) => t * 1e3),
    dense_ms: td.map((t) => t * 1e3),
  });
  for (const t of teachers) t.dispose();
  wl.releaseBank(K);
}
wl.dispose();
const info = runtimeInfo();
console.log(JSON.stringify({ arch: 'resnet18', size: o.size, threads: info.threads, isa: info.isa, rounds: o.rounds, max_abs_diff: worst, results }));
