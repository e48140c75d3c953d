// The SGD update as an engine op (no gradient rule: it is what an optimiser applies), in place:
// g = grad + weightDecay * w; buf = momentum * buf + g; w -= lr * buf (PyTorch's rule). Elements
// whose u8 `frozen` entry is nonzero get no step, no momentum and no decay: they keep their bits.
import { Tensor } from '../tensor';
import { native } from '../../native';
import { checkTensors, checkSameShape, fail } from './check';

export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
}

/** One SGD step on w (in place), with its momentum buffer (needed when momentum > 0) and freeze mask. */
export function sgdUpdate(w: Tensor, grad: Tensor, momentumBuf: Tensor | null, frozen: Tensor | null, hyper: SgdHyper): void {
  const op = 'sgdUpdate';
  checkTensors(op, [w, grad, momentumBuf]);
  checkSameShape(op, w, grad);
  if (momentumBuf) checkSameShape(op, w, momentumBuf);
  if (hyper.momentum !== 0 && !momentumBuf) fail(op, `momentum ${hyper.momentum} needs a momentum buffer`, w);
  if (frozen) {
    checkTensors(op, [frozen], 'u8');
    if (frozen.size !== w.size) fail(op, 'the freeze mask must have one entry per weight', w, frozen);
    if (frozen.device !== w.device) fail(op, `device mismatch: ${w.device} and ${frozen.device} (no implicit copies)`, w, frozen);
  }
  native.sgd_update(w.handle, grad.handle, momentumBuf ? momentumBuf.handle : -1, frozen ? frozen.handle : -1, w.size,
    hyper.lr, hyper.momentum, hyper.weightDecay);
}
