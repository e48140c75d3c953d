// Device rules that hold in every build, GPU or not (part of the normal suite, runs in well
// under a second): 'cuda' is refused with the reason when the backend is unavailable, unknown
// devices are refused, and the native layer validates device arguments. With a GPU, a tensor
// round-trips exactly. The full CPU/GPU parity suite is test/cuda/parity.cuda.ts (npm run test:cuda).
import tap from 'tap';
import { Tensor, cudaStatus, cudaInfo, withDevice, getDefaultDevice } from '../../src/engine';
import { native } from '../../src/native';

const st = cudaStatus();
const info = cudaInfo();

tap.test('cuda status is consistent with the addon', async (t) => {
  t.equal(typeof st.available, 'boolean');
  t.equal(native.runtime_info().cudaAvailable, st.available, 'runtime_info agrees');
  t.equal(info.compiled, native.runtime_info().cudaCompiled, 'cuda_info agrees on compilation');
  if (!st.available) t.ok(st.reason.length > 0, `unavailable says why: ${st.reason}`);
});

tap.test('unknown and unavailable devices are refused', async (t) => {
  t.throws(() => Tensor.zeros([2], { device: 'tpu' as 'cpu' }), /unknown device 'tpu'/);
  t.throws(() => native.alloc('f32', 4, false, 'gpu' as 'cpu'), /unknown device 'gpu'/);
  t.throws(() => withDevice('tpu' as 'cpu', () => 0), /unknown device/);
  t.equal(getDefaultDevice(), 'cpu', 'default device restored');
  if (!st.available) {
    t.throws(() => Tensor.zeros([2], { device: 'cuda' }), /device cuda is not available/);
    t.throws(() => Tensor.fromArray(new Float32Array(3)).to('cuda'), /device cuda is not available/);
    t.throws(() => native.alloc('f32', 4, false, 'cuda'), /cuda/);
  }
});

tap.test('the CUDA-only masked conv binding refuses host buffers', async (t) => {
  const b = Tensor.zeros([16]);
  const m = Tensor.zeros([16], { dtype: 'u8' });
  t.throws(() => native.masked_conv_forward_cuda(b.handle, m.handle, b.handle, new Int32Array([1]), b.handle, b.handle, -1,
    b.handle, 1, 1, 1, 4, 4, 1, 1, 1, 1, 0, false, true), /masked_conv_forward_cuda: .*cuda/);
  b.dispose();
  m.dispose();
});

tap.test('round trip through the device (with a GPU only)', async (t) => {
  if (!st.available) {
    t.pass(`skipped: no CUDA device (${st.reason})`);
    return;
  }
  const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
  const c = Tensor.fromArray(data);
  const g = c.to('cuda');
  t.same(Array.from(g.to('cpu').toFloat32()), Array.from(data));
  c.dispose();
  g.dispose();
});
