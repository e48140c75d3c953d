// Column slice and concat of row-major matrices [n, m] (logits of class groups).
import { Tensor } from '../tensor';
import { native } from '../../native';
import { record, gradOf } from '../autograd';
import { checkTensors, checkRank, checkInt, fail } from './check';

/** x[:, start:end] as a new tensor. */
export function sliceColumns(x: Tensor, start: number, end: number): Tensor {
  const op = 'sliceColumns';
  checkTensors(op, [x]);
  checkRank(op, x, 2);
  const [n, m] = x.shape;
  checkInt(op, 'start', start, 0);
  checkInt(op, 'end', end, start);
  if (end > m) fail(op, `columns ${start}..${end} exceed ${m}`, x);
  const cols = end - start;
  const y = Tensor.empty([n, cols], { device: x.device });
  if (n > 0 && cols > 0) native.copy_columns(x.handle, m, start, y.handle, cols, 0, n, cols, false);
  return record(y, op, [x], (dy) => {
    const g = gradOf(x)!;
    if (n > 0 && cols > 0) native.copy_columns(dy.handle, cols, 0, g.handle, m, start, n, cols, true);
  });
}

/** Concatenates [n, m_i] matrices along the columns. */
export function concatColumns(xs: Tensor[]): Tensor {
  const op = 'concatColumns';
  if (xs.length === 0) throw new Error(`${op}: no inputs`);
  checkTensors(op, xs);
  for (const x of xs) checkRank(op, x, 2);
  const n = xs[0].shape[0];
  for (const x of xs) if (x.shape[0] !== n) fail(op, 'row counts differ', ...xs);
  const m = xs.reduce((s, x) => s + x.shape[1], 0);
  const y = Tensor.empty([n, m], { device: xs[0].device });
  let col = 0;
  const offsets: number[] = [];
  for (const x of xs) {
    offsets.push(col);
    if (n > 0 && x.shape[1] > 0) native.copy_columns(x.handle, x.shape[1], 0, y.handle, m, col, n, x.shape[1], false);
    col += x.shape[1];
  }
  return record(y, op, xs, (dy) => {
    xs.forEach((x, i) => {
      const g = gradOf(x);
      if (g && n > 0 && x.shape[1] > 0) native.copy_columns(dy.handle, m, offsets[i], g.handle, x.shape[1], 0, n, x.shape[1], true);
    });
  });
}
