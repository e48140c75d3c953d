// Horizontal flip of NCHW images, for all samples or those whose flag is 1 (augmentation).
import { Tensor } from '../tensor';
import { native } from '../../native';
import { record, gradOf } from '../autograd';
import { checkTensors, checkRank, fail } from './check';

export function hflip(x: Tensor, flags: Uint8Array | null = null): Tensor {
  const op = 'hflip';
  checkTensors(op, [x]);
  checkRank(op, x, 4);
  const [n, c, h, w] = x.shape;
  if (flags && flags.length !== n) fail(op, `${flags.length} flags for ${n} samples`, x);
  if (n * c * h * w === 0) fail(op, 'empty input', x);
  const y = Tensor.empty(x.shape, { device: x.device });
  const f = flags ? Tensor.fromArray(flags, [n], { device: x.device }) : null;
  native.hflip(x.handle, y.handle, f ? f.handle : -1, n, c, h, w);
  const out = record(y, op, [x], (dy) => {
    // the flip is its own inverse: flip the gradient back and accumulate
    const g = gradOf(x)!;
    const tmp = Tensor.empty(x.shape, { device: x.device });
    native.hflip(dy.handle, tmp.handle, f ? f.handle : -1, n, c, h, w);
    native.axpby(1, tmp.handle, 1, g.handle, g.handle, g.size);
    tmp.dispose();
    f?.dispose();
  });
  if (!out.node) f?.dispose();
  return out;
}
