// The fused masked convolution against K separate masked dense convolutions (float64 reference,
// weights outside [1, steps[k]] zeroed) followed by the folded BatchNorm, residual and ReLU, at
// every SIMD level: shared and per-model inputs, stride 1 and 2, 8x8 / 16x16 / 32x32 planes
// (both tap layouts), odd sizes, step 0 and repeated steps, plan reuse; and bad input.
import t from 'tap';
import { Rng, Tensor, ops, noGrad } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, close, prod, Test } from './helpers';

interface Case {
  K: number;
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  stride: number;
  pad: number;
  shared: boolean;
  residual: boolean;
  relu: boolean;
  steps: number[];
}

/** Masks with steps 1..T and zeros, owned weights chosen at random per step. */
function randomMask(rng: Rng, size: number, T: number, ownFrac = 0.4): Uint8Array {
  const m = new Uint8Array(size);
  const u = rng.uniform(size * T);
  for (let s = 1; s <= T; s++) for (let i = 0; i < size; i++) if (m[i] === 0 && u[(s - 1) * size + i] < ownFrac) m[i] = s;
  return m;
}

function caseName(c: Case): string {
  return `K${c.K} x[${c.n},${c.c},${c.h},${c.w}] w[${c.o},${c.c},${c.k},${c.k}] s${c.stride} p${c.pad}${c.shared ? ' shared' : ''}${c.residual ? ' res' : ''}${c.relu ? ' relu' : ''} steps ${c.steps}`;
}

function reference(c: Case, x: Float32Array, w: Float32Array, m: Uint8Array, sc: Float32Array, sh: Float32Array, res: Float32Array | null): Float64Array {
  const oh = ref.outSize(c.h, c.k, c.stride, c.pad), ow = ref.outSize(c.w, c.k, c.stride, c.pad);
  const per = c.n * c.o * oh * ow, inPer = c.n * c.c * c.h * c.w;
  const y = new Float64Array(c.K * per);
  for (let k = 0; k < c.K; k++) {
    const wk = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) wk[i] = m[i] >= 1 && m[i] <= c.steps[k] ? w[i] : 0;
    const xk = c.shared ? x : x.subarray(k * inPer, (k + 1) * inPer);
    const conv = ref.conv2d(xk, [c.n, c.c, c.h, c.w], wk, [c.o, c.c, c.k, c.k], null, c.stride, c.pad).y;
    for (let i = 0; i < per; i++) {
      const o = Math.floor(i / (oh * ow)) % c.o;
      let v = conv[i] * sc[k * c.o + o] + sh[k * c.o + o];
      if (res) v += res[k * per + i];
      if (c.relu && v < 0) v = 0;
      y[k * per + i] = v;
    }
  }
  return y;
}

function check(tt: Test, c: Case, rng: Rng, plan = false): void {
  const xShape = c.shared ? [c.n, c.c, c.h, c.w] : [c.K, c.n, c.c, c.h, c.w];
  const wShape = [c.o, c.c, c.k, c.k];
  const oh = ref.outSize(c.h, c.k, c.stride, c.pad), ow = ref.outSize(c.w, c.k, c.stride, c.pad);
  const yShape = [c.K, c.n, c.o, oh, ow];
  const xd = randn(rng, xShape), wd = randn(rng, wShape, 0.5);
  const md = randomMask(rng, prod(wShape), Math.max(1, ...c.steps));
  const scd = rng.uniform(c.K * c.o, 0.5, 1.5), shd = randn(rng, [c.K, c.o], 0.3);
  const resd = c.residual ? randn(rng, yShape) : null;
  const w = Tensor.fromArray(wd, wShape), mask = Tensor.fromArray(md, wShape);
  const p = plan ? new ops.MaskedConvPlan(w, mask) : undefined;
  const y = ops.maskedConv2d(Tensor.fromArray(xd, xShape), w, mask, c.steps, {
    stride: c.stride,
    padding: c.pad,
    scale: Tensor.fromArray(scd, [c.K, c.o]),
    shift: Tensor.fromArray(shd, [c.K, c.o]),
    residual: resd ? Tensor.fromArray(resd, yShape) : null,
    relu: c.relu,
    sharedInput: c.shared,
    plan: p,
  });
  tt.same([...y.shape], yShape, `${caseName(c)}: shape`);
  const want = reference(c, xd, wd, md, scd, shd, resd);
  const k = c.c * c.k * c.k;
  close(tt, y.toFloat32(), want, { atol: 3e-6 * k + 1e-5, rtol: 1e-5 }, `${caseName(c)}${plan ? ' (plan)' : ''}`);
  p?.dispose();
}

const cases: Case[] = [
  // first layer: one input shared by every model (prefix sums over steps)
  { K: 3, n: 2, c: 3, h: 8, w: 8, o: 5, k: 3, stride: 1, pad: 1, shared: true, residual: false, relu: true, steps: [1, 2, 3] },
  { K: 4, n: 2, c: 3, h: 32, w: 32, o: 16, k: 3, stride: 1, pad: 1, shared: true, residual: false, relu: true, steps: [3, 1, 2, 2] },
  { K: 2, n: 3, c: 2, h: 7, w: 9, o: 3, k: 3, stride: 2, pad: 1, shared: true, residual: true, relu: false, steps: [0, 2] },
  // per-model inputs, ResNet-32 shapes (narrow 8-wide planes use the per-tap layout)
  { K: 2, n: 2, c: 16, h: 32, w: 32, o: 16, k: 3, stride: 1, pad: 1, shared: false, residual: true, relu: true, steps: [1, 3] },
  { K: 3, n: 2, c: 16, h: 32, w: 32, o: 32, k: 3, stride: 2, pad: 1, shared: false, residual: false, relu: true, steps: [1, 2, 3] },
  { K: 2, n: 3, c: 32, h: 16, w: 16, o: 32, k: 3, stride: 1, pad: 1, shared: false, residual: true, relu: true, steps: [2, 1] },
  { K: 2, n: 5, c: 32, h: 16, w: 16, o: 64, k: 3, stride: 2, pad: 1, shared: false, residual: false, relu: true, steps: [1, 2] },
  { K: 3, n: 5, c: 16, h: 8, w: 8, o: 24, k: 3, stride: 1, pad: 1, shared: false, residual: true, relu: true, steps: [1, 2, 3] },
  // odd shapes, 1x1 and 5x5 kernels, no padding, step 0 (no weights: shift only), repeated steps
  { K: 2, n: 3, c: 4, h: 9, w: 7, o: 5, k: 3, stride: 2, pad: 1, shared: false, residual: false, relu: false, steps: [2, 2] },
  { K: 3, n: 2, c: 5, h: 6, w: 6, o: 3, k: 1, stride: 1, pad: 0, shared: false, residual: true, relu: false, steps: [0, 1, 4] },
  { K: 1, n: 2, c: 3, h: 11, w: 13, o: 4, k: 5, stride: 3, pad: 2, shared: true, residual: false, relu: true, steps: [2] },
  { K: 2, n: 1, c: 2, h: 1, w: 1, o: 2, k: 3, stride: 1, pad: 1, shared: false, residual: false, relu: true, steps: [1, 2] },
];

t.test('maskedConv2d equals K separate masked convolutions + folded BN, residual, ReLU', async (t) => {
  eachSimd(t, 'maskedConv2d', (tt) => {
    const rng = new Rng(11);
    for (const c of cases) check(tt, c, rng);
    check(tt, cases[3], rng, true);
    check(tt, cases[1], rng, true);
  });
});

/** Block masks: one value per block of B output channels at each (input channel, tap). */
function blockMask(m: Uint8Array, o: number, ckk: number, B: number): Uint8Array {
  const out = new Uint8Array(m.length);
  for (let o0 = 0; o0 < o; o0 += B)
    for (let t = 0; t < ckk; t++) for (let oc = o0; oc < Math.min(o, o0 + B); oc++) out[oc * ckk + t] = m[o0 * ckk + t];
  return out;
}

t.test('maskedConv2d with block masks (B = 4, 8, 16) and every plan tuning', async (t) => {
  eachSimd(t, 'maskedConv2d blocks', (tt) => {
    const rng = new Rng(5);
    for (const B of [4, 8, 16])
      for (const denseAbove of [undefined, 0, 2]) {
        const c: Case = { K: 3, n: 3, c: 8, h: 8, w: 8, o: 20, k: 3, stride: 1, pad: 1, shared: false, residual: true, relu: true, steps: [1, 3, 2] };
        const wShape = [c.o, c.c, 3, 3], yShape = [c.K, c.n, c.o, 8, 8];
        const xd = randn(rng, [c.K, c.n, c.c, 8, 8]), wd = randn(rng, wShape, 0.5);
        const md = blockMask(randomMask(rng, prod(wShape), 3), c.o, c.c * 9, B);
        const scd = rng.uniform(c.K * c.o, 0.5, 1.5), shd = randn(rng, [c.K, c.o], 0.3), resd = randn(rng, yShape);
        const w = Tensor.fromArray(wd, wShape), mask = Tensor.fromArray(md, wShape);
        const plan = new ops.MaskedConvPlan(w, mask, { denseAbove });
        const y = ops.maskedConv2d(Tensor.fromArray(xd, [c.K, c.n, c.c, 8, 8]), w, mask, c.steps, {
          stride: 1, padding: 1, scale: Tensor.fromArray(scd, [c.K, c.o]), shift: Tensor.fromArray(shd, [c.K, c.o]),
          residual: Tensor.fromArray(resd, yShape), relu: true, plan,
        });
        close(tt, y.toFloat32(), reference(c, xd, wd, md, scd, shd, resd), { atol: 3e-6 * 72 + 1e-5, rtol: 1e-5 }, `B=${B} denseAbove=${denseAbove}`);
        plan.dispose();
      }
  });
});

/** NCHW [k][n][c][h][w] from a blocked tensor ([k][nb][h+2p][w+2p][c][V]); checks the zero ring/lanes. */
function unblock(tt: Test, b: ops.MaskedBlocked): Float32Array {
  const d = b.data.toFloat32(), V = b.lanes, nb = Math.ceil(b.n / V), Hp = b.h + 2 * b.pad, Wp = b.w + 2 * b.pad;
  const out = new Float32Array(b.k * b.n * b.c * b.h * b.w);
  let dirty = 0;
  for (let m = 0; m < b.k; m++)
    for (let bi = 0; bi < nb; bi++)
      for (let r = 0; r < Hp; r++)
        for (let q = 0; q < Wp; q++)
          for (let ci = 0; ci < b.c; ci++)
            for (let v = 0; v < V; v++) {
              const val = d[((((m * nb + bi) * Hp + r) * Wp + q) * b.c + ci) * V + v];
              const i = bi * V + v, rr = r - b.pad, qq = q - b.pad;
              if (i < b.n && rr >= 0 && rr < b.h && qq >= 0 && qq < b.w) out[(((m * b.n + i) * b.c + ci) * b.h + rr) * b.w + qq] = val;
              else if (val !== 0) dirty++;
            }
  tt.equal(dirty, 0, 'padding ring and missing images hold 0');
  return out;
}

t.test('blocked layout: a chain of maskedConv2dBlocked, shortcut and pool equals the NCHW ops', async (t) => {
  eachSimd(t, 'blocked chain', (tt) => {
    const rng = new Rng(9);
    const K = 2, n = 5, steps = Int32Array.from([1, 2]);
    const mk = (o: number, c: number) => {
      const w = Tensor.fromArray(randn(rng, [o, c, 3, 3], 0.4), [o, c, 3, 3]);
      const mask = Tensor.fromArray(randomMask(rng, o * c * 9, 2), [o, c, 3, 3]);
      return { w, mask, plan: new ops.MaskedConvPlan(w, mask) };
    };
    const bn = (o: number) => ({ scale: Tensor.fromArray(rng.uniform(K * o, 0.5, 1.5), [K, o]), shift: Tensor.fromArray(randn(rng, [K, o], 0.3), [K, o]) });
    const stem = mk(8, 3), c1 = mk(16, 8), c2 = mk(16, 16);
    const b0 = bn(8), b1 = bn(16), b2 = bn(16);
    const x = Tensor.fromArray(randn(rng, [n, 3, 12, 12]), [n, 3, 12, 12]);
    noGrad(() => {
      // NCHW reference chain through maskedConv2d and the engine's shortcut / pool
      const h0 = ops.maskedConv2d(x, stem.w, stem.mask, steps, { padding: 1, ...b0, relu: true, sharedInput: true });
      const a = ops.maskedConv2d(h0, c1.w, c1.mask, steps, { stride: 2, padding: 1, ...b1, relu: true });
      const sc = ops.reshape(ops.shortcutA(ops.reshape(h0, [K * n, 8, 12, 12]), 2, 4, 4), [K, n, 16, 6, 6]);
      const h1 = ops.maskedConv2d(a, c2.w, c2.mask, steps, { padding: 1, ...b2, relu: true, residual: sc });
      const pool = ops.globalAvgPool(ops.reshape(h1, [K * n, 16, 6, 6]));
      // the same chain in the blocked layout
      const g0 = ops.maskedConv2dBlocked(x, steps, { padding: 1, ...b0, relu: true, plan: stem.plan });
      close(tt, unblock(tt, g0), h0.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, 'stem (shared NCHW in, blocked out)');
      const ga = ops.maskedConv2dBlocked(g0, steps, { stride: 2, padding: 1, ...b1, relu: true, plan: c1.plan });
      close(tt, unblock(tt, ga), a.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, 'stride-2 conv (blocked in and out)');
      const gs = ops.maskedShortcutABlocked(g0, 2, 4, 4);
      close(tt, unblock(tt, gs), sc.toFloat32(), { atol: 0, rtol: 0 }, 'option-A shortcut');
      const g1 = ops.maskedConv2dBlocked(ga, steps, { padding: 1, ...b2, relu: true, residual: gs, plan: c2.plan });
      close(tt, unblock(tt, g1), h1.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, 'conv with blocked residual');
      const gp = ops.maskedAvgPoolBlocked(g1);
      tt.same([...gp.shape], [K * n, 16], 'pool shape');
      close(tt, gp.toFloat32(), pool.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, 'average pool');
      const g0p0 = ops.maskedConv2dBlocked(x, steps, { padding: 1, ...b0, relu: true, plan: stem.plan, outPad: 0 });
      tt.throws(() => ops.maskedConv2dBlocked(g0p0, steps, { padding: 1, ...b1, plan: c1.plan }), /stored with padding 0 but the conv pads 1/);
      g0p0.dispose();
      tt.throws(() => ops.maskedConv2dBlocked(g0, Int32Array.from([1]), { padding: 1, ...b1, plan: c1.plan }), /scale must have shape \[1,16\]/);
      tt.throws(() => ops.maskedConv2dBlocked(ga, steps, { padding: 1, ...b2, residual: g0, plan: c2.plan }), /residual must be blocked \[2,5,16,6,6\] pad 1/);
      for (const b of [g0, ga, gs, g1]) b.dispose();
      tt.throws(() => ops.maskedAvgPoolBlocked(g1), /must be a live MaskedBlocked/);
    });
    for (const l of [stem, c1, c2]) l.plan.dispose();
  });
});

t.test('blocked layout: ResNet-18 shapes (7x7 s2 stem, max pool, 1x1 s2 option-B downsample) equal the NCHW ops', async (t) => {
  eachSimd(t, 'blocked ResNet-18 chain', (tt) => {
    const rng = new Rng(21);
    const K = 3, n = 5, steps = Int32Array.from([1, 3, 2]);
    const mk = (o: number, c: number, k: number) => {
      const w = Tensor.fromArray(randn(rng, [o, c, k, k], 0.3), [o, c, k, k]);
      const mask = Tensor.fromArray(randomMask(rng, o * c * k * k, 3), [o, c, k, k]);
      return { w, mask, plan: new ops.MaskedConvPlan(w, mask) };
    };
    const bn = (o: number) => ({ scale: Tensor.fromArray(rng.uniform(K * o, 0.5, 1.5), [K, o]), shift: Tensor.fromArray(randn(rng, [K, o], 0.3), [K, o]) });
    const stem = mk(8, 3, 7), c1 = mk(12, 8, 3), c2 = mk(12, 12, 3), ds = mk(12, 8, 1);
    const b0 = bn(8), b1 = bn(12), b2 = bn(12), bd = bn(12);
    const x = Tensor.fromArray(randn(rng, [n, 3, 30, 30]), [n, 3, 30, 30]);
    noGrad(() => {
      // NCHW reference: stem 7x7/2 pad 3 + BN + ReLU, max pool 3/2/1, then a stride-2 basic block
      // with the option-B shortcut (1x1/2 conv + BN, no ReLU) added before the second ReLU
      const h0 = ops.maskedConv2d(x, stem.w, stem.mask, steps, { stride: 2, padding: 3, ...b0, relu: true, sharedInput: true });
      const [, , C0, H0, W0] = h0.shape;
      const p = ops.maxPool2d(ops.reshape(h0, [K * n, C0, H0, W0]), 3, 2, 1);
      const p5 = ops.reshape(p, [K, n, ...p.shape.slice(1)]);
      const a = ops.maskedConv2d(p5, c1.w, c1.mask, steps, { stride: 2, padding: 1, ...b1, relu: true });
      const sc = ops.maskedConv2d(p5, ds.w, ds.mask, steps, { stride: 2, padding: 0, ...bd, relu: false });
      const h1 = ops.maskedConv2d(a, c2.w, c2.mask, steps, { padding: 1, ...b2, relu: true, residual: sc });
      // blocked
      const g0 = ops.maskedConv2dBlocked(x, steps, { stride: 2, padding: 3, ...b0, relu: true, plan: stem.plan });
      close(tt, unblock(tt, g0), h0.toFloat32(), { atol: 2e-5, rtol: 1e-5 }, '7x7 stride-2 stem (shared NCHW in)');
      const gp = ops.maskedMaxPoolBlocked(g0, 3, 2, 1);
      close(tt, unblock(tt, gp), p.toFloat32(), { atol: 0, rtol: 0 }, 'max pool 3/2/1');
      const ga = ops.maskedConv2dBlocked(gp, steps, { stride: 2, padding: 1, ...b1, relu: true, plan: c1.plan });
      close(tt, unblock(tt, ga), a.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, '3x3 stride-2 conv');
      const gs = ops.maskedConv2dBlocked(gp, steps, { stride: 2, padding: 0, ...bd, relu: false, plan: ds.plan });
      close(tt, unblock(tt, gs), sc.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, '1x1 stride-2 downsample reading a pad-1 input (folded BN, no ReLU)');
      const g1 = ops.maskedConv2dBlocked(ga, steps, { padding: 1, ...b2, relu: true, residual: gs, plan: c2.plan });
      close(tt, unblock(tt, g1), h1.toFloat32(), { atol: 1e-5, rtol: 1e-5 }, 'option-B shortcut added in the epilogue');
      // max pool with -inf padding semantics on signed values (not only after a ReLU)
      const gn = ops.maskedConv2dBlocked(x, steps, { stride: 2, padding: 3, ...b0, relu: false, plan: stem.plan });
      const hn = ops.maskedConv2d(x, stem.w, stem.mask, steps, { stride: 2, padding: 3, ...b0, relu: false, sharedInput: true });
      const pn = ops.maxPool2d(ops.reshape(hn, [K * n, C0, H0, W0]), 3, 2, 1);
      const gpn = ops.maskedMaxPoolBlocked(gn, 3, 2, 1, 0);
      close(tt, unblock(tt, gpn), pn.toFloat32(), { atol: 0, rtol: 0 }, 'max pool of signed values, outPad 0');
      tt.throws(() => ops.maskedMaxPoolBlocked(g0, 3, 2, 3), /pad 3 must be smaller than the kernel 3/);
      tt.throws(() => ops.maskedMaxPoolBlocked(g0, 0, 2, 0), /kernel must be an integer >= 1/);
      for (const b of [g0, gp, ga, gs, g1, gn, gpn]) b.dispose();
      tt.throws(() => ops.maskedMaxPoolBlocked(g0, 3, 2, 1), /must be a live MaskedBlocked/);
    });
    for (const l of [stem, c1, c2, ds]) l.plan.dispose();
  });
});

t.test('maskedConv2d equals the engine dense conv + eval batch norm on masked weights', async (t) => {
  const rng = new Rng(5);
  const K = 3, n = 2, c = 8, h = 10, o = 6;
  const xd = randn(rng, [K, n, c, h, h]), wd = randn(rng, [o, c, 3, 3], 0.4);
  const md = randomMask(rng, wd.length, 3);
  const gamma = rng.uniform(K * o, 0.5, 1.5), beta = randn(rng, [K, o], 0.2), mean = randn(rng, [K, o], 0.2), vr = rng.uniform(K * o, 0.5, 2);
  const sc = new Float32Array(K * o), sh = new Float32Array(K * o);
  for (let i = 0; i < K * o; i++) {
    sc[i] = gamma[i] / Math.sqrt(vr[i] + 1e-5);
    sh[i] = beta[i] - mean[i] * sc[i];
  }
  const steps = [1, 2, 3];
  const y = noGrad(() =>
    ops.maskedConv2d(Tensor.fromArray(xd, [K, n, c, h, h]), Tensor.fromArray(wd, [o, c, 3, 3]), Tensor.fromArray(md, [o, c, 3, 3]), steps, {
      stride: 1,
      padding: 1,
      scale: Tensor.fromArray(sc, [K, o]),
      shift: Tensor.fromArray(sh, [K, o]),
      relu: true,
    }),
  ).toFloat32();
  const per = n * o * h * h;
  for (let k = 0; k < K; k++) {
    const wk = wd.map((v, i) => (md[i] >= 1 && md[i] <= steps[k] ? v : 0));
    const xk = Tensor.fromArray(xd.slice(k * n * c * h * h, (k + 1) * n * c * h * h), [n, c, h, h]);
    const z = ops.conv2d(xk, Tensor.fromArray(wk, [o, c, 3, 3]), null, { stride: 1, padding: 1 });
    const sl = (a: Float32Array) => Tensor.fromArray(a.slice(k * o, (k + 1) * o), [o]);
    const want = ops.batchNorm2d(z, sl(gamma), sl(beta), sl(mean), sl(vr), { training: false, eps: 1e-5, relu: true });
    close(t, y.subarray(k * per, (k + 1) * per), want.toFloat32(), { atol: 2e-5, rtol: 1e-5 }, `model ${k} (step ${steps[k]})`);
  }
});

t.test('maskedConv2d: bad input is a clear error', async (t) => {
  const rng = new Rng(3);
  const K = 2;
  const x = Tensor.fromArray(randn(rng, [K, 1, 2, 5, 5]), [K, 1, 2, 5, 5]);
  const w = Tensor.fromArray(randn(rng, [3, 2, 3, 3]), [3, 2, 3, 3]);
  const mask = Tensor.fromArray(randomMask(rng, 54, 2), [3, 2, 3, 3]);
  const scale = Tensor.full([K, 3], 1), shift = Tensor.zeros([K, 3]);
  const base = { stride: 1, padding: 1, scale, shift };
  t.throws(() => ops.maskedConv2d(x, w, Tensor.zeros([3, 2, 3, 3]), [1, 2], base), /maskedConv2d: expected dtype u8/);
  t.throws(() => ops.maskedConv2d(x, w, Tensor.fromArray(new Uint8Array(27), [3, 1, 3, 3]), [1, 2], base), /mask must have the weight's shape/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1], base), /input holds 2 models but steps has 1/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [], base), /steps is empty/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 256], base), /steps\[1\] = 256/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 1.5], base), /steps\[1\] = 1.5/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 2], { ...base, scale: Tensor.full([K, 4], 1) }), /scale must have shape \[2,3\]/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 2], { ...base, shift: Tensor.zeros([3]) }), /shift must have shape \[2,3\]/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 2], { ...base, residual: Tensor.zeros([K, 1, 3, 4, 5]) }), /residual must have shape \[2,1,3,5,5\]/);
  t.throws(() => ops.maskedConv2d(Tensor.zeros([K, 1, 3, 5, 5]), w, mask, [1, 2], base), /input has 3 channels but the weight expects 2/);
  t.throws(() => ops.maskedConv2d(Tensor.zeros([1, 2, 5, 5]), w, mask, [1, 2], base), /input must have rank 5/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 2], { ...base, sharedInput: true }), /shared input must have rank 4/);
  t.throws(() => ops.maskedConv2d(Tensor.zeros([K, 1, 2, 1, 1]), w, mask, [1, 2], { ...base, padding: 0 }), /kernel larger than the padded input/);
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 2], { ...base, stride: 0 }), /stride must be an integer >= 1/);
  const wg = Tensor.fromArray(randn(rng, [3, 2, 3, 3]), [3, 2, 3, 3], { requiresGrad: true });
  t.throws(() => ops.maskedConv2d(x, wg, mask, [1, 2], base), /inference only/);
  t.doesNotThrow(() => noGrad(() => ops.maskedConv2d(x, wg, mask, [1, 2], base)), 'fine under noGrad');
  const plan = new ops.MaskedConvPlan(w, mask);
  t.throws(() => ops.maskedConv2d(x, Tensor.zeros([4, 2, 3, 3]), Tensor.fromArray(new Uint8Array(72), [4, 2, 3, 3]), [1, 2], { ...base, scale: Tensor.full([K, 4], 1), shift: Tensor.zeros([K, 4]), plan }), /plan was built for a weight \[3,2,3,3\]/);
  plan.dispose();
  t.throws(() => ops.maskedConv2d(x, w, mask, [1, 2], { ...base, plan }), /plan was disposed/);
  t.throws(() => new ops.MaskedConvPlan(w, Tensor.fromArray(new Uint8Array(18), [3, 2, 3, 1])), /MaskedConvPlan: mask must have the weight's shape/);
  // the native layer checks too (direct addon call with a bad steps array)
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { native } = require('../src/native') as typeof import('../src/native');
  const p2 = new ops.MaskedConvPlan(w, mask);
  const y = Tensor.empty([K, 1, 3, 5, 5]);
  t.throws(() => native.masked_conv_forward(p2.handle, x.handle, new Int32Array([1]), scale.handle, shift.handle, -1, y.handle, K, 1, 2, 5, 5, 3, 3, 3, 1, 1, false, false), /masked_conv_forward.*steps has 1 entries, expected K=2/);
  t.throws(() => native.masked_conv_forward(p2.handle, x.handle, [1, 2], scale.handle, shift.handle, -1, y.handle, K, 1, 2, 5, 5, 3, 3, 3, 1, 1, false, false), /steps' must be an Int32Array/);
  t.throws(() => native.masked_conv_forward(p2.handle, x.handle, new Int32Array([1, 2]), scale.handle, shift.handle, -1, y.handle, K, 1, 2, 5, 5, 4, 3, 3, 1, 1, false, false), /masked_conv_forward/);
  p2.dispose();
});

// The standalone kernel workbench (kernels/cpu/workbench/masked_conv_wb.cc): the fused kernel
// against a double-precision reference of K separate masked convolutions, at every ISA level,
// for unstructured and block masks (B = 4, 8, 16), every tuning variant (grouped only, dense
// only, 1-position tiles) and every layout (NCHW / blocked input and output).
t.test('masked conv workbench: build and validate (all ISAs, masks, tunings, layouts)', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { spawnSync } = require('child_process') as typeof import('child_process');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const path = require('path') as typeof import('path');
  const dir = path.resolve(__dirname, '..', '..', 'kernels', 'cpu', 'workbench');
  const b = spawnSync('bash', [path.join(dir, 'build_masked.sh')], { encoding: 'utf8', timeout: 300_000 });
  t.equal(b.status, 0, `build: ${(b.stderr || '').slice(-2000)}`);
  if (b.status !== 0) return;
  const r = spawnSync(path.join(dir, 'masked_conv_wb'), [], { encoding: 'utf8', timeout: 300_000 });
  const lines = (r.stdout || '').split('\n');
  const failed = lines.filter((l) => l.startsWith('not ok'));
  t.equal(r.status, 0, `exit ${r.status}; ${failed.slice(0, 3).join(' | ')}`);
  const m = /# (\d+) passed, (\d+) failed/.exec(r.stdout || '');
  t.ok(m !== null, 'summary line');
  // 12 cases x 4 mask kinds x (4 tunings + 3 layouts) x 3 ISAs
  t.equal(m ? Number(m[1]) : 0, 12 * 4 * 7 * 3, 'every case, mask kind, tuning, layout and ISA level');
  t.equal(m ? Number(m[2]) : -1, 0, 'no failure');
});
