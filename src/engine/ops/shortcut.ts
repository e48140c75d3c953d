// The option-A shortcut of the CIFAR ResNets (He et al. 2016): subsample x[:, :, ::stride, ::stride]
// and zero-pad channels (padBefore, padAfter). Parameter-free.
import { Tensor } from '../tensor';
import { native } from '../../native';
import type { ShortcutDims } from '../../native';
import { record, gradSink } from '../autograd';
import { checkTensors, checkRank, checkInt } from './check';

export function shortcutA(x: Tensor, stride: number, padBefore: number, padAfter: number): Tensor {
  const op = 'shortcutA';
  checkTensors(op, [x]);
  checkRank(op, x, 4);
  checkInt(op, 'stride', stride, 1);
  checkInt(op, 'padBefore', padBefore, 0);
  checkInt(op, 'padAfter', padAfter, 0);
  const [n, c, h, w] = x.shape;
  const oh = Math.ceil(h / stride), ow = Math.ceil(w / stride);
  const y = Tensor.empty([n, c + padBefore + padAfter, oh, ow], { device: x.device });
  const dims: ShortcutDims = [n, c, h, w, stride, padBefore, padAfter];
  native.shortcut_a_forward(x.handle, y.handle, ...dims);
  return record(y, op, [x], (dy) => native.shortcut_a_backward(dy.handle, gradSink(x, op), ...dims));
}
