// Elementwise ops and full reductions over f32 tensors of one shape (no broadcasting):
// relu, add, sub, mul, scale, addScalar, sigmoid, sum, mean; plus reshape/flatten views.
import { Tensor } from '../tensor';
import { native } from '../../native';
import { record, gradOf, gradTarget, gradSink } from '../autograd';
import { checkTensors, checkSameShape, fail } from './check';

export function relu(x: Tensor): Tensor {
  checkTensors('relu', [x]);
  const y = Tensor.empty(x.shape, { device: x.device });
  native.relu_forward(x.handle, y.handle, x.size);
  return record(y, 'relu', [x], (dy) => native.relu_backward(y.handle, dy.handle, gradSink(x, 'relu'), x.size));
}

/** relu(a + b) in one pass: the residual join of a basic block. */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  checkTensors('addRelu', [a, b]);
  checkSameShape('addRelu', a, b);
  const y = Tensor.empty(a.shape, { device: a.device });
  native.add_relu_forward(a.handle, b.handle, y.handle, a.size);
  return record(y, 'addRelu', [a, b], (dy) => {
    const ga = gradTarget(a), gb = gradTarget(b);
    native.add_relu_backward(y.handle, dy.handle, ga.handle, gb.handle, a.size, ga.overwrite, gb.overwrite);
  });
}

/** y = alpha * a + beta * b */
function combine(op: string, a: Tensor, b: Tensor, alpha: number, beta: number): Tensor {
  checkTensors(op, [a, b]);
  checkSameShape(op, a, b);
  const y = Tensor.empty(a.shape, { device: a.device });
  native.axpby(alpha, a.handle, beta, b.handle, y.handle, a.size);
  return record(y, op, [a, b], (dy) => {
    for (const [t, k] of [[a, alpha], [b, beta]] as const) {
      const g = gradOf(t);
      if (g) native.axpby(k, dy.handle, 1, g.handle, g.handle, g.size);
    }
  });
}

export function add(a: Tensor, b: Tensor): Tensor {
  return combine('add', a, b, 1, 1);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return combine('sub', a, b, 1, -1);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  checkTensors('mul', [a, b]);
  checkSameShape('mul', a, b);
  const y = Tensor.empty(a.shape, { device: a.device });
  native.mul_forward(a.handle, b.handle, y.handle, a.size);
  return record(y, 'mul', [a, b], (dy) => {
    for (const [t, other] of [[a, b], [b, a]] as const) {
      const g = gradOf(t);
      if (!g) continue;
      const tmp = Tensor.empty(t.shape, { device: t.device });
      native.mul_forward(dy.handle, other.handle, tmp.handle, t.size);
      native.axpby(1, tmp.handle, 1, g.handle, g.handle, g.size);
      tmp.dispose();
    }
  });
}

/** y = a * x + b for scalars a, b */
export function affine(x: Tensor, a: number, b = 0): Tensor {
  checkTensors('affine', [x]);
  if (!Number.isFinite(a) || !Number.isFinite(b)) fail('affine', `scalars must be finite, got ${a}, ${b}`);
  const y = Tensor.empty(x.shape, { device: x.device });
  native.affine_scalar(x.handle, a, b, y.handle, x.size);
  return record(y, 'affine', [x], (dy) => {
    const g = gradOf(x)!;
    native.axpby(a, dy.handle, 1, g.handle, g.handle, g.size);
  });
}

export function scale(x: Tensor, a: number): Tensor {
  return affine(x, a, 0);
}

export function addScalar(x: Tensor, b: number): Tensor {
  return affine(x, 1, b);
}

export function sigmoid(x: Tensor): Tensor {
  checkTensors('sigmoid', [x]);
  const y = Tensor.empty(x.shape, { device: x.device });
  native.sigmoid_forward(x.handle, y.handle, x.size);
  return record(y, 'sigmoid', [x], (dy) => native.sigmoid_backward(y.handle, dy.handle, gradSink(x, 'sigmoid'), x.size));
}

/** Sum of all elements, as a 0-d tensor. */
export function sum(x: Tensor): Tensor {
  checkTensors('sum', [x]);
  return reduceAll('sum', x, 1);
}

/** Mean of all elements, as a 0-d tensor. */
export function mean(x: Tensor): Tensor {
  checkTensors('mean', [x]);
  if (x.size === 0) fail('mean', 'mean of an empty tensor', x);
  return reduceAll('mean', x, 1 / x.size);
}

function reduceAll(op: string, x: Tensor, factor: number): Tensor {
  const v = native.sum_all(x.handle, x.size) * factor;
  const y = Tensor.fromArray(new Float32Array([v]), [], { device: x.device });
  return record(y, op, [x], (dy) => {
    const g = dy.item() * factor;
    native.add_scalar_inplace(gradSink(x, op), x.size, g);
  });
}

/** A view with another shape over the same storage (-1 infers one dimension). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  if (x.disposed) fail('reshape', `tensor ${x.describe()} was disposed`);
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1) fail('reshape', `at most one -1 in [${shape.join(',')}]`, x);
  const full = holes ? shape.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d)) : [...shape];
  if (full.some((d) => !Number.isInteger(d) || d < 0) || full.reduce((p, d) => p * d, 1) !== x.size)
    fail('reshape', `cannot reshape to [${shape.join(',')}]`, x);
  const y = x.viewAs(full);
  return record(y, 'reshape', [x], (dy) => {
    const g = gradOf(x)!;
    native.axpby(1, dy.handle, 1, g.handle, g.handle, g.size);
  });
}

/** [n, ...] -> [n, prod(...)] */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0], -1]);
}
