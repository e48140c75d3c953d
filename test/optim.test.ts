// The SGD optimiser's checks of hyper-parameters and masks, and the multi-step schedule (the
// update rule itself is tested at every SIMD level in ops-sgd.test.ts).
import t from 'tap';
import { Tensor, tidy } from '../src/engine';
import { SGD, MultiStepLR } from '../src/optim';

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
