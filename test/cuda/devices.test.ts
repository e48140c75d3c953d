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

tap.test('staged batch upload, range copies and the host-device copy counter', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { StagingBuffer, copyStats } = require('../../src/engine') as typeof import('../../src/engine');
  const devices: ('cpu' | 'cuda')[] = ['cpu'];
  if (cudaStatus().available) devices.push('cuda');
  for (const device of devices) {
    const st = new StagingBuffer(device);
    const a = Float32Array.from({ length: 12 }, (_, i) => i), b = Float32Array.from({ length: 5 }, (_, i) => -i);
    copyStats(true);
    const [ta, tb] = st.upload([{ data: a, shape: [3, 4] }, { data: b, shape: [5] }]);
    const c = copyStats(true);
    t.same([...ta.shape, ta.device], [3, 4, device], `${device}: shapes and device`);
    t.same(ta.toFloat32(), a, `${device}: first part`);
    t.same(tb.toFloat32(), b, `${device}: second part`);
    t.equal(c.h2d, device === 'cpu' ? 0 : 1, `${device}: ${c.h2d} host-to-device copies for two parts`);
    t.throws(() => st.upload([{ data: a, shape: [5] }]), device === 'cpu' ? /do not fill/ : /do not fill/);
    const d = Tensor.zeros([6], { device });
    d.copyRangeFrom(ta, 1, 2, 3).writeAt(new Float32Array([9]), 5);
    t.same(d.toFloat32(), Float32Array.from([0, 2, 3, 4, 0, 9]), `${device}: copyRangeFrom and writeAt`);
    t.throws(() => d.copyRangeFrom(ta, 4, 0, 3), /overflow/);
    t.throws(() => d.writeAt(new Float32Array(3), 4), /overflow/);
    for (const z of [ta, tb, d]) z.dispose();
    st.dispose();
  }
  t.same(Object.keys(copyStats()).sort(), ['d2h', 'd2hBytes', 'h2d', 'h2dBytes']);
});
