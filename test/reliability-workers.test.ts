// The addon from two worker threads at once: both compute the same conv/BN/linear training steps
// concurrently and get the main thread's numbers; a worker terminated mid-op and a process that
// exits while both workers run end cleanly (exit code 0, no signal, no native crash).
import t from 'tap';
import * as path from 'path';
import { spawnSync } from 'child_process';

const ENGINE = path.resolve(__dirname, '..', 'src', 'engine', 'index.js');

// the work: a few SGD steps of conv -> batchnorm -> relu -> pool -> linear on seeded data; returns the loss trace
const WORK = `
const { Tensor, Rng, ops, tidy } = require(${JSON.stringify(ENGINE)});
function work(steps) {
  const rng = new Rng(7);
  const p = (shape, std) => Tensor.fromArray(rng.normal(shape.reduce((a, b) => a * b, 1), 0, std), shape, { requiresGrad: true });
  const w = p([8, 3, 3, 3], 0.2), g = Tensor.full([8], 1, { requiresGrad: true }), b = Tensor.full([8], 0, { requiresGrad: true });
  const fc = p([4, 8], 0.3);
  const x = Tensor.fromArray(rng.normal(6 * 3 * 12 * 12, 0, 1), [6, 3, 12, 12]);
  const y = Tensor.fromArray(new Float32Array(6 * 4).map((_, i) => (i % 5 === 0 ? 1 : 0)), [6, 4]);
  const rm = Tensor.full([8], 0), rv = Tensor.full([8], 1);
  const losses = [];
  for (let s = 0; s < steps; s++) {
    losses.push(tidy(() => {
      const h = ops.relu(ops.batchNorm2d(ops.conv2d(x, w, null, { stride: 1, padding: 1 }), g, b, rm, rv, { training: true, momentum: 0.1, eps: 1e-5 }));
      const f = ops.linear(ops.globalAvgPool(h), fc, null);
      const loss = ops.bceWithLogits(f, y);
      loss.backward();
      for (const q of [w, g, b, fc]) { const d = q.grad.toFloat32(); q.set(Float32Array.from(q.toFloat32(), (v, i) => v - 0.1 * d[i])); q.grad.dispose(); q.grad = null; }
      return loss.item();
    }));
  }
  return losses;
}
`;

function node(code: string, timeout = 120_000) {
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout, env: { ...process.env, M2KD_THREADS: '2' } });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

t.test('two worker threads run training steps at once and get the main thread\'s numbers', async (t) => {
  const r = node(`${WORK}
const { Worker } = require('worker_threads');
const ref = work(6);
const src = ${JSON.stringify(WORK)} + "require('worker_threads').parentPort.postMessage(work(6));";
Promise.all([0, 1].map(() => new Promise((res, rej) => { const w = new Worker(src, { eval: true }); w.on('message', res); w.on('error', rej); })))
  .then((outs) => { console.log(JSON.stringify({ ref, outs })); }, (e) => { console.error('worker failed: ' + e.stack); process.exit(3); });`);
  t.equal(r.code, 0, `exit ${r.code} ${r.signal ?? ''} ${r.err.slice(-500)}`);
  if (r.code !== 0) return;
  const { ref, outs } = JSON.parse(r.out) as { ref: number[]; outs: number[][] };
  t.equal(ref.length, 6);
  t.ok(ref.every(Number.isFinite) && ref[5] < ref[0], `the loss falls (${ref[0].toFixed(4)} -> ${ref[5].toFixed(4)})`);
  t.same(outs[0], ref, 'worker 1: same losses as the main thread');
  t.same(outs[1], ref, 'worker 2: same losses as the main thread');
});

t.test('a worker terminated mid-run, then the process exiting while two workers compute: no crash', async (t) => {
  for (let round = 0; round < 5; round++) {
  const r = node(`
const { Worker } = require('worker_threads');
const src = ${JSON.stringify(WORK)} + "const { parentPort } = require('worker_threads'); parentPort.postMessage('up'); for (;;) work(2);";
const start = () => new Promise((res) => { const w = new Worker(src, { eval: true }); w.once('message', () => res(w)); w.on('error', (e) => { console.error('worker error: ' + e.stack); process.exit(4); }); });
(async () => {
  const a = await start();
  await new Promise((r) => setTimeout(r, 300));
  await a.terminate();
  const b = await start(), c = await start();
  await new Promise((r) => setTimeout(r, 500));
  console.log('exiting');
  process.exit(0);
})();`);
  t.equal(r.signal, null, `no signal (${r.signal})`);
  t.equal(r.code, 0, `exit code 0: ${r.err.slice(-500)}`);
  t.match(r.out, /exiting/);
  }
});
