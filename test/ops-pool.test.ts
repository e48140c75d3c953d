// Global average pool and max pool (incl. the ResNet-18 stem 3x3 s2 p1):
// forward against the reference and finite-difference gradients at every SIMD level.
import t from 'tap';
import { Rng, Tensor, ops, backward } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, distinct, tensor, close, same, Test, prod } from './helpers';
import { gradcheck } from './gradcheck';

const gapShapes = [[2, 3, 5, 5], [1, 1, 1, 1], [3, 17, 7, 3], [2, 64, 8, 8], [1, 5, 1, 33]];

t.test('globalAvgPool forward and gradients', async (t) => {
  eachSimd(t, 'globalAvgPool', (tt: Test) => {
    const rng = new Rng(33);
    for (const s of gapShapes) {
      const x = randn(rng, s);
      const y = ops.globalAvgPool(tensor(x, s));
      tt.same([...y.shape], [s[0], s[1]], `gap [${s}] shape`);
      close(tt, y.toFloat32(), ref.globalAvgPool(x, s[0], s[1], s[2] * s[3]), { atol: 1e-6, rtol: 1e-5 }, `gap [${s}]`);
    }
    for (const s of [[2, 3, 2, 3], [1, 1, 1, 1], [1, 2, 1, 5]])
      gradcheck(tt, `gap [${s}]`, (xs) => ops.globalAvgPool(xs[0]), [{ data: randn(rng, s), shape: s }]);
  });
});

interface PoolCase {
  x: number[];
  k: number;
  stride: number;
  pad: number;
}
const poolCases: PoolCase[] = [
  { x: [2, 3, 8, 8], k: 2, stride: 2, pad: 0 },
  { x: [1, 2, 7, 9], k: 3, stride: 2, pad: 1 }, // stem on odd sizes
  { x: [1, 1, 5, 5], k: 3, stride: 1, pad: 1 },
  { x: [2, 2, 1, 1], k: 1, stride: 1, pad: 0 },
  { x: [1, 2, 4, 5], k: 2, stride: 1, pad: 1 },
  { x: [1, 1, 11, 10], k: 5, stride: 3, pad: 2 },
  { x: [3, 1, 2, 2], k: 3, stride: 2, pad: 1 }, // 2x2 plane under a padded 3x3 window
];
const stem: PoolCase[] = [
  { x: [2, 16, 32, 32], k: 3, stride: 2, pad: 1 }, // ResNet-18 stem max pool
  { x: [1, 8, 17, 15], k: 3, stride: 2, pad: 1 },
];

function pname(c: PoolCase): string {
  return `maxPool x[${c.x}] k${c.k} s${c.stride} p${c.pad}`;
}

t.test('maxPool2d forward', async (t) => {
  eachSimd(t, 'maxPool2d forward', (tt: Test) => {
    const rng = new Rng(34);
    for (const c of [...poolCases, ...stem]) {
      const x = randn(rng, c.x);
      const y = ops.maxPool2d(tensor(x, c.x), c.k, c.stride, c.pad);
      const want = ref.maxPool2d(x, c.x, c.k, c.stride, c.pad);
      tt.same([...y.shape], want.shape, `${pname(c)} shape`);
      same(tt, y.toFloat32(), want.y, pname(c));
    }
    // padding never wins: all-negative input with padding
    for (const c of [poolCases[1], poolCases[2], poolCases[4], poolCases[6], stem[1]]) {
      const x = Float32Array.from(randn(rng, c.x), (v) => -5 - Math.abs(v));
      const y = ops.maxPool2d(tensor(x, c.x), c.k, c.stride, c.pad).toFloat32();
      tt.ok(y.every((v) => v < -4.9), `${pname(c)} all-negative: padding never wins`);
      same(tt, y, ref.maxPool2d(x, c.x, c.k, c.stride, c.pad).y, `${pname(c)} all-negative`);
    }
    // -Infinity inputs stay -Infinity
    const xi = new Float32Array([-Infinity, -Infinity, -Infinity, -Infinity]);
    same(tt, ops.maxPool2d(tensor(xi, [1, 1, 2, 2]), 3, 2, 1).toFloat32(), [-Infinity], 'all -Infinity plane');
  });
});

t.test('maxPool2d gradients', async (t) => {
  eachSimd(t, 'maxPool2d gradcheck', (tt: Test) => {
    const rng = new Rng(35);
    for (const c of poolCases)
      gradcheck(tt, pname(c), (xs) => ops.maxPool2d(xs[0], c.k, c.stride, c.pad), [{ data: distinct(rng, c.x, 0.1), shape: c.x }]);
    // ties: whichever element wins, the gradient mass is conserved and lands on a maximum
    const s = [1, 2, 4, 4];
    const x = new Float32Array(prod(s)).fill(1);
    const xt = tensor(x, s, true);
    const y = ops.maxPool2d(xt, 3, 1, 1);
    const dy = new Rng(36).uniform(y.size, 0.5, 1.5);
    backward(y, Tensor.fromArray(dy, y.shape));
    const g = xt.grad!.toFloat32();
    close(tt, [g.reduce((a, b) => a + b, 0)], [dy.reduce((a, b) => a + b, 0)], { atol: 1e-4, rtol: 1e-5 }, 'ties: sum dx = sum dy');
    tt.ok(g.every((v) => v >= 0), 'ties: gradient lands on input elements only');
    xt.grad!.dispose();
  });
});
