// conv2d: forward against the float64 reference and finite-difference gradients,
// at every SIMD level, over kernel 1/3/7, stride 1/2, padding 0/1/3, with and without bias,
// odd sizes and size-1 dimensions.
import t from 'tap';
import { Rng, ops } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, close, Test, prod } from './helpers';
import { gradcheck } from './gradcheck';
import { conv2dCases, Conv2dCase, sumTol } from './cases';

const small = conv2dCases.filter((c) => c.grad);
const large = conv2dCases.filter((c) => !c.grad);

function caseName(c: Conv2dCase): string {
  return `x[${c.x}] w[${c.w}] s${c.stride} p${c.pad}${c.bias ? ' bias' : ''}`;
}

function checkConvForward(tt: Test, c: Conv2dCase, rng: Rng): void {
  const xd = randn(rng, c.x), wd = randn(rng, c.w, 0.5), bd = c.bias ? randn(rng, [c.w[0]]) : null;
  const y = ops.conv2d(tensor(xd, c.x), tensor(wd, c.w), bd ? tensor(bd, [c.w[0]]) : null, { stride: c.stride, padding: c.pad });
  const want = ref.conv2d(xd, c.x, wd, c.w, bd, c.stride, c.pad);
  tt.same([...y.shape], want.shape, `${caseName(c)}: output shape`);
  const k = c.w[1] * c.w[2] * c.w[3];
  close(tt, y.toFloat32(), want.y, sumTol(k), `${caseName(c)}: forward`);
}

t.test('conv2d forward, small and odd shapes', async (t) => {
  eachSimd(t, 'conv2d forward', (tt) => {
    const rng = new Rng(1);
    for (const c of small) checkConvForward(tt, c, rng);
  });
});

t.test('conv2d forward, larger shapes', async (t) => {
  eachSimd(t, 'conv2d forward large', (tt) => {
    const rng = new Rng(2);
    for (const c of large) checkConvForward(tt, c, rng);
  });
});

t.test('conv2d gradients', async (t) => {
  eachSimd(t, 'conv2d gradcheck', (tt) => {
    const rng = new Rng(3);
    for (const c of small) {
      const inputs = [
        { data: randn(rng, c.x), shape: c.x },
        { data: randn(rng, c.w, 0.5), shape: c.w },
        ...(c.bias ? [{ data: randn(rng, [c.w[0]]), shape: [c.w[0]] }] : []),
      ];
      gradcheck(tt, `conv2d ${caseName(c)}`, (xs) => ops.conv2d(xs[0], xs[1], xs[2] ?? null, { stride: c.stride, padding: c.pad }), inputs);
    }
  });
});

t.test('conv2d gradients with some inputs frozen', async (t) => {
  eachSimd(t, 'conv2d frozen', (tt) => {
    const rng = new Rng(4);
    const xs = [2, 3, 5, 5], ws = [4, 3, 3, 3];
    const conv = (v: ReturnType<typeof tensor>[]) => ops.conv2d(v[0], v[1], v[2], { stride: 1, padding: 1 });
    // frozen weight, trainable bias and input (the weight-gradient sink path)
    gradcheck(tt, 'conv2d frozen weight', conv, [
      { data: randn(rng, xs), shape: xs },
      { data: randn(rng, ws), shape: ws, requiresGrad: false },
      { data: randn(rng, [4]), shape: [4] },
    ]);
    // frozen input (first layer): only weight and bias gradients
    gradcheck(tt, 'conv2d frozen input', conv, [
      { data: randn(rng, xs), shape: xs, requiresGrad: false },
      { data: randn(rng, ws), shape: ws },
      { data: randn(rng, [4]), shape: [4] },
    ]);
    // only the input needs a gradient
    gradcheck(tt, 'conv2d input only', conv, [
      { data: randn(rng, xs), shape: xs },
      { data: randn(rng, ws), shape: ws, requiresGrad: false },
      { data: randn(rng, [4]), shape: [4], requiresGrad: false },
    ]);
  });
});

t.test('conv2d equals linear for a 1x1 kernel over a 1x1 plane', async (t) => {
  eachSimd(t, 'conv2d vs linear', (tt) => {
    const rng = new Rng(8);
    const n = 3, c = 6, o = 5;
    const xd = randn(rng, [n, c]), wd = randn(rng, [o, c]), bd = randn(rng, [o]);
    const yc = ops.conv2d(tensor(xd, [n, c, 1, 1]), tensor(wd, [o, c, 1, 1]), tensor(bd, [o]));
    const yl = ops.linear(tensor(xd, [n, c]), tensor(wd, [o, c]), tensor(bd, [o]));
    close(tt, yc.toFloat32(), yl.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, 'same values');
    tt.equal(prod(yc.shape), n * o);
  });
});
