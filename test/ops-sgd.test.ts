// The sgd op (PyTorch's update rule with momentum and weight decay; freeze masks that keep exact
// bits over 100 steps) at every SIMD level, applied through the SGD optimiser.
import t from 'tap';
import { Tensor, Rng, availableSimdLevels, setSimd } from '../src/engine';
import { SGD } from '../src/optim';

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

