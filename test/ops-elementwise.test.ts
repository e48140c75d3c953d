// Elementwise ops and full reductions: relu, add, sub, mul, affine/scale/addScalar, sigmoid,
// sum, mean, reshape/flatten. Forward against the reference (sizes around the vector widths
// and their tails) and finite-difference gradients, at every SIMD level.
import t from 'tap';
import { Rng, Tensor, ops, backward } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, awayFromZero, tensor, close, same, Test } from './helpers';
import { gradcheck } from './gradcheck';

// sizes below, at and around the 8- and 16-lane widths, and a long odd one
const sizes: number[][] = [[1], [7], [8], [15], [16], [17], [31], [33], [3, 5, 7], [1, 1, 1, 1], [1003]];
const gradShapes: number[][] = [[1], [2, 3], [17], [3, 1, 5]];

t.test('elementwise forward', async (t) => {
  eachSimd(t, 'elementwise forward', (tt: Test) => {
    const rng = new Rng(21);
    for (const s of sizes) {
      const a = randn(rng, s), b = randn(rng, s);
      const A = tensor(a, s), B = tensor(b, s);
      const tag = `[${s}]`;
      same(tt, ops.relu(A).toFloat32(), ref.relu(a), `relu ${tag}`);
      close(tt, ops.add(A, B).toFloat32(), ref.axpby(1, a, 1, b), { atol: 1e-6, rtol: 1e-6 }, `add ${tag}`);
      close(tt, ops.sub(A, B).toFloat32(), ref.axpby(1, a, -1, b), { atol: 1e-6, rtol: 1e-6 }, `sub ${tag}`);
      close(tt, ops.mul(A, B).toFloat32(), ref.mul(a, b), { atol: 1e-6, rtol: 1e-6 }, `mul ${tag}`);
      close(tt, ops.affine(A, -2.5, 0.75).toFloat32(), ref.affine(a, -2.5, 0.75), { atol: 1e-6, rtol: 1e-6 }, `affine ${tag}`);
      close(tt, ops.scale(A, 3).toFloat32(), ref.affine(a, 3, 0), { atol: 1e-6, rtol: 1e-6 }, `scale ${tag}`);
      close(tt, ops.addScalar(A, -1.25).toFloat32(), ref.affine(a, 1, -1.25), { atol: 1e-6, rtol: 1e-6 }, `addScalar ${tag}`);
      close(tt, ops.sigmoid(A).toFloat32(), ref.sigmoid(a), { atol: 1e-6, rtol: 1e-5 }, `sigmoid ${tag}`);
      close(tt, [ops.sum(A).item()], [ref.sum(a)], { atol: 1e-5, rtol: 1e-5 }, `sum ${tag}`);
      close(tt, [ops.mean(A).item()], [ref.mean(a)], { atol: 1e-6, rtol: 1e-5 }, `mean ${tag}`);
      tt.same([...ops.sum(A).shape], [], `sum ${tag} is 0-d`);
    }
  });
});

t.test('sigmoid and relu at extreme and special inputs', async (t) => {
  eachSimd(t, 'elementwise extremes', (tt: Test) => {
    const x = new Float32Array([-1e4, -100, -88, -20, -1e-8, 0, -0, 1e-8, 20, 88, 100, 1e4, 3.4e38, -3.4e38, 0.5, -0.5, 7]);
    const X = tensor(x, [x.length]);
    const s = ops.sigmoid(X).toFloat32();
    tt.ok(s.every((v) => Number.isFinite(v) && v >= 0 && v <= 1), `sigmoid stays in [0,1] and finite: ${Array.from(s)}`);
    close(tt, s, ref.sigmoid(x), { atol: 1e-6, rtol: 1e-5 }, 'sigmoid extremes');
    const r = ops.relu(X).toFloat32();
    same(tt, r, ref.relu(x), 'relu extremes');
    // sum of many values: no fp32 drift across the whole array (the kernel accumulates fp32
    // within 4096-element blocks and double across them: measured rel. error up to ~2.4e-6 at
    // 1e6 elements; a plain fp32 running sum would be off by ~1e-3)
    for (const n of [100003, 1000000]) {
      const ones = Tensor.full([n], 0.1);
      close(tt, [ops.sum(ones).item()], [n * Math.fround(0.1)], { atol: 0, rtol: 1e-5 }, `sum of ${n} x 0.1`);
      close(tt, [ops.mean(ones).item()], [Math.fround(0.1)], { atol: 0, rtol: 1e-5 }, `mean of ${n} x 0.1`);
    }
  });
});

t.test('reshape and flatten', async (t) => {
  eachSimd(t, 'reshape', (tt: Test) => {
    const rng = new Rng(22);
    const x = randn(rng, [2, 3, 4, 5]);
    const X = tensor(x, [2, 3, 4, 5]);
    const r = ops.reshape(X, [6, -1]);
    tt.same([...r.shape], [6, 20], 'reshape infers -1');
    same(tt, r.toFloat32(), x, 'reshape keeps the data');
    tt.same([...ops.flatten(X).shape], [2, 60], 'flatten');
    tt.same([...ops.reshape(X, [120]).shape], [120]);
    tt.same([...ops.reshape(tensor(new Float32Array([5]), [1, 1]), []).shape], [], 'to 0-d');
    tt.throws(() => ops.reshape(X, [7, -1]), /reshape/, 'bad size names reshape');
    tt.throws(() => ops.reshape(X, [-1, -1]), /reshape/, 'two holes');
  });
});

t.test('elementwise gradients', async (t) => {
  eachSimd(t, 'elementwise gradcheck', (tt: Test) => {
    const rng = new Rng(23);
    for (const s of gradShapes) {
      const tag = `[${s}]`;
      const g = (data: Float32Array, requiresGrad = true) => ({ data, shape: s, requiresGrad });
      gradcheck(tt, `relu ${tag}`, (xs) => ops.relu(xs[0]), [g(awayFromZero(rng, s, 0.05))]);
      gradcheck(tt, `add ${tag}`, (xs) => ops.add(xs[0], xs[1]), [g(randn(rng, s)), g(randn(rng, s))]);
      gradcheck(tt, `sub ${tag}`, (xs) => ops.sub(xs[0], xs[1]), [g(randn(rng, s)), g(randn(rng, s))]);
      gradcheck(tt, `mul ${tag}`, (xs) => ops.mul(xs[0], xs[1]), [g(randn(rng, s)), g(randn(rng, s))]);
      gradcheck(tt, `mul ${tag} one frozen`, (xs) => ops.mul(xs[0], xs[1]), [g(randn(rng, s)), g(randn(rng, s), false)]);
      gradcheck(tt, `affine ${tag}`, (xs) => ops.affine(xs[0], -1.7, 0.3), [g(randn(rng, s))]);
      gradcheck(tt, `addScalar ${tag}`, (xs) => ops.addScalar(xs[0], 2), [g(randn(rng, s))]);
      gradcheck(tt, `sigmoid ${tag}`, (xs) => ops.sigmoid(xs[0]), [g(randn(rng, s, 2))]);
      gradcheck(tt, `sum ${tag}`, (xs) => ops.sum(xs[0]), [g(randn(rng, s))]);
      gradcheck(tt, `mean ${tag}`, (xs) => ops.mean(xs[0]), [g(randn(rng, s))]);
      gradcheck(tt, `reshape ${tag}`, (xs) => ops.reshape(xs[0], [-1]), [g(randn(rng, s))]);
    }
    // same tensor used twice: x*x and x+x (gradients from both uses add up)
    const s = [2, 5];
    gradcheck(tt, 'mul(x, x)', (xs) => ops.mul(xs[0], xs[0]), [{ data: randn(rng, s), shape: s }]);
    gradcheck(tt, 'add(x, x)', (xs) => ops.add(xs[0], xs[0]), [{ data: randn(rng, s), shape: s }]);
    // a small chain through several ops
    gradcheck(tt, 'mean(sigmoid(x*y - relu(x)))', (xs) => ops.mean(ops.sigmoid(ops.sub(ops.mul(xs[0], xs[1]), ops.relu(xs[0])))), [
      { data: awayFromZero(rng, s), shape: s },
      { data: randn(rng, s), shape: s },
    ]);
  });
});

t.test('backward seeds and accumulation into leaves', async (t) => {
  eachSimd(t, 'accumulate', (tt: Test) => {
    const x = tensor(new Float32Array([1, -2, 3]), [3], true);
    ops.sum(ops.scale(x, 2)).backward();
    same(tt, x.grad!.toFloat32(), [2, 2, 2], 'd sum(2x) = 2');
    ops.sum(ops.scale(x, 3)).backward();
    same(tt, x.grad!.toFloat32(), [5, 5, 5], 'second backward adds 3');
    x.grad!.dispose();
    x.grad = null;
    tt.throws(() => backward(ops.scale(x, 2)), /not a scalar/, 'non-scalar root needs a seed');
    tt.throws(() => backward(ops.sum(tensor(new Float32Array([1]), [1]))), /does not require grad/, 'root without grad');
  });
});
