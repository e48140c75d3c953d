import t from 'tap';
import { Tensor } from '../src/engine';
t.test('alloc and read', async (t) => {
  const x = Tensor.fromArray(new Float32Array([1, 2, 3]), [3]);
  t.same(Array.from(x.toFloat32()), [1, 2, 3]);
  x.dispose();
});
t.test('fail', async (t) => { t.equal(1, 1); });
