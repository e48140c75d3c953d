// Losses: sigmoid BCE with logits (soft targets, denominator option) and softmax cross-entropy
// (i32 labels, mean over rows). Forward and gradients against the reference, stability at
// logits of +-1e4, finite-difference gradients, and NaN logits rejected with an Error naming
// the op — at every SIMD level.
import t from 'tap';
import { Rng, Tensor, ops, backward } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, uniform, tensor, close, Test, prod } from './helpers';
import { gradcheck } from './gradcheck';

const bceShapes = [[4, 7], [1, 1], [3, 17], [33, 10], [2, 1003]];

function labelsFor(rng: Rng, n: number, m: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(m));
}

/** Value and logits-gradient of a loss built by f, via the engine. */
function lossAndGrad(f: (x: Tensor) => Tensor, x: Float32Array, shape: number[]): { v: number; g: Float32Array } {
  const xt = tensor(x, shape, true);
  const l = f(xt);
  const v = l.item();
  backward(l);
  const g = xt.grad!.toFloat32();
  xt.grad!.dispose();
  return { v, g };
}

t.test('bceWithLogits forward and gradient vs reference', async (t) => {
  eachSimd(t, 'bce', (tt: Test) => {
    const rng = new Rng(41);
    for (const s of bceShapes) {
      const x = randn(rng, s, 3), tg = uniform(rng, s);
      const T = tensor(tg, s);
      for (const denom of [undefined, s[0] * 100]) {
        const tag = `bce [${s}]${denom ? ` denominator ${denom}` : ''}`;
        const r = lossAndGrad((xt) => ops.bceWithLogits(xt, T, denom ? { denominator: denom } : {}), x, s);
        close(tt, [r.v], [ref.bceWithLogits(x, tg, denom ?? prod(s))], { atol: 1e-6, rtol: 1e-5 }, `${tag}: loss`);
        close(tt, r.g, ref.bceWithLogitsGrad(x, tg, denom ?? prod(s)), { atol: 1e-8, rtol: 1e-4 }, `${tag}: dlogits`);
      }
    }
  });
});

t.test('bceWithLogits with huge logits stays finite and correct', async (t) => {
  eachSimd(t, 'bce huge', (tt: Test) => {
    const x = new Float32Array([1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 88.8, -88.8, 200, -200, 0, 1e-6]);
    const tg = new Float32Array([1, 0, 0, 1, 0.5, 0.5, 1, 0, 0.3, 0.7, 0.5, 0.25]);
    const s = [2, 6];
    const r = lossAndGrad((xt) => ops.bceWithLogits(xt, tensor(tg, s)), x, s);
    tt.ok(Number.isFinite(r.v), `loss is finite: ${r.v}`);
    close(tt, [r.v], [ref.bceWithLogits(x, tg)], { atol: 1e-4, rtol: 1e-5 }, 'loss at +-1e4');
    tt.ok(r.g.every(Number.isFinite), 'gradient is finite');
    close(tt, r.g, ref.bceWithLogitsGrad(x, tg), { atol: 1e-7, rtol: 1e-4 }, 'gradient at +-1e4');
    // exactly right where the target agrees: loss ~ 0
    const ok = lossAndGrad((xt) => ops.bceWithLogits(xt, tensor(new Float32Array([1, 0]), [1, 2])), new Float32Array([1e4, -1e4]), [1, 2]);
    close(tt, [ok.v], [0], { atol: 1e-30, rtol: 0 }, 'confident and right: loss 0');
  });
});

t.test('bceWithLogits gradients (finite differences)', async (t) => {
  eachSimd(t, 'bce gradcheck', (tt: Test) => {
    const rng = new Rng(42);
    for (const s of [[2, 3], [1, 1], [3, 17]]) {
      const tg = uniform(rng, s);
      for (const denom of [undefined, 50]) {
        gradcheck(tt, `bce [${s}] denominator ${denom ?? 'default'}`, (xs) => ops.bceWithLogits(xs[0], xs[1], denom ? { denominator: denom } : {}), [
          { data: randn(rng, s, 2), shape: s },
          { data: tg, shape: s, requiresGrad: false },
        ]);
      }
    }
  });
});

t.test('softmaxCrossEntropy forward and gradient vs reference', async (t) => {
  eachSimd(t, 'softmax ce', (tt: Test) => {
    const rng = new Rng(43);
    for (const [n, m] of [[5, 7], [1, 1], [3, 17], [64, 100], [2, 1003], [7, 2]]) {
      const x = randn(rng, [n, m], 3), lab = labelsFor(rng, n, m);
      const L = Tensor.fromArray(lab, [n]);
      const r = lossAndGrad((xt) => ops.softmaxCrossEntropy(xt, L), x, [n, m]);
      close(tt, [r.v], [ref.softmaxCrossEntropy(x, n, m, lab)], { atol: 1e-6, rtol: 1e-5 }, `ce [${n},${m}]: loss`);
      close(tt, r.g, ref.softmaxCrossEntropyGrad(x, n, m, lab), { atol: 1e-7, rtol: 1e-4 }, `ce [${n},${m}]: dlogits`);
    }
  });
});

t.test('softmaxCrossEntropy is stable for logits of 1e4', async (t) => {
  eachSimd(t, 'softmax ce huge', (tt: Test) => {
    const n = 4, m = 3;
    const x = new Float32Array([1e4, 0, -1e4, 1e4, 1e4 - 1, 1e4 - 2, -1e4, -1e4, -1e4, 1e4, -1e4, 5e3]);
    const lab = new Int32Array([2, 1, 0, 0]);
    const r = lossAndGrad((xt) => ops.softmaxCrossEntropy(xt, Tensor.fromArray(lab, [n])), x, [n, m]);
    tt.ok(Number.isFinite(r.v), `loss is finite: ${r.v}`);
    close(tt, [r.v], [ref.softmaxCrossEntropy(x, n, m, lab)], { atol: 1e-3, rtol: 1e-5 }, 'loss at 1e4');
    tt.ok(r.g.every(Number.isFinite), 'gradient is finite');
    close(tt, r.g, ref.softmaxCrossEntropyGrad(x, n, m, lab), { atol: 1e-6, rtol: 1e-4 }, 'gradient at 1e4');
  });
});

t.test('softmaxCrossEntropy gradients (finite differences)', async (t) => {
  eachSimd(t, 'softmax ce gradcheck', (tt: Test) => {
    const rng = new Rng(44);
    for (const [n, m] of [[3, 4], [1, 1], [1, 5], [2, 17]]) {
      const lab = labelsFor(rng, n, m);
      gradcheck(tt, `ce [${n},${m}]`, (xs) => ops.softmaxCrossEntropy(xs[0], xs[1]), [
        { data: randn(rng, [n, m], 2), shape: [n, m] },
        { data: new Float32Array(0), i32: lab, shape: [n], requiresGrad: false },
      ]);
    }
  });
});

t.test('NaN logits: an Error that names the op, and the process goes on', async (t) => {
  eachSimd(t, 'loss NaN', (tt: Test) => {
    const x = new Float32Array([0.5, NaN, -1, 2]);
    tt.throws(() => ops.bceWithLogits(tensor(x, [2, 2]), tensor(new Float32Array(4).fill(0.5), [2, 2])), /bceWithLogits/, 'bce with a NaN logit');
    tt.throws(() => ops.softmaxCrossEntropy(tensor(x, [2, 2]), Tensor.fromArray(new Int32Array([0, 1]), [2])), /softmaxCrossEntropy/, 'softmax CE with a NaN logit');
    tt.throws(() => ops.bceWithLogits(tensor(new Float32Array([1, 2]), [1, 2]), tensor(new Float32Array([NaN, 0]), [1, 2])), /bceWithLogits/, 'bce with a NaN target');
    tt.throws(() => ops.softmaxCrossEntropy(tensor(new Float32Array([Infinity, 0]), [1, 2]), Tensor.fromArray(new Int32Array([1]), [1])), /softmaxCrossEntropy/, 'softmax CE with an Inf logit');
    // still working afterwards
    const v = ops.bceWithLogits(tensor(new Float32Array([0]), [1, 1]), tensor(new Float32Array([0.5]), [1, 1])).item();
    close(tt, [v], [Math.LN2], { atol: 1e-6, rtol: 1e-6 }, 'a good call after the errors');
  });
});

t.test('device-resident BCE entry points (CPU twin): the loss written to a buffer and the backward scaled by a buffer equal the value path', async (t) => {
  // bce_logits_forward_out / bce_logits_backward_dy are what bceWithLogits calls for device
  // tensors (no value read back); on the CPU they must give the number-returning path's bits
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { native } = require('../src/native') as typeof import('../src/native');
  const rng = new Rng(77);
  for (const [n, m] of bceShapes) {
    const x = Tensor.fromArray(randn(rng, [n, m]), [n, m]);
    const tg = Tensor.fromArray(uniform(rng, [n, m]), [n, m]);
    const denom = n * 10;
    const v = native.bce_logits_forward(x.handle, tg.handle, n * m, denom);
    const y = Tensor.zeros([]);
    native.bce_logits_forward_out(x.handle, tg.handle, y.handle, n * m, denom);
    t.equal(y.item(), Math.fround(v), `[${n},${m}]: stored loss = the returned value as f32`);
    const dy = Tensor.fromArray(new Float32Array([0.75]), []);
    const g1 = Tensor.zeros([n, m]), g2 = Tensor.zeros([n, m]);
    native.bce_logits_backward(x.handle, tg.handle, g1.handle, n * m, 0.75 / denom);
    native.bce_logits_backward_dy(x.handle, tg.handle, dy.handle, g2.handle, n * m, denom);
    t.same(g2.toFloat32(), g1.toFloat32(), `[${n},${m}]: gradient scaled by dy[0] / denom from the buffer`);
    t.throws(() => native.bce_logits_forward_out(x.handle, tg.handle, y.handle, n * m, 0), /denominator must be > 0/);
    for (const z of [x, tg, y, dy, g1, g2]) z.dispose();
  }
});
