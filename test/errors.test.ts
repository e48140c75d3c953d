// Bad input gets an Error with a clear message that names the op, and the process survives
// (every case is followed by a good call).
import t from 'tap';
import { Tensor, ops, noGrad } from '../src/engine';

const f = (shape: number[], v = 0.5, requiresGrad = false) => Tensor.full(shape, v, { requiresGrad });

function throwsNaming(tt: tap.Test, fn: () => unknown, op: RegExp, what: RegExp | null, msg: string): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) {
    tt.fail(`${msg}: expected an Error, got ${err === null ? 'no throw' : String(err)}`);
    return;
  }
  tt.match(err.message, op, `${msg}: message names the op (${err.message})`);
  if (what) tt.match(err.message, what, `${msg}: message says what is wrong`);
}

t.test('shape, rank and dtype errors name the op', async (t) => {
  // wrong rank
  throwsNaming(t, () => ops.conv2d(f([3, 8, 8]), f([4, 3, 3, 3])), /conv2d/, /rank 4/, 'conv2d rank-3 input');
  throwsNaming(t, () => ops.conv2d(f([1, 3, 8, 8]), f([4, 3, 3])), /conv2d/, /weight must have rank 4/, 'conv2d rank-3 weight');
  throwsNaming(t, () => ops.linear(f([2, 3, 1]), f([4, 3])), /linear/, /rank 2/, 'linear rank-3 input');
  throwsNaming(t, () => ops.batchNorm2d(f([2, 3]), f([3]), f([3]), null, null, { training: true }), /batchNorm2d/, /rank 4/, 'batchNorm2d rank-2 input');
  throwsNaming(t, () => ops.maxPool2d(f([3, 8, 8]), 2), /maxPool2d/, /rank 4/, 'maxPool2d rank-3');
  throwsNaming(t, () => ops.globalAvgPool(f([3, 8])), /globalAvgPool/, /rank 4/, 'globalAvgPool rank-2');
  throwsNaming(t, () => ops.sliceColumns(f([2, 3, 4]), 0, 1), /sliceColumns/, /rank 2/, 'sliceColumns rank-3');
  throwsNaming(t, () => ops.hflip(f([2, 3, 4])), /hflip/, /rank 4/, 'hflip rank-3');
  throwsNaming(t, () => ops.shortcutA(f([2, 3]), 2, 1, 1), /shortcutA/, /rank 4/, 'shortcutA rank-2');
  // channel / feature mismatch
  throwsNaming(t, () => ops.conv2d(f([1, 3, 8, 8]), f([4, 2, 3, 3])), /conv2d/, /channels/, 'conv2d channel mismatch');
  throwsNaming(t, () => ops.linear(f([2, 5]), f([4, 3])), /linear/, /features/, 'linear feature mismatch');
  throwsNaming(t, () => ops.batchNorm2d(f([2, 3, 4, 4]), f([4]), f([3]), null, null, { training: true }), /batchNorm2d/, /gamma/, 'batchNorm2d gamma size');
  throwsNaming(t, () => ops.conv2d(f([1, 3, 8, 8]), f([4, 3, 3, 3]), f([3])), /conv2d/, /bias/, 'conv2d bias size');
  throwsNaming(t, () => ops.conv2d(f([1, 3, 2, 2]), f([4, 3, 3, 3])), /conv2d/, /kernel larger/, 'conv2d kernel larger than input');
  throwsNaming(t, () => ops.conv2d(f([1, 3, 8, 8]), f([4, 3, 3, 3]), null, { stride: 0 }), /conv2d/, /stride/, 'conv2d stride 0');
  throwsNaming(t, () => ops.maxPool2d(f([1, 1, 4, 4]), 2, 2, 2), /maxPool2d/, /padding/, 'maxPool2d padding > kernel/2');
  // dtype
  const xi = Tensor.zeros([1, 3, 8, 8], { dtype: 'i32' });
  throwsNaming(t, () => ops.conv2d(xi, f([4, 3, 3, 3])), /conv2d/, /dtype/, 'conv2d with an i32 input');
  throwsNaming(t, () => ops.relu(xi), /relu/, /dtype/, 'relu with an i32 input');
  throwsNaming(t, () => ops.softmaxCrossEntropy(f([2, 3]), f([2])), /softmaxCrossEntropy/, /dtype i32/, 'softmax CE with f32 labels');
  // mismatched shapes in elementwise ops (no broadcasting)
  throwsNaming(t, () => ops.add(f([2, 3]), f([3, 2])), /add/, /differ/, 'add [2,3] + [3,2]');
  throwsNaming(t, () => ops.sub(f([2, 3]), f([6])), /sub/, /differ/, 'sub [2,3] - [6]');
  throwsNaming(t, () => ops.mul(f([1]), f([2])), /mul/, /differ/, 'mul [1] * [2]');
  throwsNaming(t, () => ops.bceWithLogits(f([2, 3]), f([2, 4])), /bceWithLogits/, /differ/, 'bce shapes differ');
  throwsNaming(t, () => ops.concatColumns([f([2, 3]), f([3, 3])]), /concatColumns/, /row/, 'concat row counts');
  throwsNaming(t, () => ops.sliceColumns(f([2, 3]), 1, 4), /sliceColumns/, /exceed/, 'slice past the end');
  throwsNaming(t, () => ops.hflip(f([2, 1, 2, 2]), new Uint8Array(3)), /hflip/, /flags/, 'hflip flag count');
  throwsNaming(t, () => ops.affine(f([2]), NaN), /affine/, /finite/, 'affine NaN scalar');
  // the process goes on
  t.equal(ops.sum(ops.add(f([2, 2]), f([2, 2]))).item(), 4, 'a good call after the errors');
});

t.test('disposed tensors', async (t) => {
  const x = f([1, 2, 4, 4]);
  const w = f([2, 2, 3, 3]);
  x.dispose();
  throwsNaming(t, () => ops.conv2d(x, w), /conv2d/, /dispose/, 'conv2d on a disposed input');
  throwsNaming(t, () => ops.relu(x), /relu/, /dispose/, 'relu on a disposed tensor');
  throwsNaming(t, () => ops.add(w, x), /add/, /dispose/, 'add with a disposed operand');
  throwsNaming(t, () => ops.reshape(x, [32]), /reshape/, /dispose/, 'reshape of a disposed tensor');
  t.throws(() => x.toFloat32(), /dispose/, 'reading a disposed tensor');
  x.dispose(); // idempotent
  t.pass('dispose twice is harmless');
  t.equal(ops.sum(w).item(), 0.5 * 36, 'other tensors still work');
  w.dispose();
});

t.test('device cuda is not available in this build', async (t) => {
  throwsNaming(t, () => Tensor.zeros([2, 2], { device: 'cuda' }), /cuda/, /not available/, 'zeros on cuda');
  throwsNaming(t, () => Tensor.fromArray(new Float32Array(4), [2, 2], { device: 'cuda' }), /cuda/, /not available/, 'fromArray on cuda');
  throwsNaming(t, () => Tensor.empty([1], { device: 'tpu' as 'cuda' }), /device/, /unknown/, 'unknown device');
  t.equal(Tensor.zeros([2]).device, 'cpu', 'cpu still works');
});

t.test('mismatched devices are an error, never a silent copy', async (t) => {
  // only the CPU backend exists in this build: relabel a tensor to exercise the check itself
  const a = Tensor.zeros([2, 3]);
  const b = Tensor.zeros([2, 3]);
  Object.defineProperty(b, 'device', { value: 'cuda' });
  throwsNaming(t, () => ops.add(a, b), /add/, /device mismatch/, 'add cpu + cuda');
  const w = Tensor.zeros([4, 3]);
  Object.defineProperty(w, 'device', { value: 'cuda' });
  throwsNaming(t, () => ops.linear(a, w), /linear/, /device mismatch/, 'linear cpu x cuda');
  throwsNaming(t, () => a.copyFrom(b), /copyFrom/, /device mismatch/, 'copyFrom cuda -> cpu');
});

t.test('labels and losses', async (t) => {
  const x = f([2, 3]);
  throwsNaming(t, () => ops.softmaxCrossEntropy(x, Tensor.fromArray(new Int32Array([0, 3]), [2])), /softmax/i, /label 3/, 'label index = m');
  throwsNaming(t, () => ops.softmaxCrossEntropy(x, Tensor.fromArray(new Int32Array([-1, 0]), [2])), /softmax/i, /label -1/, 'negative label');
  throwsNaming(t, () => ops.softmaxCrossEntropy(x, Tensor.fromArray(new Int32Array([0]), [1])), /softmaxCrossEntropy/, /labels for/, 'label count');
  // with a logits gradient wanted, the forward check still fires before any graph is built
  const xg = Tensor.full([2, 3], 0.1, { requiresGrad: true });
  throwsNaming(t, () => ops.softmaxCrossEntropy(xg, Tensor.fromArray(new Int32Array([5, 0]), [2])), /softmax/i, /outside/, 'bad label with grad');
  throwsNaming(t, () => ops.bceWithLogits(Tensor.fromArray(new Float32Array([NaN, 1]), [1, 2]), f([1, 2])), /bceWithLogits/, /NaN/, 'NaN logits in BCE');
  throwsNaming(t, () => ops.softmaxCrossEntropy(Tensor.fromArray(new Float32Array([NaN, 1]), [1, 2]), Tensor.fromArray(new Int32Array([0]), [1])), /softmaxCrossEntropy/, /NaN/, 'NaN logits in softmax CE');
  throwsNaming(t, () => ops.bceWithLogits(x, f([2, 3]), { denominator: 0 }), /bceWithLogits/, /denominator/, 'BCE denominator 0');
  t.ok(Number.isFinite(ops.softmaxCrossEntropy(x, Tensor.fromArray(new Int32Array([0, 2]), [2])).item()), 'a good call after the errors');
});

t.test('batch norm misuse', async (t) => {
  throwsNaming(t, () => ops.batchNorm2d(f([2, 3, 2, 2]), f([3]), f([3]), null, null, { training: false }), /batchNorm2d/, /running/, 'eval without running stats');
  throwsNaming(t, () => ops.batchNorm2d(f([1, 3, 1, 1]), f([3]), f([3]), null, null, { training: true }), /batchNorm2d/, /more than one value/, 'train on one value per channel');
  throwsNaming(t, () => ops.batchNorm2d(f([2, 3, 2, 2]), f([3]), f([3]), null, null, { training: true, momentum: 2 }), /batchNorm2d/, /momentum/, 'momentum 2');
  // eval under noGrad is fine
  const y = noGrad(() => ops.batchNorm2d(f([2, 3, 2, 2], 0.5, true), f([3], 1), f([3], 0), f([3], 0.5), f([3], 1), { training: false }));
  t.ok(y.toFloat32().every((v) => Math.abs(v) < 1e-5), 'eval under noGrad works');
});
