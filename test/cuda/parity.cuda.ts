// CUDA parity suite (npm run test:cuda; run by test/cuda/run.ts only where a CUDA device is
// present): every op of the engine runs on the CPU and on the GPU from the same inputs, and its
// outputs and gradients must agree within atol + rtol * |cpu|. Plus the native entry points the
// engine does not reach directly (sgemm with transposes, SGD with a frozen mask, fill), device
// rules (explicit copies, mixed devices refused), and gradient checks run on the device.
import tap from 'tap';
import { Tensor, tidy, withDevice, backward, Rng, ops, memory, synchronize } from '../../src/engine';
import type { Device } from '../../src/engine';
import { native } from '../../src/native';
import { Test, close, same, randn, awayFromZero, distinct, uniform, prod } from '../helpers';
import { gradcheck } from '../gradcheck';

const t0 = tap;

type Data = Float32Array | Int32Array | Uint8Array;
interface In {
  data: Data;
  shape: number[];
  grad?: boolean;
}
interface Run {
  out: Float32Array[];
  grads: (Float32Array | null)[];
}
interface Tol {
  atol?: number;
  rtol?: number;
}

/** Builds inputs on `device`, runs f, seeds backward of the first output with R, reads everything back. */
function runOn(device: Device, ins: In[], f: (xs: Tensor[]) => Tensor | Tensor[], seed: number): Run {
  return tidy(() =>
    withDevice(device, () => {
      const xs = ins.map((i) => Tensor.fromArray(i.data, i.shape, { requiresGrad: !!i.grad }));
      const r = f(xs);
      const ys = Array.isArray(r) ? r : [r];
      if (ins.some((i) => i.grad)) {
        const R = Tensor.fromArray(new Rng(seed, 5).normal(ys[0].size), ys[0].shape);
        backward(ys[0], R);
      }
      return {
        out: ys.map((y) => (y.dtype === 'f32' ? y.toFloat32() : Float32Array.from(y.toArray()))),
        grads: xs.map((x) => (x.grad ? x.grad.toFloat32() : null)),
      };
    }),
  );
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (const x of v) if (Number.isFinite(x)) m = Math.max(m, Math.abs(x));
  return m;
}

/**
 * One op, CPU vs CUDA: every output and every input gradient, within atol + rtol * |cpu|, where
 * atol also grows with the tensor's scale (1e-5 * max |cpu|): the two devices sum long
 * reductions in different orders, so near-zero elements of a large-valued sum differ by
 * rounding of the order of the large values.
 */
function parity(t: Test, name: string, ins: In[], f: (xs: Tensor[]) => Tensor | Tensor[], tol: Tol = {}, seed = 17): void {
  const cpu = runOn('cpu', ins, f, seed);
  const gpu = runOn('cuda', ins, f, seed);
  const tl = (ref: Float32Array) => ({ atol: (tol.atol ?? 1e-5) + 1e-5 * maxAbs(ref), rtol: tol.rtol ?? 1e-4 });
  cpu.out.forEach((o, i) => close(t, gpu.out[i], o, tl(o), `${name}: output ${i}`));
  cpu.grads.forEach((g, i) => {
    if (g) close(t, gpu.grads[i]!, g, tl(g), `${name}: gradient of input ${i}`);
  });
}

const f32 = (rng: Rng, shape: number[], grad = true): In => ({ data: randn(rng, shape), shape, grad });

t0.test('conv2d forward, backward-data, backward-weight (implicit GEMM, split-K)', async (t) => {
  const rng = new Rng(1);
  const cases: [number[], number[], number, number, boolean][] = [
    // x shape, w shape, stride, pad, bias
    [[2, 3, 9, 9], [4, 3, 3, 3], 1, 1, true],
    [[3, 16, 17, 13], [32, 16, 3, 3], 2, 1, false],
    [[2, 8, 8, 8], [64, 8, 1, 1], 2, 0, true],
    [[1, 5, 7, 7], [70, 5, 3, 3], 1, 0, true],
    [[2, 7, 11, 10], [9, 7, 5, 3], 3, 2, false],
    [[16, 16, 32, 32], [16, 16, 3, 3], 1, 1, false],  // ResNet-32 stage 1: many k-splits
    [[8, 32, 16, 16], [64, 32, 3, 3], 2, 1, false],   // stage 3 transition
    // every tile shape of every kernel-size instance (M <= 16, <= 32, > 32; forward M = O,
    // backward-data M = C), found missing by the emulated device's kernel coverage
    [[2, 40, 6, 6], [12, 40, 1, 1], 1, 0, true],
    [[2, 24, 5, 5], [24, 24, 1, 1], 2, 0, false],
    [[2, 20, 6, 7], [28, 20, 2, 2], 1, 1, true],
    [[1, 36, 5, 5], [40, 36, 5, 5], 1, 2, false],
    [[2, 48, 5, 5], [8, 48, 3, 3], 1, 1, false],
    [[1, 1, 1, 1], [1, 1, 1, 1], 1, 0, true],          // size-1 everything
    [[3, 2, 1, 9], [5, 2, 1, 3], 2, 0, true],          // one-row images, stride 2
  ];
  for (const [xs, ws, stride, pad, bias] of cases) {
    const ins = [f32(rng, xs), { data: randn(rng, ws, 0.2), shape: ws, grad: true }];
    if (bias) ins.push(f32(rng, [ws[0]]));
    const k = xs[1] * ws[2] * ws[3];
    parity(t, `conv2d x[${xs}] w[${ws}] s${stride} p${pad}${bias ? ' +bias' : ''}`, ins,
      (v) => ops.conv2d(v[0], v[1], bias ? v[2] : null, { stride, padding: pad }),
      { atol: 2e-5 * Math.sqrt(k * xs[0]), rtol: 1e-3 });
  }
});

t0.test('linear and sgemm (all transposes, alpha, beta)', async (t) => {
  const rng = new Rng(2);
  for (const [n, i, o] of [[4, 7, 3], [130, 70, 33], [1, 64, 100], [33, 5, 65], [20, 9, 17], [1, 1, 1]]) {
    parity(t, `linear [${n},${i}]x[${o},${i}]^T +bias`, [f32(rng, [n, i]), f32(rng, [o, i]), f32(rng, [o])],
      (v) => ops.linear(v[0], v[1], v[2]), { atol: 1e-4, rtol: 1e-3 });
    parity(t, `linear [${n},${i}]x[${o},${i}]^T`, [f32(rng, [n, i]), f32(rng, [o, i])],
      (v) => ops.linear(v[0], v[1]), { atol: 1e-4, rtol: 1e-3 });
  }
  for (const ta of [false, true])
    for (const tb of [false, true]) {
      const M = 37, N = 70, K = 45;
      const lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
      const A = randn(rng, [(ta ? K : M) * lda]), B = randn(rng, [(tb ? N : K) * ldb]), C = randn(rng, [M * ldc]);
      const res: Float32Array[] = [];
      for (const dev of ['cpu', 'cuda'] as Device[])
        res.push(tidy(() => withDevice(dev, () => {
          const a = Tensor.fromArray(A), b = Tensor.fromArray(B), c = Tensor.fromArray(C);
          native.sgemm(ta, tb, M, N, K, 0.7, a.handle, lda, b.handle, ldb, -0.5, c.handle, ldc);
          return c.toFloat32();
        })));
      close(t, res[1], res[0], { atol: 1e-4, rtol: 1e-3 }, `sgemm transA=${ta} transB=${tb} alpha 0.7 beta -0.5`);
    }
});

t0.test('batch norm: train (running stats), eval, fused ReLU, backward of both', async (t) => {
  const rng = new Rng(3);
  for (const shape of [[4, 3, 5, 5], [16, 16, 8, 8], [2, 64, 1, 1], [128, 16, 4, 4]])
    for (const relu of [false, true])
      for (const training of [true, false]) {
        const c = shape[1];
        const ins: In[] = [
          { data: randn(rng, shape, 2, 0.5), shape, grad: true },
          { data: uniform(rng, [c], 0.5, 1.5), shape: [c], grad: true },
          f32(rng, [c]),
          { data: randn(rng, [c], 0.1), shape: [c] },
          { data: uniform(rng, [c], 0.5, 2), shape: [c] },
        ];
        parity(t, `batchNorm2d [${shape}] ${training ? 'train' : 'eval'}${relu ? '+relu' : ''}`, ins,
          (v) => [ops.batchNorm2d(v[0], v[1], v[2], v[3], v[4], { training, relu, momentum: 0.1 }), v[3], v[4]],
          { atol: 1e-4, rtol: 1e-3 });
      }
});

t0.test('elementwise ops, reductions, views', async (t) => {
  const rng = new Rng(4);
  const sh = [3, 5, 7, 11];
  const a = (): In => ({ data: awayFromZero(rng, sh), shape: sh, grad: true });
  parity(t, 'relu', [a()], (v) => ops.relu(v[0]));
  parity(t, 'addRelu', [a(), a()], (v) => ops.addRelu(v[0], v[1]));
  parity(t, 'add', [a(), a()], (v) => ops.add(v[0], v[1]));
  parity(t, 'sub', [a(), a()], (v) => ops.sub(v[0], v[1]));
  parity(t, 'mul', [a(), a()], (v) => ops.mul(v[0], v[1]));
  parity(t, 'affine', [a()], (v) => ops.affine(v[0], -1.5, 0.25));
  parity(t, 'sigmoid', [{ data: randn(rng, sh, 4), shape: sh, grad: true }], (v) => ops.sigmoid(v[0]));
  parity(t, 'sum', [a()], (v) => ops.sum(v[0]));
  parity(t, 'mean', [a()], (v) => ops.mean(v[0]));
  parity(t, 'reshape+flatten', [a()], (v) => ops.flatten(ops.reshape(v[0], [sh[0], -1, sh[3]])));
  const big = 1 << 20;
  parity(t, `sum of ${big} values`, [{ data: randn(rng, [big]), shape: [big] }], (v) => ops.sum(v[0]), { atol: 1e-3, rtol: 1e-5 });
  for (const v of [0, 2.5]) {
    const r = ['cpu', 'cuda'].map((d) => tidy(() => Tensor.full([1000, 3], v, { device: d as Device }).toFloat32()));
    same(t, r[1], r[0], `fill ${v}`);
  }
});

t0.test('shortcut, pooling, flip, columns', async (t) => {
  const rng = new Rng(5);
  parity(t, 'shortcutA stride 2 pad 4+4', [f32(rng, [3, 8, 9, 10])], (v) => ops.shortcutA(v[0], 2, 4, 4));
  parity(t, 'shortcutA stride 1 pad 0+3', [f32(rng, [2, 5, 4, 4])], (v) => ops.shortcutA(v[0], 1, 0, 3));
  parity(t, 'globalAvgPool', [f32(rng, [4, 6, 7, 9])], (v) => ops.globalAvgPool(v[0]));
  for (const [k, s, p] of [[3, 2, 1], [2, 2, 0], [3, 1, 1], [4, 3, 2]]) {
    const shape = [2, 3, 11, 9];
    parity(t, `maxPool2d k${k} s${s} p${p}`, [{ data: distinct(rng, shape), shape, grad: true }], (v) => ops.maxPool2d(v[0], k, s, p));
  }
  const flags = new Uint8Array([1, 0, 1, 1, 0]);
  parity(t, 'hflip with flags', [f32(rng, [5, 3, 4, 7])], (v) => ops.hflip(v[0], flags));
  parity(t, 'hflip all', [f32(rng, [2, 3, 4, 5])], (v) => ops.hflip(v[0]));
  parity(t, 'sliceColumns', [f32(rng, [6, 20])], (v) => ops.sliceColumns(v[0], 3, 17));
  parity(t, 'concatColumns', [f32(rng, [6, 4]), f32(rng, [6, 9])], (v) => ops.concatColumns([v[0], v[1]]));
});

t0.test('losses', async (t) => {
  const rng = new Rng(6);
  const shape = [37, 13];
  parity(t, 'bceWithLogits soft targets', [{ data: randn(rng, shape, 5), shape, grad: true }, { data: uniform(rng, shape), shape }],
    (v) => ops.bceWithLogits(v[0], v[1], { denominator: 37 * 100 }), { atol: 1e-6, rtol: 1e-5 });
  const labels = new Int32Array(37);
  for (let i = 0; i < 37; i++) labels[i] = rng.int(13);
  parity(t, 'softmaxCrossEntropy', [{ data: randn(rng, shape, 3), shape, grad: true }, { data: labels, shape: [37] }],
    (v) => ops.softmaxCrossEntropy(v[0], v[1]), { atol: 1e-6, rtol: 1e-5 });
  // the BCE entry points by value (what the engine uses on the cpu) on device buffers, against
  // the device-resident ones the engine uses on cuda: the same loss and the same gradient
  tidy(() => {
    const x = randn(rng, shape, 5), tg = uniform(rng, shape);
    const n = 37 * 13, denom = 37 * 100;
    const on = (d: Device) => withDevice(d, () => [Tensor.fromArray(x, shape), Tensor.fromArray(tg, shape)]);
    const [xc, tc] = on('cpu'), [xg, tgd] = on('cuda');
    const v = native.bce_logits_forward(xg.handle, tgd.handle, n, denom);
    const y = Tensor.zeros([], { device: 'cuda' });
    native.bce_logits_forward_out(xg.handle, tgd.handle, y.handle, n, denom);
    const vc = native.bce_logits_forward(xc.handle, tc.handle, n, denom);
    t.ok(Math.abs(v - vc) <= 1e-6 * Math.abs(vc), `bce by value on cuda ${v} = cpu ${vc}`);
    t.equal(y.item(), Math.fround(v), 'bce_logits_forward_out stores the value bce_logits_forward returns');
    const g1 = Tensor.zeros(shape, { device: 'cuda' }), g2 = Tensor.zeros(shape, { device: 'cuda' });
    const dy = Tensor.fromArray(new Float32Array([0.5]), [], { device: 'cuda' });
    native.bce_logits_backward(xg.handle, tgd.handle, g1.handle, n, 0.5 / denom);
    native.bce_logits_backward_dy(xg.handle, tgd.handle, dy.handle, g2.handle, n, denom);
    close(t, g2.toFloat32(), g1.toFloat32(), { atol: 1e-7, rtol: 1e-6 }, 'bce_logits_backward_dy = bce_logits_backward with the scale read on the device');
  });
  // a bad label on the device is caught before any kernel runs
  tidy(() => withDevice('cuda', () => {
    const x = Tensor.fromArray(randn(rng, [2, 3]), [2, 3]);
    const l = Tensor.fromArray(new Int32Array([0, 3]), [2]);
    t.throws(() => ops.softmaxCrossEntropy(x, l), /label 3 at row 1/, 'bad label on cuda names the row');
  }));
});

t0.test('SGD update with momentum, weight decay and a frozen mask', async (t) => {
  const rng = new Rng(7);
  const n = 10007;
  const w0 = randn(rng, [n]), g0 = randn(rng, [n]), b0 = randn(rng, [n]);
  const frozen = new Uint8Array(n);
  for (let i = 0; i < n; i++) frozen[i] = rng.int(3) === 0 ? 1 : 0;
  for (const withMask of [false, true])
    for (const mom of [0, 0.9]) {
      const res = (['cpu', 'cuda'] as Device[]).map((d) => tidy(() => withDevice(d, () => {
        const w = Tensor.fromArray(w0), g = Tensor.fromArray(g0), b = Tensor.fromArray(b0);
        const m = withMask ? Tensor.fromArray(frozen) : null;
        for (let s = 0; s < 3; s++)
          native.sgd_update(w.handle, g.handle, mom > 0 ? b.handle : -1, m ? m.handle : -1, n, 0.1, mom, 1e-4);
        return [w.toFloat32(), b.toFloat32()];
      })));
      close(t, res[1][0], res[0][0], { atol: 1e-6, rtol: 1e-5 }, `sgd weights (momentum ${mom}, mask ${withMask})`);
      close(t, res[1][1], res[0][1], { atol: 1e-6, rtol: 1e-5 }, `sgd momentum buffer (momentum ${mom}, mask ${withMask})`);
      if (withMask) {
        let kept = true;
        for (let i = 0; i < n; i++) if (frozen[i] && !Object.is(res[1][0][i], w0[i])) kept = false;
        t.ok(kept, 'frozen weights keep their exact bits on cuda');
      }
    }
});

t0.test('devices: explicit copies, no mixing, no leaks', async (t) => {
  const rng = new Rng(8);
  const data = randn(rng, [3, 4, 5]);
  tidy(() => {
    const c = Tensor.fromArray(data, [3, 4, 5]);
    const g = c.to('cuda');
    t.equal(g.device, 'cuda');
    t.equal(native.device_of(g.handle), 'cuda');
    same(t, g.to('cpu').toFloat32(), data, 'cpu -> cuda -> cpu round trip is exact');
    same(t, g.toFloat32(), data, 'reading a cuda tensor copies back');
    const u8 = Tensor.fromArray(new Uint8Array([1, 2, 255]), [3]).to('cuda');
    same(t, u8.toArray(), [1, 2, 255], 'u8 round trip');
    t.throws(() => ops.add(c, g), /device mismatch/, 'engine op on mixed devices throws');
    t.throws(() => native.axpby(1, c.handle, 1, g.handle, c.handle, c.size), /axpby: device mismatch/,
      'native op on mixed devices throws, naming the op');
    t.throws(() => c.copyFrom(g), /device mismatch/, 'copyFrom across devices throws');
    t.throws(() => native.copy(c.handle, 0, g.handle, 0, 4), /device mismatch/, 'native copy across devices throws');
    const z = Tensor.zeros([1000], { device: 'cuda', dtype: 'i32' });
    same(t, z.toArray(), new Int32Array(1000), 'zeros on cuda (i32)');
  });
  // live device bytes do not grow across repeated steps
  const step = () => tidy(() => withDevice('cuda', () => {
    const x = Tensor.fromArray(randn(rng, [8, 4, 8, 8]), [8, 4, 8, 8], { requiresGrad: true });
    const w = Tensor.fromArray(randn(rng, [4, 4, 3, 3]), [4, 4, 3, 3], { requiresGrad: true });
    const y = ops.sum(ops.relu(ops.conv2d(x, w, null, { padding: 1 })));
    y.backward();
    const v = y.item();
    // leaf gradients survive tidy by design (tensor.ts): release them, or the count grows by them
    x.grad?.dispose();
    w.grad?.dispose();
    return v;
  }));
  step();
  synchronize();
  const m0 = memory();
  for (let i = 0; i < 5; i++) step();
  const m1 = memory();
  t.equal(m1.deviceLiveBytes, m0.deviceLiveBytes, 'device live bytes steady across steps');
});

t0.test('gradient checks on cuda', async (t) => {
  const rng = new Rng(9);
  withDevice('cuda', () => {
    gradcheck(t, 'conv2d s2 p1 (cuda)', (v) => ops.conv2d(v[0], v[1], v[2], { stride: 2, padding: 1 }), [
      { data: randn(rng, [2, 3, 5, 5]), shape: [2, 3, 5, 5] },
      { data: randn(rng, [4, 3, 3, 3], 0.5), shape: [4, 3, 3, 3] },
      { data: randn(rng, [4]), shape: [4] },
    ]);
    // (the fused-ReLU path is compared with the CPU's analytic gradient in the parity tests:
    // finite differences across its kink would be noise)
    gradcheck(t, 'batchNorm2d train (cuda)', (v) => ops.batchNorm2d(v[0], v[1], v[2], null, null, { training: true }), [
      { data: randn(rng, [3, 2, 3, 3]), shape: [3, 2, 3, 3] },
      { data: uniform(rng, [2], 0.5, 1.5), shape: [2] },
      { data: randn(rng, [2], 0.1), shape: [2] },
    ]);
    gradcheck(t, 'linear (cuda)', (v) => ops.linear(v[0], v[1], v[2]), [
      { data: randn(rng, [3, 5]), shape: [3, 5] },
      { data: randn(rng, [4, 5]), shape: [4, 5] },
      { data: randn(rng, [4]), shape: [4] },
    ]);
    gradcheck(t, 'maxPool2d k3 s2 p1 (cuda)', (v) => ops.maxPool2d(v[0], 3, 2, 1), [
      { data: distinct(rng, [1, 2, 5, 5]), shape: [1, 2, 5, 5] },
    ]);
    const labels = new Int32Array([2, 0, 1]);
    gradcheck(t, 'softmaxCrossEntropy (cuda)', (v) => ops.softmaxCrossEntropy(v[0], v[1]), [
      { data: randn(rng, [3, 4]), shape: [3, 4] },
      { data: new Float32Array(3), shape: [3], i32: labels, requiresGrad: false },
    ]);
  });
});

// ----------------------------------------------------------------------- fused masked conv
/** CPU reference of the fused masked convolution: per model, a dense conv with the weights
 *  outside 1 <= m <= steps[k] zeroed, then scale/shift, residual, ReLU. */
function maskedReference(
  K: number, x: Float32Array, shared: boolean, xs: number[], w: Float32Array, ws: number[], mask: Uint8Array,
  steps: Int32Array, scale: Float32Array, shift: Float32Array, residual: Float32Array | null, relu: boolean,
  stride: number, pad: number,
): Float32Array {
  const [n, c, h, wd] = xs;
  const o = ws[0];
  const per = n * c * h * wd;
  const outs: Float32Array[] = [];
  for (let k = 0; k < K; k++) {
    const wk = Float32Array.from(w, (v, i) => (mask[i] >= 1 && mask[i] <= steps[k] ? v : 0));
    const xk = shared ? x : x.subarray(k * per, (k + 1) * per);
    outs.push(tidy(() => ops.conv2d(Tensor.fromArray(Float32Array.from(xk), xs), Tensor.fromArray(wk, ws), null,
      { stride, padding: pad }).toFloat32()));
  }
  const ysz = outs[0].length, plane = ysz / (n * o);
  const y = new Float32Array(K * ysz);
  for (let k = 0; k < K; k++)
    for (let i = 0; i < ysz; i++) {
      const oc = Math.floor(i / plane) % o;
      let v = scale[k * o + oc] * outs[k][i] + shift[k * o + oc];
      if (residual) v += residual[k * ysz + i];
      y[k * ysz + i] = relu ? Math.max(v, 0) : v;
    }
  return y;
}

t0.test('fused masked convolution: K models in one launch vs dense reference', async (t) => {
  const rng = new Rng(10);
  const cases = [
    { K: 4, xs: [2, 3, 8, 8], ws: [16, 3, 3, 3], stride: 1, pad: 1, shared: true, res: false, relu: true },
    { K: 5, xs: [3, 16, 8, 8], ws: [16, 16, 3, 3], stride: 1, pad: 1, shared: false, res: true, relu: true },
    { K: 3, xs: [2, 16, 9, 9], ws: [32, 16, 3, 3], stride: 2, pad: 1, shared: false, res: false, relu: false },
    { K: 2, xs: [2, 32, 4, 4], ws: [70, 32, 3, 3], stride: 1, pad: 1, shared: false, res: true, relu: false },
    // 1x1 and other kernel sizes at every tile shape (M = O <= 16, <= 32, > 32)
    { K: 3, xs: [2, 8, 5, 5], ws: [12, 8, 1, 1], stride: 1, pad: 0, shared: false, res: true, relu: true },
    { K: 2, xs: [1, 8, 6, 6], ws: [24, 8, 1, 1], stride: 2, pad: 0, shared: true, res: false, relu: false },
    { K: 2, xs: [2, 4, 5, 5], ws: [40, 4, 1, 1], stride: 1, pad: 0, shared: false, res: false, relu: true },
    { K: 3, xs: [2, 4, 6, 6], ws: [10, 4, 2, 2], stride: 1, pad: 1, shared: true, res: true, relu: true },
    { K: 2, xs: [1, 6, 7, 7], ws: [20, 6, 5, 5], stride: 2, pad: 2, shared: false, res: false, relu: false },
    { K: 2, xs: [2, 3, 5, 4], ws: [36, 3, 3, 2], stride: 1, pad: 1, shared: false, res: true, relu: false },
    // more models than one launch takes (256): two launches, pointers advanced per chunk
    { K: 258, xs: [1, 2, 3, 3], ws: [3, 2, 1, 1], stride: 1, pad: 0, shared: false, res: true, relu: true },
    { K: 257, xs: [1, 2, 3, 3], ws: [2, 2, 3, 3], stride: 2, pad: 1, shared: true, res: false, relu: false },
  ];
  for (const cs of cases) {
    const { K, xs, ws, stride, pad, shared } = cs;
    const [n, c, h, wd] = xs;
    const o = ws[0];
    const oh = Math.floor((h + 2 * pad - ws[2]) / stride) + 1, ow = Math.floor((wd + 2 * pad - ws[3]) / stride) + 1;
    const x = randn(rng, [(shared ? 1 : K) * n * c * h * wd]);
    const w = randn(rng, [prod(ws)], 0.3);
    const mask = new Uint8Array(w.length);
    for (let i = 0; i < w.length; i++) mask[i] = rng.int(Math.min(K + 2, 256));  // 0 (free) .. K+1 (owned by a later step)
    const steps = Int32Array.from({ length: K }, (_, k) => Math.min(k + 1, 255));
    steps[0] = 0;  // a model with no weights at all: y = act(shift + residual)
    const scale = uniform(rng, [K * o], 0.5, 1.5), shift = randn(rng, [K * o], 0.1);
    const ysz = K * n * o * oh * ow;
    const residual = cs.res ? randn(rng, [ysz]) : null;
    const want = maskedReference(K, x, shared, xs, w, ws, mask, steps, scale, shift, residual, cs.relu, stride, pad);
    const got = tidy(() => withDevice('cuda', () => {
      const T = (d: Float32Array | Uint8Array) => Tensor.fromArray(d);
      const y = Tensor.empty([ysz]);
      const r = residual ? T(residual) : null;
      native.masked_conv_forward_cuda(T(w).handle, T(mask).handle, T(x).handle, steps, T(scale).handle, T(shift).handle,
        r ? r.handle : -1, y.handle, K, n, c, h, wd, o, ws[2], ws[3], stride, pad, cs.relu, shared);
      return y.toFloat32();
    }));
    const label = `K=${K} x[${xs}] w[${ws}] s${stride}${shared ? ' shared' : ''}${cs.res ? ' +res' : ''}${cs.relu ? ' relu' : ''}`;
    close(t, got, want, { atol: 1e-4, rtol: 1e-3 }, `masked conv ${label} vs dense reference`);
    if (typeof native.masked_conv_forward === 'function' && typeof native.masked_conv_build_plan === 'function') {
      // the CPU twin (kernels/cpu/masked_conv*, binding native/ops_masked_conv.cc): same argument order
      // with a host-built plan in place of (w, mask)
      const twin = tidy(() => {
        const plan = Tensor.empty([native.masked_conv_plan_ints(o, c, ws[2], ws[3])], { dtype: 'i32', device: 'cpu' });
        native.masked_conv_build_plan(Tensor.fromArray(w).handle, Tensor.fromArray(mask).handle, plan.handle, o, c, ws[2], ws[3]);
        const y = Tensor.empty([ysz], { device: 'cpu' });
        const r = residual ? Tensor.fromArray(residual) : null;
        native.masked_conv_forward(plan.handle, Tensor.fromArray(x).handle, steps, Tensor.fromArray(scale).handle,
          Tensor.fromArray(shift).handle, r ? r.handle : -1, y.handle, K, n, c, h, wd, o, ws[2], ws[3], stride, pad, cs.relu, shared);
        return y.toFloat32();
      });
      close(t, got, twin, { atol: 1e-4, rtol: 1e-3 }, `masked conv ${label} vs the CPU twin`);
    }
  }
  tidy(() => withDevice('cuda', () => {
    const b = Tensor.zeros([16]);
    t.throws(() => native.masked_conv_forward_cuda(b.handle, b.handle, b.handle, new Int32Array([1]), b.handle, b.handle, -1,
      b.handle, 1, 1, 1, 4, 4, 1, 1, 1, 1, 0, false, true), /mask.*dtype f32, expected u8/, 'mask must be u8');
  }));
  // the CPU twin (kern: masked_conv_forward with a plan), when this build has it
  if (typeof native.masked_conv_forward !== 'function' || typeof native.masked_conv_build_plan !== 'function')
    t.pass('skipped: CPU twin masked_conv_forward not in this build (compared against the dense reference only)');
});

// ----------------------------------------------------------------------- teacher bank
// Documented interface (src/prune/teacherBank.ts, branch kern): new MaskedTeacherBank(model,
// masks, snapshots) implements TeacherSource; forward(x, requests) -> [{ main, aux }]. The same
// bank built on cuda (model created under withDevice('cuda'), masks moved with .to('cuda'))
// must give the CPU bank's logits.
t0.test('teacher bank on cuda vs cpu', async (t) => {
  let bankMod: Record<string, unknown> | null = null;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    bankMod = require('../../src/prune/teacherBank') as Record<string, unknown>;
  } catch {
    bankMod = null;
  }
  if (!bankMod || typeof bankMod.MaskedTeacherBank !== 'function' || typeof bankMod.takeStepSnapshot !== 'function') {
    t.pass('skipped: src/prune/teacherBank.ts (MaskedTeacherBank, takeStepSnapshot) is not in this tree');
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { ResNet32Aux, ResNet18Aux } = require('../../src/nn') as { ResNet32Aux: new (c: number, cfg?: { seed?: number }) => any; ResNet18Aux?: new (c: number, cfg?: { seed?: number }) => any };
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const Bank = bankMod.MaskedTeacherBank as new (m: any, masks: Map<string, Tensor>, snaps: any[]) => any;
  const snap = bankMod.takeStepSnapshot as (m: any, step: number) => any;
  // ResNet-32 at 32x32; ResNet-18 (7x7/2 stem, max pool, option-B downsample) at 64x64
  for (const [arch, Net, side] of [['resnet32', ResNet32Aux, 32], ...(ResNet18Aux ? [['resnet18', ResNet18Aux, 64]] : [])] as [string, new (c: number, cfg?: { seed?: number }) => any, number][]) {
  const rng = new Rng(11);
  const x = randn(rng, [4, 3, side, side]);
  const build = (device: Device): Float32Array[] => tidy(() => withDevice(device, () => {
    const model = new Net(10, { seed: 3 });
    model.eval();
    const masks = new Map<string, Tensor>();
    const mr = new Rng(12);
    for (const [name, p] of model.namedParameters() as [string, Tensor][])
      if (p.rank === 4) {
        const m = new Uint8Array(p.size);
        for (let i = 0; i < m.length; i++) m[i] = mr.int(3);
        masks.set(name, Tensor.fromArray(m, p.shape));
      }
    const snaps = [snap(model, 1), snap(model, 2)];
    const bank = new Bank(model, masks, snaps);
    try {
      const outs = bank.forward(Tensor.fromArray(x, [4, 3, side, side]), [{ step: 1, start: 0, end: 10 }, { step: 2, start: 0, end: 10 }]);
      return outs.flatMap((o: any) => [o.main.toFloat32(), o.aux.toFloat32()]);
    } finally {
      bank.dispose();
      model.dispose();
    }
  }));
  const cpu = build('cpu');
  let gpu: Float32Array[];
  try {
    gpu = build('cuda');
  } catch (e) {
    const msg = (e as Error).message;
    // the bank's masked conv has no CUDA dispatch yet: a known gap (docs/cuda.md, "Hook for the
    // teacher bank"), reported as TODO rather than hidden; any other error fails
    if (/has no kernel there|device mismatch/.test(msg)) t.fail(`teacher bank on cuda: ${msg}`, { todo: 'maskedConv2d -> masked_conv_forward_cuda hook' });
    else t.fail(`teacher bank on cuda (${arch}): ${msg}`);
    return;
  }
  cpu.forEach((v, i) => close(t, gpu[i], v, { atol: 1e-3, rtol: 1e-3 }, `teacher bank output ${i} (${arch})`));
  }
});
