// batchNorm2d: train (batch statistics, running-stat update with unbiased variance and
// momentum) and eval modes, fused ReLU, odd shapes and size-1 dimensions, a large mean
// offset (1e3) that breaks single-pass fp32 variance, and finite-difference gradients.
import t from 'tap';
import { Rng, Tensor, ops, backward } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, uniform, tensor, close, Test, prod } from './helpers';
import { gradcheck } from './gradcheck';

const shapes: number[][] = [
  [4, 3, 5, 5],
  [1, 5, 3, 3], // n = 1
  [3, 1, 7, 1], // c = 1, w = 1
  [5, 2, 1, 1], // 1x1 plane: statistics over the batch only
  [2, 17, 3, 5], // c past a SIMD width
  [2, 3, 33, 17], // hw not a multiple of any vector width
];
const largeShapes: number[][] = [[8, 64, 16, 16]];

function bnData(rng: Rng, shape: number[], offset = 0) {
  const c = shape[1];
  return {
    x: randn(rng, shape, 1.5, offset),
    gamma: randn(rng, [c], 0.5, 1),
    beta: randn(rng, [c], 0.5),
    rm: randn(rng, [c]),
    rv: uniform(rng, [c], 0.5, 2),
  };
}

function checkTrain(tt: Test, shape: number[], relu: boolean, rng: Rng, offset = 0, tol = { atol: 2e-5, rtol: 2e-4 }): void {
  const [n, c, h, w] = shape;
  const d = bnData(rng, shape, offset);
  const momentum = 0.1, eps = 1e-5;
  const rm = tensor(d.rm, [c]), rv = tensor(d.rv, [c]);
  const y = ops.batchNorm2d(tensor(d.x, shape), tensor(d.gamma, [c]), tensor(d.beta, [c]), rm, rv, { training: true, momentum, eps, relu });
  const want = ref.batchNormTrain(d.x, n, c, h * w, d.gamma, d.beta, eps, momentum, d.rm, d.rv, relu);
  const name = `train [${shape}]${relu ? ' +relu' : ''}${offset ? ` offset ${offset}` : ''}`;
  close(tt, y.toFloat32(), want.y, tol, `${name}: output`);
  close(tt, rm.toFloat32(), want.runningMean!, { atol: 1e-5, rtol: 1e-5 }, `${name}: running mean`);
  close(tt, rv.toFloat32(), want.runningVar!, { atol: 1e-5, rtol: offset ? 1e-3 : 1e-4 }, `${name}: running var (unbiased)`);
}

t.test('batchNorm2d train forward and running statistics', async (t) => {
  eachSimd(t, 'bn train', (tt) => {
    const rng = new Rng(11);
    for (const s of [...shapes, ...largeShapes]) {
      checkTrain(tt, s, false, rng);
      checkTrain(tt, s, true, rng);
    }
  });
});

t.test('batchNorm2d train with a large mean offset (variance cancellation)', async (t) => {
  eachSimd(t, 'bn offset', (tt) => {
    const rng = new Rng(12);
    for (const s of [[4, 3, 5, 5], [2, 17, 3, 5], [16, 8, 8, 8]]) {
      checkTrain(tt, s, false, rng, 1e3, { atol: 2e-3, rtol: 1e-3 });
      checkTrain(tt, s, true, rng, 1e3, { atol: 2e-3, rtol: 1e-3 });
    }
    // the gradient of a shift-invariant op does not depend on the offset
    const shape = [3, 4, 4, 5];
    const x = randn(rng, shape), gamma = randn(rng, [4], 0.5, 1), beta = randn(rng, [4]);
    const r = tensor(randn(rng, shape), shape);
    const grads = [0, 1e3].map((off) => {
      const xt = tensor(Float32Array.from(x, (v) => v + off), shape, true);
      const y = ops.batchNorm2d(xt, tensor(gamma, [4]), tensor(beta, [4]), null, null, { training: true });
      backward(y, r);
      const g = xt.grad!.toFloat32();
      xt.grad!.dispose();
      return g;
    });
    close(tt, grads[1], grads[0], { atol: 5e-3, rtol: 1e-2 }, 'dx with offset 1e3 equals dx without');
  });
});

t.test('batchNorm2d running statistics: momentum, repeated updates, none given', async (t) => {
  eachSimd(t, 'bn running', (tt) => {
    const rng = new Rng(13);
    const shape = [3, 2, 4, 3], c = 2, hw = 12;
    const d = bnData(rng, shape);
    // momentum 1: running stats become the batch stats
    let rm = tensor(d.rm, [c]), rv = tensor(d.rv, [c]);
    ops.batchNorm2d(tensor(d.x, shape), tensor(d.gamma, [c]), tensor(d.beta, [c]), rm, rv, { training: true, momentum: 1 });
    const want = ref.batchNormTrain(d.x, 3, c, hw, d.gamma, d.beta, 1e-5, 1, d.rm, d.rv);
    close(tt, rm.toFloat32(), want.mean, { atol: 1e-6, rtol: 1e-5 }, 'momentum 1: running mean = batch mean');
    close(tt, rv.toFloat32(), want.varUnbiased, { atol: 1e-6, rtol: 1e-5 }, 'momentum 1: running var = unbiased batch var');
    // momentum 0: untouched
    rm = tensor(d.rm, [c]);
    rv = tensor(d.rv, [c]);
    ops.batchNorm2d(tensor(d.x, shape), tensor(d.gamma, [c]), tensor(d.beta, [c]), rm, rv, { training: true, momentum: 0 });
    close(tt, rm.toFloat32(), d.rm, { atol: 0, rtol: 0 }, 'momentum 0: running mean untouched');
    close(tt, rv.toFloat32(), d.rv, { atol: 0, rtol: 0 }, 'momentum 0: running var untouched');
    // three updates with momentum 0.3 on the same batch
    rm = tensor(d.rm, [c]);
    rv = tensor(d.rv, [c]);
    let wm: ArrayLike<number> = d.rm, wv: ArrayLike<number> = d.rv;
    for (let i = 0; i < 3; i++) {
      ops.batchNorm2d(tensor(d.x, shape), tensor(d.gamma, [c]), tensor(d.beta, [c]), rm, rv, { training: true, momentum: 0.3 });
      const r = ref.batchNormTrain(d.x, 3, c, hw, d.gamma, d.beta, 1e-5, 0.3, wm, wv);
      wm = r.runningMean!;
      wv = r.runningVar!;
    }
    close(tt, rm.toFloat32(), wm, { atol: 1e-5, rtol: 1e-5 }, 'three updates: running mean');
    close(tt, rv.toFloat32(), wv, { atol: 1e-5, rtol: 1e-5 }, 'three updates: running var');
    // no running statistics: output still correct
    const y = ops.batchNorm2d(tensor(d.x, shape), tensor(d.gamma, [c]), tensor(d.beta, [c]), null, null, { training: true, eps: 1e-3 });
    close(tt, y.toFloat32(), ref.batchNormTrain(d.x, 3, c, hw, d.gamma, d.beta, 1e-3, 0.1, null, null).y, { atol: 2e-5, rtol: 2e-4 }, 'no running stats, eps 1e-3');
  });
});

t.test('batchNorm2d eval forward', async (t) => {
  eachSimd(t, 'bn eval', (tt) => {
    const rng = new Rng(14);
    for (const s of [...shapes, ...largeShapes])
      for (const relu of [false, true]) {
        const [n, c, h, w] = s;
        const d = bnData(rng, s);
        const rm = tensor(d.rm, [c]), rv = tensor(d.rv, [c]);
        const y = ops.batchNorm2d(tensor(d.x, s), tensor(d.gamma, [c]), tensor(d.beta, [c]), rm, rv, { training: false, relu });
        close(tt, y.toFloat32(), ref.batchNormEval(d.x, n, c, h * w, d.gamma, d.beta, d.rm, d.rv, 1e-5, relu), { atol: 1e-5, rtol: 1e-4 }, `eval [${s}]${relu ? ' +relu' : ''}`);
        close(tt, rm.toFloat32(), d.rm, { atol: 0, rtol: 0 }, `eval [${s}]: running mean untouched`);
        close(tt, rv.toFloat32(), d.rv, { atol: 0, rtol: 0 }, `eval [${s}]: running var untouched`);
      }
  });
});

t.test('batchNorm2d eval gradients (running statistics are constants)', async (t) => {
  eachSimd(t, 'bn eval gradcheck', (tt) => {
    const rng = new Rng(17);
    for (const s of [[3, 2, 2, 3], [1, 3, 2, 2], [2, 1, 1, 1]]) {
      const c = s[1];
      const d = bnData(rng, s);
      const rm = tensor(d.rm, [c]), rv = tensor(d.rv, [c]);
      gradcheck(tt, `bn eval [${s}]`, (xs) => ops.batchNorm2d(xs[0], xs[1], xs[2], rm, rv, { training: false }), [
        { data: d.x, shape: s },
        { data: d.gamma, shape: [c] },
        { data: d.beta, shape: [c] },
      ]);
      close(tt, rm.toFloat32(), d.rm, { atol: 0, rtol: 0 }, `eval backward [${s}]: running mean untouched`);
    }
  });
});

t.test('batchNorm2d train gradients', async (t) => {
  eachSimd(t, 'bn gradcheck', (tt) => {
    const rng = new Rng(15);
    for (const s of [[3, 2, 2, 3], [1, 3, 2, 2], [4, 1, 1, 1], [2, 2, 1, 3]]) {
      const c = s[1];
      const d = bnData(rng, s);
      gradcheck(tt, `bn train [${s}]`, (xs) => ops.batchNorm2d(xs[0], xs[1], xs[2], null, null, { training: true }), [
        { data: d.x, shape: s },
        { data: d.gamma, shape: [c] },
        { data: d.beta, shape: [c] },
      ]);
    }
    // frozen affine parameters: only dx
    const s = [2, 3, 2, 2];
    const d = bnData(rng, s);
    gradcheck(tt, `bn train [${s}] frozen gamma/beta`, (xs) => ops.batchNorm2d(xs[0], xs[1], xs[2], null, null, { training: true }), [
      { data: d.x, shape: s },
      { data: d.gamma, shape: [3], requiresGrad: false },
      { data: d.beta, shape: [3], requiresGrad: false },
    ]);
  });
});

t.test('batchNorm2d+relu gradients', async (t) => {
  eachSimd(t, 'bn relu gradcheck', (tt) => {
    const rng = new Rng(16);
    // finite differences away from the kink: resample until every pre-activation is >= 0.15 from 0
    const s = [2, 2, 3, 1], [n, c, h, w] = s;
    let d = bnData(rng, s);
    for (let tries = 0; tries < 200; tries++) {
      const pre = ref.batchNormTrain(d.x, n, c, h * w, d.gamma, d.beta, 1e-5, 0.1, null, null).y;
      if (pre.every((v) => Math.abs(v) >= 0.15)) break;
      d = bnData(rng, s);
    }
    gradcheck(tt, `bn+relu train [${s}]`, (xs) => ops.batchNorm2d(xs[0], xs[1], xs[2], null, null, { training: true, relu: true }), [
      { data: d.x, shape: s },
      { data: d.gamma, shape: [c] },
      { data: d.beta, shape: [c] },
    ], { eps: 3e-3 });
    // fused equals relu(bn(x)) on a larger shape (analytic against analytic)
    const big = [4, 3, 5, 5];
    const e = bnData(rng, big);
    const run = (fused: boolean) => {
      const x = tensor(e.x, big, true), g = tensor(e.gamma, [3], true), b = tensor(e.beta, [3], true);
      const y = fused
        ? ops.batchNorm2d(x, g, b, null, null, { training: true, relu: true })
        : ops.relu(ops.batchNorm2d(x, g, b, null, null, { training: true }));
      const r = new Rng(99).normal(prod(big));
      backward(y, Tensor.fromArray(r, big));
      const out = { y: y.toFloat32(), dx: x.grad!.toFloat32(), dg: g.grad!.toFloat32(), db: b.grad!.toFloat32() };
      for (const p of [x, g, b]) p.grad!.dispose();
      return out;
    };
    const f = run(true), u = run(false);
    close(tt, f.y, u.y, { atol: 1e-5, rtol: 1e-5 }, 'fused relu forward = relu(bn)');
    close(tt, f.dx, u.dx, { atol: 1e-4, rtol: 1e-3 }, 'fused relu dx = dx of relu(bn)');
    close(tt, f.dg, u.dg, { atol: 1e-4, rtol: 1e-3 }, 'fused relu dgamma');
    close(tt, f.db, u.db, { atol: 1e-4, rtol: 1e-3 }, 'fused relu dbeta');
  });
});
