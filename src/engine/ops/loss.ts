// Losses over logits [n, m], numerically stable for any finite input. A non-finite loss is an
// error (it names the op and the shapes) rather than a silent NaN that poisons training.
import { Tensor } from '../tensor';
import { native } from '../../native';
import { record, gradSink } from '../autograd';
import { checkTensors, checkRank, checkSameShape, fail } from './check';

export interface BceOptions {
  /**
   * The sum of the per-element losses is divided by this. Default: the element count (the
   * plain mean). M²KD divides by n × (the dataset's class count) so that the per-logit
   * gradient matches iCaRL's fixed-size output layer; see docs/design.md and docs/methods.md.
   */
  denominator?: number;
}

/** Sigmoid binary cross-entropy with logits against soft targets in [0,1]. Returns a 0-d tensor. */
export function bceWithLogits(logits: Tensor, targets: Tensor, opts: BceOptions = {}): Tensor {
  const op = 'bceWithLogits';
  checkTensors(op, [logits, targets]);
  checkSameShape(op, logits, targets);
  if (logits.size === 0) fail(op, 'empty input', logits);
  const denom = opts.denominator ?? logits.size;
  if (!(denom > 0) || !Number.isFinite(denom)) fail(op, `denominator must be a positive number, got ${denom}`);
  if (logits.device !== 'cpu') {
    // on a device the loss stays there (no value read back, no host round trip); a NaN shows when
    // the caller reads it (the training loop's guard reads it once per batch)
    const yd = Tensor.empty([], { device: logits.device });
    native.bce_logits_forward_out(logits.handle, targets.handle, yd.handle, logits.size, denom);
    return record(yd, op, [logits, targets], (dy) => {
      if (targets.requiresGrad) fail(op, 'gradients with respect to the targets are not supported', targets);
      native.bce_logits_backward_dy(logits.handle, targets.handle, dy.handle, gradSink(logits, op), logits.size, denom);
    });
  }
  const v = native.bce_logits_forward(logits.handle, targets.handle, logits.size, denom);
  if (!Number.isFinite(v)) fail(op, `loss is ${v}: the logits or targets hold NaN or Inf`, logits, targets);
  const y = Tensor.fromArray(new Float32Array([v]), [], { device: logits.device });
  return record(y, op, [logits, targets], (dy) => {
    if (targets.requiresGrad) fail(op, 'gradients with respect to the targets are not supported', targets);
    native.bce_logits_backward(logits.handle, targets.handle, gradSink(logits, op), logits.size, dy.item() / denom);
  });
}

/** Softmax cross-entropy with integer labels (i32 [n]), mean over the batch. Returns a 0-d tensor. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const op = 'softmaxCrossEntropy';
  checkTensors(op, [logits]);
  checkTensors(op, [labels], 'i32');
  checkRank(op, logits, 2, 'logits');
  checkRank(op, labels, 1, 'labels');
  const [n, m] = logits.shape;
  if (labels.shape[0] !== n) fail(op, `${labels.shape[0]} labels for ${n} rows`, logits, labels);
  if (labels.device !== logits.device) fail(op, 'device mismatch', logits, labels);
  if (n * m === 0) fail(op, 'empty input', logits);
  const p = Tensor.empty([n, m], { device: logits.device });
  const v = native.softmax_ce_forward(logits.handle, labels.handle, p.handle, n, m);
  if (!Number.isFinite(v)) {
    p.dispose();
    fail(op, `loss is ${v}: the logits hold NaN or Inf`, logits);
  }
  const y = Tensor.fromArray(new Float32Array([v]), [], { device: logits.device });
  if (!logits.requiresGrad) {
    p.dispose();
    return y;
  }
  return record(y, op, [logits], (dy) => {
    native.softmax_ce_backward(p.handle, labels.handle, gradSink(logits, op), n, m, dy.item() / n);
  });
}
