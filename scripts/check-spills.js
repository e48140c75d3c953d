#!/usr/bin/env node
// Register-spill gate for the CUDA kernels: compiles the convolution, batch-norm and fused
// masked-convolution families (kernels/cuda/{conv2d,batchnorm,masked_conv}.cu) with
// `-Xptxas -v` for every target architecture and fails when ptxas reports a nonzero
// "spill stores" or "spill loads" for any of their kernels. Other families are reported
// but do not fail the check. Usage:
//   node scripts/check-spills.js [--archs 80,90] [--all]   (env M2KD_CUDA_ARCHS also sets archs;
//   env M2KD_NVCC_FLAGS adds flags, e.g. -maxrregcount=16 to see the gate fail)
// Exit 0: no spills; 1: spills found; 2: nvcc missing or a compile error.
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const argVal = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const archs = (argVal('--archs') || process.env.M2KD_CUDA_ARCHS || '80;90').split(/[;,\s]+/).filter(Boolean);
const gated = ['conv2d.cu', 'batchnorm.cu', 'masked_conv.cu'];
const files = args.includes('--all')
  ? fs.readdirSync(path.join(root, 'kernels/cuda')).filter((f) => f.endsWith('.cu')).sort()
  : gated;
const nvcc = process.env.NVCC || 'nvcc';

if (spawnSync(nvcc, ['--version']).status !== 0) {
  console.log(`check-spills: ${nvcc} not found`);
  process.exit(2);
}

function demangle(names) {
  let r = spawnSync('cu++filt', [], { input: names.join('\n') });
  if (r.status !== 0) r = spawnSync('c++filt', [], { input: names.join('\n') });
  if (r.status !== 0) return names;
  const out = r.stdout.toString().split('\n');
  return names.map((n, i) => out[i] || n);
}

function compile(file) {
  return new Promise((resolve) => {
    const out = path.join(os.tmpdir(), `m2kd-spills-${process.pid}-${file}.o`);
    const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
    const extra = (process.env.M2KD_NVCC_FLAGS || '').split(/\s+/).filter(Boolean);
    const argv = ['-std=c++17', '-O3', ...extra, '-I', path.join(root, 'kernels/include'), ...gencode, '-Xptxas', '-v',
      '-c', path.join(root, 'kernels/cuda', file), '-o', out];
    const p = spawn(nvcc, argv);
    let log = '';
    p.stdout.on('data', (d) => (log += d));
    p.stderr.on('data', (d) => (log += d));
    p.on('close', (code) => {
      fs.rmSync(out, { force: true });
      resolve({ file, code, log });
    });
  });
}

// ptxas -v prints "Compiling entry function 'X' for 'sm_NN'" / "Function properties for X"
// followed by "N bytes stack frame, N bytes spill stores, N bytes spill loads".
function parse(log) {
  const rows = [];
  let fn = null, arch = null;
  for (const line of log.split('\n')) {
    let m = /Compiling entry function '([^']+)' for '(sm_\d+a?)'/.exec(line);
    if (m) { fn = m[1]; arch = m[2]; continue; }
    m = /Function properties for (\S+)/.exec(line);
    if (m) { fn = m[1]; continue; }
    m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (m && fn) rows.push({ fn, arch, stack: +m[1], stores: +m[2], loads: +m[3] });
  }
  return rows;
}

(async () => {
  const results = [];
  const queue = [...files];
  const jobs = Math.max(1, Math.min(2, Number(process.env.M2KD_JOBS || 2)));
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (queue.length) results.push(await compile(queue.shift()));
  }));
  let failed = false, compileError = false;
  for (const r of results.sort((a, b) => a.file.localeCompare(b.file))) {
    if (r.code !== 0) {
      console.log(`check-spills: ${r.file} failed to compile:\n${r.log}`);
      compileError = true;
      continue;
    }
    const rows = parse(r.log);
    const names = demangle(rows.map((x) => x.fn));
    const spills = rows.map((x, i) => ({ ...x, name: names[i] })).filter((x) => x.stores > 0 || x.loads > 0);
    const isGated = gated.includes(r.file);
    console.log(`check-spills: ${r.file}: ${rows.length} kernel/function builds (sm ${archs.join(',')}), ` +
      `${spills.length} with spills${isGated ? '' : ' (not gated)'}`);
    for (const s of spills) {
      console.log(`  ${isGated ? 'SPILL' : 'spill'} ${s.arch ?? ''} ${s.name}: ${s.stores} B stores, ${s.loads} B loads`);
      if (isGated) failed = true;
    }
  }
  if (compileError) process.exit(2);
  console.log(failed ? 'check-spills: FAILED (register spills in gated kernels)' : 'check-spills: ok (no spills in conv, batch-norm, masked-conv kernels)');
  process.exit(failed ? 1 : 0);
})();
