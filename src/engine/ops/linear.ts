// linear: y = x w^T + b with x [n,in], w [out,in] (PyTorch layout), b [out].
import { Tensor } from '../tensor';
import { native } from '../../native';
import { record, gradHandle } from '../autograd';
import { checkTensors, checkRank, fail } from './check';

export function linear(x: Tensor, w: Tensor, bias: Tensor | null = null): Tensor {
  const op = 'linear';
  checkTensors(op, [x, w, bias]);
  checkRank(op, x, 2, 'input');
  checkRank(op, w, 2, 'weight');
  const [n, inF] = x.shape;
  const [outF, wi] = w.shape;
  if (wi !== inF) fail(op, `input has ${inF} features but the weight expects ${wi}`, x, w);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) fail(op, `bias must have shape [${outF}]`, bias);
  if (n === 0 || inF === 0 || outF === 0) fail(op, 'empty dimension', x, w);
  const y = Tensor.empty([n, outF], { device: x.device });
  native.linear_forward(x.handle, w.handle, bias ? bias.handle : -1, y.handle, n, inF, outF);
  return record(y, op, bias ? [x, w, bias] : [x, w], (dy) => {
    native.linear_backward(x.handle, w.handle, dy.handle, gradHandle(x), gradHandle(w), bias ? gradHandle(bias) : -1, n, inF, outF);
  });
}
