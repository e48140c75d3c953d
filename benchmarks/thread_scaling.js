#!/usr/bin/env node
// 1 -> N thread scaling per CPU kernel (conv2d forward / backward-data / backward-weight per
// ResNet-32 shape at batch 128, SGEMM 512^3, batch norm forward/backward): runs the kernel
// workbenches (kernels/cpu/workbench/wb --bench, ops_bench --bench) at 1 and at N threads,
// interleaved round by round so that load on a shared machine hits both alike, and prints JSON:
// per kernel the median milliseconds at each thread count and speedup = ms(1) / ms(N).
//   node benchmarks/thread_scaling.js [--rounds 7] [--threads 2] [--runs 10]
// Builds the workbenches first if they are missing (kernels/cpu/workbench/build*.sh).
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? Number(args[i + 1]) : dflt;
}
const rounds = opt('--rounds', 7), wide = opt('--threads', 2), runs = opt('--runs', 10);
const wbDir = path.resolve(__dirname, '..', 'kernels', 'cpu', 'workbench');
const wb = path.join(wbDir, 'wb'), ops = path.join(wbDir, 'ops_bench');
if (!fs.existsSync(wb)) execFileSync('sh', [path.join(wbDir, 'build.sh')], { stdio: 'inherit' });
if (!fs.existsSync(ops)) execFileSync('bash', [path.join(wbDir, 'build_ops.sh')], { stdio: 'inherit' });

function sample(threads) {
  const out = {};
  const conv = JSON.parse(execFileSync(wb, ['--bench', '--threads', String(threads), '--runs', String(runs)], { encoding: 'utf8' }));
  for (const s of conv.shapes) {
    if (s.shape !== undefined && s.ms_fwd !== undefined) {
      out[`conv ${s.shape} fwd`] = s.ms_fwd;
      out[`conv ${s.shape} bwd_data`] = s.ms_bwd_data;
      out[`conv ${s.shape} bwd_weight`] = s.ms_bwd_weight;
    }
  }
  if (conv.sum_ms_listed_convs !== undefined) out['conv all shapes, all directions (sum)'] = conv.sum_ms_listed_convs;
  if (conv.sgemm_512 !== undefined) out['sgemm 512^3'] = (2 * 512 ** 3) / (conv.sgemm_512 * 1e9) * 1e3; // GFLOP/s -> ms
  const lines = execFileSync(ops, ['--bench', `--threads=${threads}`], { encoding: 'utf8' }).trim().split('\n');
  for (const l of lines) {
    const r = JSON.parse(l);
    out[`${r.op} n${r.n} c${r.c} hw${r.hw}`] = r.median_ms;
  }
  return out;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const at = { 1: {}, [wide]: {} };
for (let r = 0; r < rounds; r++)
  for (const t of r % 2 ? [wide, 1] : [1, wide]) {
    const s = sample(t);
    for (const [k, v] of Object.entries(s)) (at[t][k] = at[t][k] || []).push(v);
  }
const kernels = Object.keys(at[1]).map((k) => {
  const m1 = median(at[1][k]), mN = median(at[wide][k] || [NaN]);
  return { kernel: k, ms_1: +m1.toFixed(3), [`ms_${wide}`]: +mN.toFixed(3), speedup: +(m1 / mN).toFixed(2) };
});
const sp = kernels.map((k) => k.speedup).filter(Number.isFinite);
const geo = Math.exp(sp.reduce((a, b) => a + Math.log(b), 0) / sp.length);
console.log(JSON.stringify({ threads: [1, wide], rounds, runs, loadavg: require('os').loadavg(), geomean_speedup: +geo.toFixed(2), kernels }, null, 1));
