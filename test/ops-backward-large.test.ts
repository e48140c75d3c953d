// Analytic gradients against the float64 reference backward on shapes too large for finite
// differences (these reach the blocked/packed and multi-threaded kernel paths), at every SIMD
// level, with the thread count of the environment (threads.test.ts reruns this file with
// M2KD_THREADS=1 and 3 in child processes).
import t from 'tap';
import { Rng, Tensor, ops, backward, runtimeInfo } from '../src/engine';
import * as ref from './reference';
import { eachSimd, randn, tensor, close, Test, prod } from './helpers';
import { conv2dBackwardCases, linearBackwardCases } from './cases';

function grads(y: Tensor, ins: Tensor[], dy: Float32Array): Float32Array[] {
  backward(y, Tensor.fromArray(dy, y.shape));
  return ins.map((x) => {
    const g = x.grad!.toFloat32();
    x.grad!.dispose();
    x.grad = null;
    return g;
  });
}


function convBackward(tt: Test, rng: Rng, tag: string): void {
  for (const c of conv2dBackwardCases) {
    const xd = randn(rng, c.x), wd = randn(rng, c.w, 0.2), bd = randn(rng, [c.w[0]]);
    const X = tensor(xd, c.x, true), W = tensor(wd, c.w, true), B = tensor(bd, [c.w[0]], true);
    const y = ops.conv2d(X, W, B, { stride: c.stride, padding: c.pad });
    const dy = randn(rng, y.shape);
    const [dx, dw, db] = grads(y, [X, W, B], dy);
    const want = ref.conv2dBackward(xd, c.x, wd, c.w, dy, c.stride, c.pad);
    const name = `${tag} conv x[${c.x}] w[${c.w}] s${c.stride} p${c.pad}`;
    const kx = c.w[0] * c.w[2] * c.w[3], kw = c.x[0] * prod(y.shape.slice(2));
    close(tt, dx, want.dx, { atol: 2e-6 * kx + 1e-5, rtol: 1e-4 }, `${name}: dx`);
    close(tt, dw, want.dw, { atol: 2e-6 * kw + 1e-5, rtol: 1e-4 }, `${name}: dw`);
    close(tt, db, want.db, { atol: 2e-6 * kw + 1e-5, rtol: 1e-4 }, `${name}: db`);
  }
}

function linearBackward(tt: Test, rng: Rng, tag: string): void {
  for (const [n, inF, outF] of linearBackwardCases) {
    const xd = randn(rng, [n, inF]), wd = randn(rng, [outF, inF], 0.1), bd = randn(rng, [outF]);
    const X = tensor(xd, [n, inF], true), W = tensor(wd, [outF, inF], true), B = tensor(bd, [outF], true);
    const y = ops.linear(X, W, B);
    const dy = randn(rng, y.shape);
    const [dx, dw, db] = grads(y, [X, W, B], dy);
    const want = ref.linearBackward(xd, n, inF, wd, outF, dy);
    const name = `${tag} linear [${n},${inF}]->${outF}`;
    close(tt, dx, want.dx, { atol: 2e-6 * outF + 1e-5, rtol: 1e-4 }, `${name}: dx`);
    close(tt, dw, want.dw, { atol: 2e-6 * n + 1e-5, rtol: 1e-4 }, `${name}: dw`);
    close(tt, db, want.db, { atol: 2e-6 * n + 1e-5, rtol: 1e-4 }, `${name}: db`);
  }
}

function bnBackward(tt: Test, rng: Rng, tag: string): void {
  for (const s of [[8, 64, 16, 16], [2, 3, 33, 17], [16, 5, 1, 1], [4, 17, 7, 9]])
    for (const relu of [false, true]) {
      const [n, c, h, w] = s;
      const xd = randn(rng, s, 2, 0.5), gd = randn(rng, [c], 0.5, 1), bd = randn(rng, [c], 0.5);
      const X = tensor(xd, s, true), G = tensor(gd, [c], true), B = tensor(bd, [c], true);
      const y = ops.batchNorm2d(X, G, B, null, null, { training: true, relu });
      const dy = randn(rng, s);
      const [dx, dg, db] = grads(y, [X, G, B], dy);
      const want = ref.batchNormTrainBackward(xd, n, c, h * w, gd, bd, 1e-5, dy, relu);
      const name = `${tag} bn [${s}]${relu ? ' +relu' : ''}`;
      const m = n * h * w;
      close(tt, dx, want.dx, { atol: 1e-4, rtol: 1e-3 }, `${name}: dx`);
      close(tt, dg, want.dgamma, { atol: 2e-6 * m + 1e-5, rtol: 1e-4 }, `${name}: dgamma`);
      close(tt, db, want.dbeta, { atol: 2e-6 * m + 1e-5, rtol: 1e-4 }, `${name}: dbeta`);
    }
}

t.test('large backward vs reference', async (t) => {
  eachSimd(t, 'large backward', (tt: Test) => {
    const rng = new Rng(81);
    const tag = `threads ${runtimeInfo().threads}`;
    convBackward(tt, rng, tag);
    linearBackward(tt, rng, tag);
    bnBackward(tt, rng, tag);
  });
});
