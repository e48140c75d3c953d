// conv2d (NCHW input, OIHW weight, optional bias) with its gradient rule:
// dx += conv^T(dy, w), dw += dy (x) x, db += sum dy.
import { Tensor } from '../tensor';
import { native } from '../../native';
import type { Conv2dDims } from '../../native';
import { record, gradHandle, gradSink } from '../autograd';
import { checkTensors, checkRank, checkInt, fail } from './check';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
}

export function conv2dOutputSize(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

/** Checks a conv2d call and returns its geometry in the addon's order, and the output shape. */
function conv2dGeometry(op: string, x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOptions): { dims: Conv2dDims; yShape: number[] } {
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? 0;
  checkTensors(op, [x, w, bias]);
  checkRank(op, x, 4, 'input');
  checkRank(op, w, 4, 'weight');
  checkInt(op, 'stride', stride, 1);
  checkInt(op, 'padding', pad, 0);
  const [n, c, h, wd] = x.shape;
  const [o, ci, kh, kw] = w.shape;
  if (ci !== c) fail(op, `input has ${c} channels but the weight expects ${ci}`, x, w);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== o)) fail(op, `bias must have shape [${o}]`, bias);
  if (n === 0 || c === 0 || o === 0) fail(op, 'empty dimension', x, w);
  if (h + 2 * pad < kh || wd + 2 * pad < kw) fail(op, 'kernel larger than the padded input', x, w);
  const oh = conv2dOutputSize(h, kh, stride, pad);
  const ow = conv2dOutputSize(wd, kw, stride, pad);
  return { dims: [n, c, h, wd, o, kh, kw, stride, pad], yShape: [n, o, oh, ow] };
}

export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const { dims, yShape } = conv2dGeometry(op, x, w, bias, opts);
  const y = Tensor.empty(yShape, { device: x.device });
  native.conv2d_forward(x.handle, w.handle, bias ? bias.handle : -1, y.handle, ...dims);
  return record(y, op, bias ? [x, w, bias] : [x, w], (dy) => {
    if (x.requiresGrad) native.conv2d_backward_data(dy.handle, w.handle, gradSink(x, op), ...dims);
    if (w.requiresGrad || (bias && bias.requiresGrad)) {
      if (w.requiresGrad)
        native.conv2d_backward_weight(x.handle, dy.handle, gradSink(w, op), bias ? gradHandle(bias) : -1, ...dims);
      else {
        // trainable bias with a frozen weight: the kernel wants a weight-gradient sink
        const sink = Tensor.zeros(w.shape, { device: w.device });
        native.conv2d_backward_weight(x.handle, dy.handle, sink.handle, gradHandle(bias!), ...dims);
        sink.dispose();
      }
    }
  });
}


/**
 * The three conv2d kernels called once each, outside autograd, on caller-owned buffers: what
 * `m2kd bench train` times. Same checks as conv2d; y is overwritten, dx and dw accumulate.
 */
export const conv2dKernels = {
  forward(x: Tensor, w: Tensor, y: Tensor, opts: Conv2dOptions = {}): void {
    const op = 'conv2dKernels.forward';
    const { dims, yShape } = conv2dGeometry(op, x, w, null, opts);
    checkOut(op, y, yShape);
    native.conv2d_forward(x.handle, w.handle, -1, y.handle, ...dims);
  },
  backwardData(dy: Tensor, w: Tensor, dx: Tensor, opts: Conv2dOptions = {}): void {
    const op = 'conv2dKernels.backwardData';
    const { dims, yShape } = conv2dGeometry(op, dx, w, null, opts);
    checkOut(op, dy, yShape);
    native.conv2d_backward_data(dy.handle, w.handle, dx.handle, ...dims);
  },
  backwardWeight(x: Tensor, dy: Tensor, dw: Tensor, opts: Conv2dOptions = {}): void {
    const op = 'conv2dKernels.backwardWeight';
    const { dims, yShape } = conv2dGeometry(op, x, dw, null, opts);
    checkOut(op, dy, yShape);
    native.conv2d_backward_weight(x.handle, dy.handle, dw.handle, -1, ...dims);
  },
};

function checkOut(op: string, t: Tensor, shape: number[]): void {
  checkTensors(op, [t]);
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) fail(op, `expected shape [${shape.join(',')}]`, t);
}
