// SGD semantics (PyTorch's update rule), freeze masks that keep exact bits over 100 steps,
// and the multi-step schedule.
import t from 'tap';
import { Tensor, Rng, tidy, availableSimdLevels, setSimd } from '../src/engine';
import { SGD, MultiStepLR } from '../src/optim';

function sgdReference(w: Float64Array, g: Float64Array, buf: Float64Array, lr: number, m: number, wd: number, frozen?: Uint8Array): void {
  for (let i = 0; i < w.length; i++) {
    if (frozen && frozen[i]) continue;
    const gi = g[i] + wd * w[i];
    buf[i] = m * buf[i] + gi;
    w[i] -= lr * buf[i];
  }
}

for (const level of availableSimdLevels()) {
  t.test(`SGD matches the PyTorch rule with momentum and weight decay (${level})`, async (t) => {
    setSimd(level);
    const rng = new Rng(5);
    const n = 37;
    const w0 = rng.normal(n);
    const p = Tensor.fromArray(w0, [n], { requiresGrad: true });
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    const w = Float64Array.from(w0), buf = new Float64Array(n);
    for (let step = 0; step < 5; step++) {
      const g = rng.normal(n);
      p.grad?.dispose();
      p.grad = Tensor.fromArray(g, [n]);
      opt.step();
      sgdReference(w, Float64Array.from(g), buf, 0.1, 0.9, 0.01);
    }
    const got = p.toFloat32();
    let maxErr = 0;
    for (let i = 0; i < n; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - w[i]));
    t.ok(maxErr < 1e-5, `max error ${maxErr}`);
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
  });

  t.test(`frozen weights stay bit-identical over 100 SGD steps (${level})`, async (t) => {
    setSimd(level);
    const rng = new Rng(9);
    const n = 16 * 16 * 3 * 3 + 5;
    const w0 = rng.normal(n);
    const mask = rng.bernoulli(n, 0.5);
    const p = Tensor.fromArray(w0, [n], { requiresGrad: true });
    const m = Tensor.fromArray(mask, [n]);
    const opt = new SGD([p], { lr: 0.5, momentum: 0.9, weightDecay: 0.1 });
    opt.setFrozenMask(p, m);
    for (let step = 0; step < 100; step++) {
      p.grad?.dispose();
      p.grad = Tensor.fromArray(rng.normal(n), [n]);
      opt.step();
    }
    const after = p.toFloat32();
    const bitsBefore = new Uint32Array(w0.buffer), bitsAfter = new Uint32Array(after.buffer);
    let frozenChanged = 0, freeMoved = 0, frozenCount = 0;
    for (let i = 0; i < n; i++) {
      if (mask[i]) {
        frozenCount++;
        if (bitsBefore[i] !== bitsAfter[i]) frozenChanged++;
      } else if (bitsBefore[i] !== bitsAfter[i]) freeMoved++;
    }
    t.equal(frozenChanged, 0, `${frozenCount} frozen weights unchanged`);
    t.ok(freeMoved > (n - frozenCount) * 0.99, 'free weights were updated');
    const mom = opt.momentumBuffers().get(0)!.toFloat32();
    let frozenMomentum = 0;
    for (let i = 0; i < n; i++) if (mask[i] && mom[i] !== 0) frozenMomentum++;
    t.equal(frozenMomentum, 0, 'frozen weights accumulate no momentum');
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
    m.dispose();
  });
}
setSimd(availableSimdLevels().slice(-1)[0]);

t.test('SGD rejects bad hyper-parameters and masks', async (t) => {
  const p = Tensor.zeros([4], { requiresGrad: true });
  t.throws(() => new SGD([p], { lr: NaN }), /lr/);
  t.throws(() => new SGD([p], { lr: 0.1, momentum: 1.5 }), /momentum/);
  const opt = new SGD([p], { lr: 0.1 });
  t.throws(() => opt.setFrozenMask(p, Tensor.zeros([4])), /u8/);
  t.throws(() => opt.setFrozenMask(p, Tensor.zeros([3], { dtype: 'u8' })), /does not match/);
  p.dispose();
});

t.test('MultiStepLR divides at the milestones', async (t) => {
  const p = Tensor.zeros([1], { requiresGrad: true });
  const opt = new SGD([p], { lr: 2.0 });
  const s = new MultiStepLR(opt, [2, 4], 0.2);
  const lrs: number[] = [];
  for (let e = 0; e < 6; e++) {
    lrs.push(+opt.lr.toFixed(6));
    s.step();
  }
  t.same(lrs, [2, 2, 0.4, 0.4, 0.08, 0.08]);
  p.dispose();
});

t.test('tidy keeps parameter gradients and frees the rest', async (t) => {
  const p = Tensor.fromArray(new Float32Array([1, 2, 3]), [3], { requiresGrad: true });
  tidy(() => {
    const { ops } = require('../src/engine') as typeof import('../src/engine');
    ops.sum(ops.scale(p, 2)).backward();
  });
  t.same(Array.from(p.grad!.toFloat32()), [2, 2, 2]);
  p.grad!.dispose();
  p.dispose();
});
