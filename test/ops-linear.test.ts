// linear (w[out, in], optional bias): forward against the float64 reference and finite-difference
// gradients at every SIMD level, with frozen inputs and weights. Shapes from test/cases.ts.
import t from 'tap';
import { Rng, ops } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, close, Test } from './helpers';
import { gradcheck } from './gradcheck';
import { linearCases, LinearCase, sumTol } from './cases';

function checkLinear(tt: Test, c: LinearCase, rng: Rng): void {
  const xd = randn(rng, [c.n, c.inF]), wd = randn(rng, [c.outF, c.inF], 0.3), bd = c.bias ? randn(rng, [c.outF]) : null;
  const y = ops.linear(tensor(xd, [c.n, c.inF]), tensor(wd, [c.outF, c.inF]), bd ? tensor(bd, [c.outF]) : null);
  tt.same([...y.shape], [c.n, c.outF], `linear ${JSON.stringify(c)}: shape`);
  close(tt, y.toFloat32(), ref.linear(xd, c.n, c.inF, wd, c.outF, bd), sumTol(c.inF), `linear ${JSON.stringify(c)}: forward`);
}

t.test('linear forward', async (t) => {
  eachSimd(t, 'linear forward', (tt) => {
    const rng = new Rng(5);
    for (const c of linearCases) checkLinear(tt, c, rng);
  });
});

t.test('linear gradients', async (t) => {
  eachSimd(t, 'linear gradcheck', (tt) => {
    const rng = new Rng(6);
    for (const c of linearCases.filter((l) => l.grad)) {
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

