// conv2d and linear: forward against the float64 reference and finite-difference gradients,
// at every SIMD level, over kernel 1/3/7, stride 1/2, padding 0/1/3, with and without bias,
// odd sizes and size-1 dimensions.
import t from 'tap';
import { Rng, ops } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, close, Test, prod } from './helpers';
import { gradcheck } from './gradcheck';

interface ConvCase {
  x: number[];
  w: number[];
  stride: number;
  pad: number;
  bias: boolean;
}

const small: ConvCase[] = [
  { x: [2, 3, 5, 4], w: [4, 3, 1, 1], stride: 1, pad: 0, bias: true },
  { x: [1, 2, 5, 5], w: [3, 2, 1, 1], stride: 2, pad: 0, bias: false },
  { x: [2, 3, 5, 6], w: [4, 3, 3, 3], stride: 1, pad: 1, bias: true },
  { x: [1, 3, 7, 5], w: [2, 3, 3, 3], stride: 2, pad: 1, bias: false },
  { x: [2, 2, 6, 7], w: [3, 2, 3, 3], stride: 2, pad: 0, bias: true },
  { x: [1, 2, 9, 8], w: [3, 2, 7, 7], stride: 2, pad: 3, bias: true },
  { x: [1, 1, 4, 4], w: [1, 1, 3, 3], stride: 1, pad: 0, bias: true }, // c = o = 1
  { x: [3, 4, 1, 1], w: [5, 4, 1, 1], stride: 1, pad: 0, bias: true }, // 1x1 spatial
  { x: [2, 3, 1, 1], w: [2, 3, 3, 3], stride: 1, pad: 1, bias: false }, // 3x3 over a 1x1 plane
  { x: [1, 2, 3, 3], w: [2, 2, 3, 3], stride: 1, pad: 0, bias: true }, // 1x1 output
  { x: [2, 1, 1, 7], w: [2, 1, 1, 3], stride: 1, pad: 0, bias: false }, // h = 1
];

const large: ConvCase[] = [
  { x: [2, 16, 32, 32], w: [32, 16, 3, 3], stride: 1, pad: 1, bias: true },
  { x: [2, 16, 32, 32], w: [16, 16, 3, 3], stride: 2, pad: 1, bias: false },
  { x: [2, 3, 32, 32], w: [16, 3, 7, 7], stride: 2, pad: 3, bias: false }, // ResNet-18 stem
  { x: [3, 5, 17, 19], w: [7, 5, 3, 3], stride: 2, pad: 1, bias: true },
  { x: [2, 33, 9, 11], w: [17, 33, 1, 1], stride: 1, pad: 0, bias: true },
];

function caseName(c: ConvCase): string {
  return `x[${c.x}] w[${c.w}] s${c.stride} p${c.pad}${c.bias ? ' bias' : ''}`;
}

function checkConvForward(tt: Test, c: ConvCase, rng: Rng): void {
  const xd = randn(rng, c.x), wd = randn(rng, c.w, 0.5), bd = c.bias ? randn(rng, [c.w[0]]) : null;
  const y = ops.conv2d(tensor(xd, c.x), tensor(wd, c.w), bd ? tensor(bd, [c.w[0]]) : null, { stride: c.stride, padding: c.pad });
  const want = ref.conv2d(xd, c.x, wd, c.w, bd, c.stride, c.pad);
  tt.same([...y.shape], want.shape, `${caseName(c)}: output shape`);
  const k = c.w[1] * c.w[2] * c.w[3];
  close(tt, y.toFloat32(), want.y, { atol: 2e-6 * k + 1e-5, rtol: 1e-4 }, `${caseName(c)}: forward`);
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

interface LinCase {
  n: number;
  inF: number;
  outF: number;
  bias: boolean;
}
const linSmall: LinCase[] = [
  { n: 5, inF: 7, outF: 3, bias: true },
  { n: 1, inF: 1, outF: 1, bias: true },
  { n: 1, inF: 9, outF: 1, bias: false },
  { n: 4, inF: 17, outF: 33, bias: true },
  { n: 3, inF: 33, outF: 2, bias: false },
];
const linLarge: LinCase[] = [
  { n: 64, inF: 300, outF: 70, bias: true },
  { n: 127, inF: 512, outF: 100, bias: true },
  { n: 7, inF: 3, outF: 257, bias: false },
];

function checkLinear(tt: Test, c: LinCase, rng: Rng): void {
  const xd = randn(rng, [c.n, c.inF]), wd = randn(rng, [c.outF, c.inF], 0.3), bd = c.bias ? randn(rng, [c.outF]) : null;
  const y = ops.linear(tensor(xd, [c.n, c.inF]), tensor(wd, [c.outF, c.inF]), bd ? tensor(bd, [c.outF]) : null);
  tt.same([...y.shape], [c.n, c.outF], `linear ${JSON.stringify(c)}: shape`);
  close(tt, y.toFloat32(), ref.linear(xd, c.n, c.inF, wd, c.outF, bd), { atol: 2e-6 * c.inF + 1e-5, rtol: 1e-4 }, `linear ${JSON.stringify(c)}: forward`);
}

t.test('linear forward', async (t) => {
  eachSimd(t, 'linear forward', (tt) => {
    const rng = new Rng(5);
    for (const c of [...linSmall, ...linLarge]) checkLinear(tt, c, rng);
  });
});

t.test('linear gradients', async (t) => {
  eachSimd(t, 'linear gradcheck', (tt) => {
    const rng = new Rng(6);
    for (const c of linSmall) {
      const inputs = [
        { data: randn(rng, [c.n, c.inF]), shape: [c.n, c.inF] },
        { data: randn(rng, [c.outF, c.inF], 0.3), shape: [c.outF, c.inF] },
        ...(c.bias ? [{ data: randn(rng, [c.outF]), shape: [c.outF] }] : []),
      ];
      gradcheck(tt, `linear ${JSON.stringify(c)}`, (xs) => ops.linear(xs[0], xs[1], xs[2] ?? null), inputs);
    }
    // frozen input and frozen weight
    const x = randn(rng, [3, 5]), w = randn(rng, [4, 5]), b = randn(rng, [4]);
    gradcheck(tt, 'linear frozen input', (xs) => ops.linear(xs[0], xs[1], xs[2]), [
      { data: x, shape: [3, 5], requiresGrad: false },
      { data: w, shape: [4, 5] },
      { data: b, shape: [4] },
    ]);
    gradcheck(tt, 'linear frozen weight', (xs) => ops.linear(xs[0], xs[1], xs[2]), [
      { data: x, shape: [3, 5] },
      { data: w, shape: [4, 5], requiresGrad: false },
      { data: b, shape: [4], requiresGrad: false },
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
