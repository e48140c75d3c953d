// Batch norm 2d over NCHW with an optional fused ReLU (y = relu(bn(x))). Train mode uses
// batch statistics and updates the running ones in place (PyTorch semantics: unbiased
// running_var, r = (1-momentum) r + momentum stat); eval mode uses the running statistics.
import { Tensor } from '../tensor';
import { native } from '../../native';
import { record, gradHandle, gradTarget, needsGrad } from '../autograd';
import { checkTensors, checkRank, fail } from './check';

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** fuse a ReLU after the affine transform */
  relu?: boolean;
}

export function batchNorm2d(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  const op = opts.relu ? 'batchNorm2d+relu' : 'batchNorm2d';
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const relu = !!opts.relu;
  checkTensors(op, [x, gamma, beta, runningMean, runningVar]);
  checkRank(op, x, 4, 'input');
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  for (const [name, t] of [['gamma', gamma], ['beta', beta], ['running_mean', runningMean], ['running_var', runningVar]] as const)
    if (t && (t.rank !== 1 || t.shape[0] !== c)) fail(op, `${name} must have shape [${c}]`, x, t);
  if (n * c * hw === 0) fail(op, 'empty input', x);
  if (!(eps > 0)) fail(op, `eps must be > 0, got ${eps}`);
  if (!(momentum >= 0 && momentum <= 1)) fail(op, `momentum must be in [0,1], got ${momentum}`);
  const y = Tensor.empty(x.shape, { device: x.device });
  if (!opts.training) {
    if (!runningMean || !runningVar) fail(op, 'eval mode needs running statistics', x);
    const rm = runningMean, rv = runningVar;
    native.batchnorm2d_forward_eval(x.handle, gamma.handle, beta.handle, rm.handle, rv.handle, y.handle, n, c, hw, eps, relu);
    // the running statistics are constants here: an affine map per channel
    return record(y, op, [x, gamma, beta], (dy) => {
      native.batchnorm2d_backward_eval(
        x.handle, relu ? y.handle : -1, dy.handle, gamma.handle, rm.handle, rv.handle,
        gradHandle(x), gradHandle(gamma), gradHandle(beta), n, c, hw, eps, relu,
      );
    });
  }
  if (n * hw < 2) fail(op, 'training mode needs more than one value per channel', x);
  const saveMean = Tensor.empty([c], { device: x.device });
  const saveInvstd = Tensor.empty([c], { device: x.device });
  native.batchnorm2d_forward_train(
    x.handle, gamma.handle, beta.handle,
    runningMean ? runningMean.handle : -1, runningVar ? runningVar.handle : -1,
    saveMean.handle, saveInvstd.handle, y.handle, n, c, hw, eps, momentum, relu,
  );
  if (!needsGrad(x, gamma, beta)) {
    saveMean.dispose();
    saveInvstd.dispose();
    return y;
  }
  return record(y, op, [x, gamma, beta], (dy) => {
    const gx = gradTarget(x, true);
    native.batchnorm2d_backward(
      x.handle, relu ? y.handle : -1, dy.handle, gamma.handle, saveMean.handle, saveInvstd.handle,
      gx.handle, gradHandle(gamma), gradHandle(beta), n, c, hw, relu, gx.overwrite,
    );
  });
}
