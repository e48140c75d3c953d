// Horizontal flip of NCHW images with per-sample flags: forward against the reference (exact
// copies) and finite-difference gradients at every SIMD level. Shapes from test/cases.ts.
import t from 'tap';
import { Rng, ops } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, same, Test } from './helpers';
import { gradcheck } from './gradcheck';
import { hflipCases } from './cases';

t.test('hflip forward', async (t) => {
  eachSimd(t, 'hflip forward', (tt: Test) => {
    const rng = new Rng(53);
    for (const s of hflipCases.forward) {
      const x = randn(rng, s);
      const X = tensor(x, s);
      same(tt, ops.hflip(X).toFloat32(), ref.hflip(x, s, null), `hflip all [${s}]`);
      const flags = rng.bernoulli(s[0]);
      flags[0] = 1;
      if (s[0] > 1) flags[s[0] - 1] = 0;
      same(tt, ops.hflip(X, flags).toFloat32(), ref.hflip(x, s, flags), `hflip flags ${Array.from(flags)} [${s}]`);
      same(tt, ops.hflip(X, new Uint8Array(s[0])).toFloat32(), x, `hflip no flags set [${s}] is identity`);
      same(tt, ops.hflip(ops.hflip(X, flags), flags).toFloat32(), x, `hflip twice [${s}] is identity`);
    }
    // any nonzero flag flips
    const s = [2, 1, 1, 3];
    const x = new Float32Array([1, 2, 3, 4, 5, 6]);
    same(tt, ops.hflip(tensor(x, s), new Uint8Array([255, 7])).toFloat32(), [3, 2, 1, 6, 5, 4], 'flags 255 and 7 flip');
  });
});

t.test('hflip gradients', async (t) => {
  eachSimd(t, 'hflip gradcheck', (tt: Test) => {
    const rng = new Rng(54);
    for (const s of hflipCases.grad) {
      gradcheck(tt, `hflip all [${s}]`, (xs) => ops.hflip(xs[0]), [{ data: randn(rng, s), shape: s }]);
      const flags = Uint8Array.from({ length: s[0] }, (_, i) => i % 2);
      gradcheck(tt, `hflip flags [${s}]`, (xs) => ops.hflip(xs[0], flags), [{ data: randn(rng, s), shape: s }]);
    }
  });
});
