// Memory scopes: tidy disposes intermediates, live native bytes return to their baseline after
// tidy'd forward+backward steps of a small conv/bn/relu net (flat over 50 repetitions), and
// leaf gradients survive tidy.
import t from 'tap';
import { Tensor, Rng, ops, tidy, keep, memory, noGrad } from '../src/engine';

function param(rng: Rng, shape: number[], std: number): Tensor {
  return Tensor.fromArray(rng.normal(shape.reduce((a, b) => a * b, 1), 0, std), shape, { requiresGrad: true });
}

t.test('tidy disposes intermediates and keeps what is returned or kept', async (t) => {
  const base = memory().liveBytes;
  let inner: Tensor | null = null, kept: Tensor | null = null;
  const out = tidy(() => {
    const a = Tensor.full([64], 1);
    inner = ops.relu(a);
    kept = keep(ops.scale(a, 2));
    return { y: ops.add(inner, inner), list: [ops.sum(a)] };
  });
  t.ok(inner!.disposed, 'an intermediate is disposed');
  t.notOk(kept!.disposed, 'a kept tensor survives');
  t.notOk(out.y.disposed, 'a returned tensor survives');
  t.notOk(out.list[0].disposed, 'a tensor returned inside an array survives');
  t.equal(out.list[0].item(), 64);
  out.y.dispose();
  out.list[0].dispose();
  kept!.dispose();
  t.equal(memory().liveBytes, base, 'live bytes back to the baseline');
  // a throwing fn still disposes its tensors
  let leaked: Tensor | null = null;
  t.throws(() =>
    tidy(() => {
      leaked = Tensor.zeros([128]);
      throw new Error('boom');
    }),
  );
  t.ok(leaked!.disposed, 'tensors of a throwing tidy are disposed');
  t.equal(memory().liveBytes, base, 'no leak after a throw');
  // nested scopes: a tensor returned from the inner scope belongs to the outer one
  let mid: Tensor | null = null;
  tidy(() => {
    mid = tidy(() => ops.relu(Tensor.full([8], 1)));
    t.notOk(mid.disposed, 'returned from the inner scope: alive in the outer one');
  });
  t.ok(mid!.disposed, 'disposed when the outer scope ends');
  t.equal(memory().liveBytes, base, 'baseline after nested scopes');
});

t.test('live bytes are flat over 50 tidy forward+backward steps of a conv/bn/relu net', async (t) => {
  const rng = new Rng(61);
  const w1 = param(rng, [8, 3, 3, 3], 0.3), g1 = Tensor.full([8], 1, { requiresGrad: true }), b1 = Tensor.zeros([8], { requiresGrad: true });
  const w2 = param(rng, [8, 8, 3, 3], 0.2), g2 = Tensor.full([8], 1, { requiresGrad: true }), b2 = Tensor.zeros([8], { requiresGrad: true });
  const fc = param(rng, [5, 8], 0.3), fcb = Tensor.zeros([5], { requiresGrad: true });
  const rm = Tensor.zeros([8]), rv = Tensor.full([8], 1);
  const params = [w1, g1, b1, w2, g2, b2, fc, fcb];
  const x = Tensor.fromArray(rng.normal(4 * 3 * 8 * 8), [4, 3, 8, 8]);
  const labels = Tensor.fromArray(new Int32Array([0, 1, 2, 4]), [4]);

  const step = (): number =>
    tidy(() => {
      let h = ops.conv2d(x, w1, null, { padding: 1 });
      h = ops.batchNorm2d(h, g1, b1, rm, rv, { training: true, relu: true });
      h = ops.maxPool2d(h, 3, 2, 1);
      const s = h;
      h = ops.conv2d(h, w2, null, { padding: 1 });
      h = ops.batchNorm2d(h, g2, b2, null, null, { training: true });
      h = ops.relu(ops.add(h, s));
      const logits = ops.linear(ops.globalAvgPool(h), fc, fcb);
      const loss = ops.softmaxCrossEntropy(logits, labels);
      loss.backward();
      return loss.item();
    });
  const zeroGrads = () => {
    for (const p of params) p.grad?.zero_();
  };

  // first step allocates the leaf gradients (kept on purpose)
  step();
  zeroGrads();
  const base = memory().liveBytes;
  const seen: number[] = [];
  for (let i = 0; i < 50; i++) {
    step();
    zeroGrads();
    seen.push(memory().liveBytes);
  }
  t.ok(seen.every((b) => b === base), `live bytes flat at ${base} (saw min ${Math.min(...seen)}, max ${Math.max(...seen)})`);
  for (const p of params) t.ok(p.grad && !p.grad.disposed, `leaf gradient ${p.describe()} survives tidy`);
  // and they hold a real gradient after one more step
  step();
  t.ok(params.some((p) => p.grad!.toFloat32().some((v) => v !== 0)), 'gradients are nonzero after a step');
  // the same under noGrad (no graph at all)
  const before = memory().liveBytes;
  for (let i = 0; i < 10; i++)
    tidy(() => {
      noGrad(() => ops.linear(ops.globalAvgPool(ops.relu(ops.batchNorm2d(ops.conv2d(x, w1, null, { padding: 1 }), g1, b1, rm, rv, { training: false }))), fc, fcb));
    });
  t.equal(memory().liveBytes, before, 'eval steps leave no live bytes behind');

  for (const p of params) {
    p.grad?.dispose();
    p.dispose();
  }
  for (const o of [rm, rv, x, labels]) o.dispose();
});

t.test('a graph dropped without backward is freed by tidy', async (t) => {
  const w = Tensor.full([4, 4], 0.1, { requiresGrad: true });
  const base = memory().liveBytes;
  for (let i = 0; i < 20; i++) tidy(() => ops.sum(ops.relu(ops.linear(Tensor.full([3, 4], 1), w))).item());
  t.equal(memory().liveBytes, base, 'no live bytes left by forward-only graphs');
  t.equal(w.grad, null, 'no gradient without backward');
  w.dispose();
});
