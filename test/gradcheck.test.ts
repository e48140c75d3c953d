// The gradient checker itself: it passes correct gradients and catches wrong ones (a wrong
// factor, a missing accumulation), so the op tests built on it are not vacuous.
import t from 'tap';
import { Tensor, Rng, ops } from '../src/engine';
import { record, gradOf } from '../src/engine/autograd';
import { native } from '../src/native';
import { gradcheck } from './gradcheck';
import { Test } from './helpers';

/** y = 2x with a backward that adds k*dy (k = 2 is right), optionally overwriting instead of accumulating. */
function twice(x: Tensor, k: number, overwrite = false): Tensor {
  const y = ops.scale(x, 2);
  y.node = null;
  y.requiresGrad = false;
  return record(y, 'twice', [x], (dy) => {
    const g = gradOf(x)!;
    native.axpby(k, dy.handle, overwrite ? 0 : 1, g.handle, g.handle, g.size);
  });
}

function collect(): { mock: Test; fails: string[]; passes: string[] } {
  const fails: string[] = [], passes: string[] = [];
  const mock = { pass: (m: string) => (passes.push(m), true), fail: (m: string) => (fails.push(m), false) } as unknown as Test;
  return { mock, fails, passes };
}

t.test('gradcheck accepts a correct gradient and rejects wrong ones', async (t) => {
  const x = { data: new Rng(71).normal(7), shape: [7] };
  let c = collect();
  gradcheck(c.mock, 'right', (xs) => twice(xs[0], 2), [x]);
  t.same(c.fails, [], 'correct gradient passes');
  t.equal(c.passes.length, 2, 'gradient and accumulation checks both ran');
  c = collect();
  gradcheck(c.mock, 'wrong factor', (xs) => twice(xs[0], 2.1), [x]);
  t.equal(c.fails.length, 1, `a 5% wrong gradient is caught: ${c.fails[0]}`);
  c = collect();
  gradcheck(c.mock, 'overwrites', (xs) => twice(xs[0], 2, true), [x]);
  t.equal(c.fails.length, 1, `a backward that overwrites instead of accumulating is caught: ${c.fails[0]}`);
});
