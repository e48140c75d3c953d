// Pooling: global average pool [n,c,h,w] -> [n,c], and max pool with a square window.
import { Tensor } from '../tensor';
import { native } from '../../native';
import type { Pool2dDims } from '../../native';
import { record, gradSink } from '../autograd';
import { checkTensors, checkRank, checkInt, fail } from './check';

export function globalAvgPool(x: Tensor): Tensor {
  const op = 'globalAvgPool';
  checkTensors(op, [x]);
  checkRank(op, x, 4);
  const [n, c, h, w] = x.shape;
  if (n * c * h * w === 0) fail(op, 'empty input', x);
  const y = Tensor.empty([n, c], { device: x.device });
  native.global_avg_pool_forward(x.handle, y.handle, n, c, h * w);
  return record(y, op, [x], (dy) => native.global_avg_pool_backward(dy.handle, gradSink(x, op), n, c, h * w));
}

export function maxPool2d(x: Tensor, kernel: number, stride = kernel, padding = 0): Tensor {
  const op = 'maxPool2d';
  checkTensors(op, [x]);
  checkRank(op, x, 4);
  checkInt(op, 'kernel', kernel, 1);
  checkInt(op, 'stride', stride, 1);
  checkInt(op, 'padding', padding, 0);
  const [n, c, h, w] = x.shape;
  if (2 * padding > kernel) fail(op, `padding ${padding} exceeds half the kernel ${kernel}`, x);
  if (h + 2 * padding < kernel || w + 2 * padding < kernel) fail(op, 'kernel larger than the padded input', x);
  const oh = Math.floor((h + 2 * padding - kernel) / stride) + 1;
  const ow = Math.floor((w + 2 * padding - kernel) / stride) + 1;
  const y = Tensor.empty([n, c, oh, ow], { device: x.device });
  const argmax = Tensor.empty([n, c, oh, ow], { dtype: 'i32', device: x.device });
  const dims: Pool2dDims = [n, c, h, w, kernel, stride, padding];
  native.max_pool2d_forward(x.handle, y.handle, argmax.handle, ...dims);
  if (!x.requiresGrad) {
    argmax.dispose();
    return y;
  }
  return record(y, op, [x], (dy) => native.max_pool2d_backward(dy.handle, argmax.handle, gradSink(x, op), ...dims));
}
