// The addon at runtime: doctor, SIMD levels, threads, loading in a worker thread, and errors
// that leave the process alive.
import t from 'tap';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { Worker } from 'worker_threads';
import { runtimeInfo, availableSimdLevels, setSimd, setThreads, Tensor, ops } from '../src/engine';
import type { Handle } from '../src/native';
import { native } from '../src/native';

const cli = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');

t.test('doctor prints version, addon, SIMD level, threads and CUDA status', async (t) => {
  const out = execFileSync(process.execPath, [cli, 'doctor'], { encoding: 'utf8' });
  for (const k of ['m2kd', 'addon', 'simd', 'threads', 'cuda compiled', 'cuda available']) t.match(out, new RegExp(`^${k}\\s`, 'm'));
});

t.test('M2KD_SIMD and M2KD_THREADS are honoured', async (t) => {
  const code = `const m=require(${JSON.stringify(path.resolve(__dirname, '..', 'src'))}); console.log(JSON.stringify(m.runtimeInfo()))`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, M2KD_SIMD: 'scalar', M2KD_THREADS: '1' }, encoding: 'utf8' });
  const info = JSON.parse(r.stdout) as { isa: string; threads: number };
  t.equal(info.isa, 'scalar');
  t.equal(info.threads, 1);
});

t.test('SIMD levels and threads can be switched at run time', async (t) => {
  const levels = availableSimdLevels();
  t.ok(levels.includes('scalar'));
  for (const l of levels) {
    setSimd(l);
    t.equal(runtimeInfo().isa, l);
  }
  t.throws(() => native.set_isa('avx9000'), /unknown SIMD level/);
  setThreads(1);
  t.equal(runtimeInfo().threads, 1);
  setThreads(2);
  t.throws(() => setThreads(0), /thread count/);
});

t.test('the addon loads and computes in a worker thread, and frees its memory on exit', async (t) => {
  const src = path.resolve(__dirname, '..', 'src');
  const w = new Worker(
    `const { parentPort } = require('worker_threads');
     const m = require(${JSON.stringify(src)});
     const x = m.Tensor.fromArray(new Float32Array([1,-2,3]), [3]);
     const y = m.ops.relu(x);
     parentPort.postMessage(Array.from(y.toFloat32()));
     m.Tensor.zeros([1000]); // left alive on purpose: the env cleanup hook frees it`,
    { eval: true },
  );
  const msg = await new Promise((res, rej) => {
    w.on('message', res);
    w.on('error', rej);
  });
  t.same(msg, [1, 0, 3]);
  await new Promise((r) => w.on('exit', r));
  const x = Tensor.fromArray(new Float32Array([2]), [1]);
  t.equal(ops.relu(x).item(), 2, 'main thread still works');
});

t.test('native errors are exceptions naming the op and the shapes', async (t) => {
  const x = Tensor.zeros([2, 3]);
  t.throws(() => native.conv2d_forward(x.handle, x.handle, -1, x.handle, 1, 3, 4, 4, 2, 3, 3, 1, 1), /m2kd\.conv2d_forward: buffer 'x' holds 6 elements, needs 48 \(x\[1,3,4,4\] w\[2,3,3,3\]/);
  t.throws(() => native.read(123456 as Handle), /not live/);
  t.throws(() => native.alloc('f64' as 'f32', 3, false), /unknown dtype/);
  x.dispose();
  t.throws(() => x.handle, /used after dispose/);
  t.throws(() => native.free(-5 as Handle), /not live/);
});
