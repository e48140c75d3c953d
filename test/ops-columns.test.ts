// Column slice/concat of [n, m] matrices: forward
// against the reference (exact copies) and finite-difference gradients at every SIMD level.
import t from 'tap';
import { Rng, ops } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, same, Test } from './helpers';
import { gradcheck } from './gradcheck';

const sliceCases: [number, number, number, number][] = [
  // n, m, start, end
  [4, 10, 2, 7],
  [1, 1, 0, 1],
  [3, 17, 0, 17],
  [3, 17, 16, 17],
  [5, 40, 7, 39],
  [2, 5, 3, 3], // empty slice
  [33, 100, 50, 100],
];

t.test('sliceColumns and concatColumns forward', async (t) => {
  eachSimd(t, 'columns forward', (tt: Test) => {
    const rng = new Rng(51);
    for (const [n, m, s, e] of sliceCases) {
      const x = randn(rng, [n, m]);
      const y = ops.sliceColumns(tensor(x, [n, m]), s, e);
      tt.same([...y.shape], [n, e - s], `slice [${n},${m}] ${s}..${e} shape`);
      same(tt, y.toFloat32(), ref.sliceColumns(x, n, m, s, e), `slice [${n},${m}] ${s}..${e}`);
    }
    for (const widths of [[3, 5], [1], [1, 1, 1], [16, 1, 17], [0, 4, 0]]) {
      const n = 3;
      const parts = widths.map((w) => ({ data: randn(rng, [n, w]), cols: w }));
      const y = ops.concatColumns(parts.map((p) => tensor(p.data, [n, p.cols])));
      const m = widths.reduce((a, b) => a + b, 0);
      tt.same([...y.shape], [n, m], `concat ${widths} shape`);
      same(tt, y.toFloat32(), ref.concatColumns(parts, n), `concat ${widths}`);
    }
    // slice and concat are inverse
    const x = randn(rng, [4, 12]);
    const X = tensor(x, [4, 12]);
    const back = ops.concatColumns([ops.sliceColumns(X, 0, 5), ops.sliceColumns(X, 5, 6), ops.sliceColumns(X, 6, 12)]);
    same(tt, back.toFloat32(), x, 'concat of the slices is the input');
  });
});

t.test('sliceColumns and concatColumns gradients', async (t) => {
  eachSimd(t, 'columns gradcheck', (tt: Test) => {
    const rng = new Rng(52);
    for (const [n, m, s, e] of sliceCases.filter((c) => c[0] * c[1] <= 200 && c[3] > c[2]))
      gradcheck(tt, `slice [${n},${m}] ${s}..${e}`, (xs) => ops.sliceColumns(xs[0], s, e), [{ data: randn(rng, [n, m]), shape: [n, m] }]);
    gradcheck(tt, 'concat [2,3]+[2,1]+[2,4]', (xs) => ops.concatColumns(xs), [
      { data: randn(rng, [2, 3]), shape: [2, 3] },
      { data: randn(rng, [2, 1]), shape: [2, 1] },
      { data: randn(rng, [2, 4]), shape: [2, 4] },
    ]);
    gradcheck(tt, 'concat with a frozen part', (xs) => ops.concatColumns(xs), [
      { data: randn(rng, [3, 2]), shape: [3, 2], requiresGrad: false },
      { data: randn(rng, [3, 5]), shape: [3, 5] },
    ]);
    // overlapping slices of one tensor: gradients add up
    gradcheck(tt, 'two overlapping slices concatenated', (xs) => ops.concatColumns([ops.sliceColumns(xs[0], 0, 4), ops.sliceColumns(xs[0], 2, 6)]), [
      { data: randn(rng, [3, 6]), shape: [3, 6] },
    ]);
  });
});
