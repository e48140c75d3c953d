// The option-A shortcut (strided subsample + zero channel padding): forward against the reference
// (exact copies) and finite-difference gradients at every SIMD level. Shapes from test/cases.ts.
import t from 'tap';
import { Rng, ops } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, same, Test } from './helpers';
import { gradcheck } from './gradcheck';
import { shortcutCases, ShortcutCase } from './cases';

/** The case as it was named before the table had a grad flag (test names stay stable). */
function caseName(c: ShortcutCase): string {
  return JSON.stringify({ x: c.x, stride: c.stride, pb: c.pb, pa: c.pa });
}

t.test('shortcutA forward', async (t) => {
  eachSimd(t, 'shortcutA forward', (tt: Test) => {
    const rng = new Rng(31);
    for (const c of shortcutCases) {
      const x = randn(rng, c.x);
      const y = ops.shortcutA(tensor(x, c.x), c.stride, c.pb, c.pa);
      const want = ref.shortcutA(x, c.x, c.stride, c.pb, c.pa);
      tt.same([...y.shape], want.shape, `shortcutA ${caseName(c)} shape`);
      same(tt, y.toFloat32(), want.y, `shortcutA ${caseName(c)}`);
    }
  });
});

t.test('shortcutA gradients', async (t) => {
  eachSimd(t, 'shortcutA gradcheck', (tt: Test) => {
    const rng = new Rng(32);
    for (const c of shortcutCases.filter((s) => s.grad))
      gradcheck(tt, `shortcutA ${caseName(c)}`, (xs) => ops.shortcutA(xs[0], c.stride, c.pb, c.pa), [{ data: randn(rng, c.x), shape: c.x }]);
  });
});
