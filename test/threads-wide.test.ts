// No hidden thread cap: conv2d (every path: direct, grid mode, channel-vector, strided
// backward-data, GEMM fallbacks) and SGEMM (linear) run at WIDE = 11 workers, more than the old
// fixed scratch slots allowed (conv used at most 3, SGEMM at most 8), must give the 1-thread
// results within float tolerance, at every SIMD level, and must really split the work over all 11
// workers (the pool's widest parallel_for split, exec_stats().maxParts, read around the forward
// and around the backward; every tensor here is below the elementwise kernels' parallel
// threshold of 65536 floats, so the split seen is the conv's or the GEMM's own).
import t from 'tap';
import { Rng, Tensor, ops, backward, runtimeInfo, setThreads } from '../src/engine';
import { native } from '../src/native';
import { eachSimd, randn, tensor, close, Test } from './helpers';

const WIDE = 11;
const N = 12; // images: >= WIDE so conv2d can give every worker one

interface Case {
  x: number[];
  w: number[];
  stride: number;
  pad: number;
  why: string;
}
const convCases: Case[] = [
  { x: [N, 16, 12, 12], w: [32, 16, 3, 3], stride: 1, pad: 1, why: 'direct stride 1' },
  { x: [N, 16, 8, 8], w: [64, 16, 3, 3], stride: 1, pad: 1, why: 'narrow rows, cout % 64 == 0' },
  { x: [N, 8, 6, 6], w: [12, 8, 3, 3], stride: 1, pad: 1, why: 'grid mode, odd cout' },
  { x: [N, 16, 16, 16], w: [32, 16, 3, 3], stride: 2, pad: 1, why: 'stride-2 phases' },
  { x: [N, 3, 13, 13], w: [5, 3, 3, 3], stride: 1, pad: 1, why: 'c < MR (GEMM backward-data)' },
  { x: [N, 4, 17, 17], w: [6, 4, 5, 5], stride: 5, pad: 2, why: 'stride 5 (GEMM fallback)' },
  { x: [N, 16, 16, 16], w: [32, 16, 1, 1], stride: 2, pad: 0, why: '1x1 stride-2 shortcut' },
];

interface Run {
  got: Float32Array[];
  partsForward: number;
  partsBackward: number;
}

function convRun(c: Case, xd: Float32Array, wd: Float32Array, bd: Float32Array, dyd: Float32Array, yShape: number[]): Run {
  const X = tensor(xd, c.x, true), W = tensor(wd, c.w, true), B = tensor(bd, [c.w[0]], true);
  const seed = Tensor.fromArray(dyd, yShape);
  native.exec_stats(true);
  const y = ops.conv2d(X, W, B, { stride: c.stride, padding: c.pad });
  const partsForward = native.exec_stats(true).maxParts;
  backward(y, seed);
  const partsBackward = native.exec_stats(true).maxParts;
  return { got: [y.toFloat32(), X.grad!.toFloat32(), W.grad!.toFloat32(), B.grad!.toFloat32()], partsForward, partsBackward };
}

function linearRun(n: number, inF: number, outF: number, xd: Float32Array, wd: Float32Array, dyd: Float32Array): Run {
  const X = tensor(xd, [n, inF], true), W = tensor(wd, [outF, inF], true);
  const seed = Tensor.fromArray(dyd, [n, outF]);
  native.exec_stats(true);
  const y = ops.linear(X, W, null);
  const partsForward = native.exec_stats(true).maxParts;
  backward(y, seed);
  const partsBackward = native.exec_stats(true).maxParts;
  return { got: [y.toFloat32(), X.grad!.toFloat32(), W.grad!.toFloat32()], partsForward, partsBackward };
}

const initial = runtimeInfo().threads;

t.test(`conv2d and sgemm at ${WIDE} threads equal 1 thread`, async (t) => {
  t.teardown(() => setThreads(initial));
  eachSimd(t, 'wide', (tt: Test) => {
    const rng = new Rng(1010);
    for (const c of convCases) {
      const xd = randn(rng, c.x), wd = randn(rng, c.w, 0.2), bd = randn(rng, [c.w[0]]);
      const oh = Math.floor((c.x[2] + 2 * c.pad - c.w[2]) / c.stride) + 1;
      const ow = Math.floor((c.x[3] + 2 * c.pad - c.w[3]) / c.stride) + 1;
      const yShape = [N, c.w[0], oh, ow], dyd = randn(rng, yShape);
      setThreads(1);
      const one = convRun(c, xd, wd, bd, dyd, yShape).got;
      setThreads(WIDE);
      const run = convRun(c, xd, wd, bd, dyd, yShape), wide = run.got;
      const name = `conv x[${c.x}] w[${c.w}] s${c.stride} p${c.pad} (${c.why})`;
      tt.equal(native.exec_stats().threads, WIDE, `${name}: pool has ${WIDE} workers`);
      tt.equal(run.partsForward, WIDE, `${name}: forward split over all ${WIDE} workers`);
      tt.equal(run.partsBackward, WIDE, `${name}: backward split over all ${WIDE} workers`);
      const k = c.w[1] * c.w[2] * c.w[3], kw = N * oh * ow;
      close(tt, wide[0], one[0], { atol: 1e-6 * k, rtol: 1e-5 }, `${name}: y`);
      close(tt, wide[1], one[1], { atol: 1e-6 * c.w[0] * c.w[2] * c.w[3], rtol: 1e-5 }, `${name}: dx`);
      close(tt, wide[2], one[2], { atol: 1e-6 * kw, rtol: 1e-5 }, `${name}: dw`);
      close(tt, wide[3], one[3], { atol: 1e-6 * kw, rtol: 1e-5 }, `${name}: db`);
    }
    // SGEMM: y = x w^T splits N = outF columns (or M rows) over the workers; dx, dw likewise
    for (const [n, inF, outF] of [[96, 200, 500], [500, 64, 10], [64, 256, 1000]]) {
      const xd = randn(rng, [n, inF]), wd = randn(rng, [outF, inF], 0.1), dyd = randn(rng, [n, outF]);
      setThreads(1);
      const one = linearRun(n, inF, outF, xd, wd, dyd).got;
      setThreads(WIDE);
      const run = linearRun(n, inF, outF, xd, wd, dyd), wide = run.got;
      const name = `linear [${n},${inF}]->${outF}`;
      tt.equal(run.partsForward, WIDE, `${name}: forward split over all ${WIDE} workers`);
      tt.equal(run.partsBackward, WIDE, `${name}: backward split over all ${WIDE} workers`);
      close(tt, wide[0], one[0], { atol: 1e-6 * inF, rtol: 1e-5 }, `${name}: y`);
      close(tt, wide[1], one[1], { atol: 1e-6 * outF, rtol: 1e-5 }, `${name}: dx`);
      close(tt, wide[2], one[2], { atol: 1e-6 * n, rtol: 1e-5 }, `${name}: dw`);
    }
    setThreads(initial);
  });
});
