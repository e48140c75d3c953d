// The fused masked convolution (inference only): K models that share one weight tensor and a
// u8 step mask, each using the weights with 1 <= m <= steps[k], with a per-model epilogue
// (folded eval-mode BatchNorm scale/shift, optional residual, ReLU). Exact semantics:
// kernels/cpu/masked_conv_impl.inc. A MaskedConvPlan (taps sorted by step) can be built once
// per weight/mask pair and reused while the weights it was built from do not change.
// On cuda the GPU kernel needs no plan: a plan there holds device copies of the weight and its
// mask, and the op calls masked_conv_forward_cuda (kernels/cuda/masked_conv.cu, docs/cuda.md).
import { Tensor, keep } from '../tensor';
import { native } from '../../native';
import { needsGrad } from '../autograd';
import { checkTensors, checkRank, checkInt, fail, shapeStr } from './check';
import { conv2dOutputSize } from './conv';

export const MASKED_CONV_MAX_STEP = 255;

/** Per output channel, the taps of a weight sorted by their step; owns a native buffer. */
export class MaskedConvPlan {
  readonly weightShape: readonly number[];
  private buf: Tensor | null;
  /** cuda: copies of the weight and mask instead of a host-built plan */
  private dev: { w: Tensor; mask: Tensor } | null = null;

  /** Copies the weight values: later changes to w are not seen by the plan. */
  constructor(w: Tensor, mask: Tensor) {
    const op = 'MaskedConvPlan';
    checkTensors(op, [w]);
    checkTensors(op, [mask], 'u8');
    checkRank(op, w, 4, 'weight');
    if (mask.rank !== 4 || !mask.shape.every((d, i) => d === w.shape[i]))
      fail(op, `mask must have the weight's shape ${shapeStr(w)}, got ${shapeStr(mask)}`, w, mask);
    if (mask.device !== w.device) fail(op, 'weight and mask are on different devices', w, mask);
    const [o, c, kh, kw] = w.shape;
    if (w.device === 'cuda') {
      this.buf = null;
      this.dev = { w: keep(w.clone()), mask: keep(mask.clone()) };
      this.weightShape = [...w.shape];
      return;
    }
    const ints = native.masked_conv_plan_ints(o, c, kh, kw) as number;
    this.buf = keep(Tensor.empty([ints], { dtype: 'i32', device: w.device }));
    native.masked_conv_build_plan(w.handle, mask.handle, this.buf.handle, o, c, kh, kw);
    this.weightShape = [...w.shape];
  }

  get disposed(): boolean {
    return this.buf === null && this.dev === null;
  }

  /** @internal */
  get handle(): number {
    if (!this.buf) throw new Error('MaskedConvPlan: used after dispose()');
    return this.buf.handle;
  }

  /** @internal the device copies (cuda plans only) */
  get deviceBuffers(): { w: Tensor; mask: Tensor } | null {
    return this.dev;
  }

  /** bytes of native memory held */
  get bytes(): number {
    if (this.dev) return this.dev.w.size * 4 + this.dev.mask.size;
    return this.buf ? this.buf.size * 4 : 0;
  }

  dispose(): void {
    if (this.buf) this.buf.dispose();
    this.buf = null;
    if (this.dev) {
      this.dev.w.dispose();
      this.dev.mask.dispose();
    }
    this.dev = null;
  }
}

export interface MaskedConv2dOptions {
  stride?: number;
  padding?: number;
  /** folded BatchNorm scale [K, O] */
  scale: Tensor;
  /** folded BatchNorm shift [K, O] */
  shift: Tensor;
  /** added before the activation, [K, N, O, Ho, Wo] */
  residual?: Tensor | null;
  relu?: boolean;
  /** x is one [N, C, H, W] batch shared by all K models (the first layer) */
  sharedInput?: boolean;
  /** a plan built from (w, mask); built (and freed) per call when absent */
  plan?: MaskedConvPlan;
}

/**
 * y[k] = act(scale[k] * conv(x_k, w * [1 <= mask <= steps[k]]) + shift[k] + residual[k]),
 * computed by skipping the weights outside each model's range. x: [K, N, C, H, W] (or
 * [N, C, H, W] with sharedInput), w: [O, C, kh, kw], mask: u8 like w. Returns [K, N, O, Ho, Wo].
 * Inference only: throws if called with gradient recording on and an input that requires a
 * gradient (wrap the call in noGrad()).
 */
export function maskedConv2d(
  x: Tensor,
  w: Tensor,
  mask: Tensor,
  steps: Int32Array | readonly number[],
  opts: MaskedConv2dOptions,
): Tensor {
  const op = 'maskedConv2d';
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? 0;
  const shared = opts.sharedInput ?? false;
  const residual = opts.residual ?? null;
  if (!opts || !opts.scale || !opts.shift) throw new Error(`${op}: opts.scale and opts.shift ([K, O]) are required`);
  checkTensors(op, [x, w, opts.scale, opts.shift, residual]);
  checkTensors(op, [mask], 'u8');
  if (mask.device !== x.device) fail(op, 'mask is on another device', x, mask);
  checkInt(op, 'stride', stride, 1);
  checkInt(op, 'padding', pad, 0);
  checkRank(op, w, 4, 'weight');
  if (mask.rank !== 4 || !mask.shape.every((d, i) => d === w.shape[i]))
    fail(op, `mask must have the weight's shape ${shapeStr(w)}, got ${shapeStr(mask)}`, w, mask);
  const st = steps instanceof Int32Array ? steps : Int32Array.from(steps as number[]);
  const K = st.length;
  if (K === 0) throw new Error(`${op}: steps is empty (need one step id per model)`);
  for (let k = 0; k < K; k++)
    if (!Number.isInteger(st[k]) || st[k] < 0 || st[k] > MASKED_CONV_MAX_STEP || st[k] !== (steps as ArrayLike<number>)[k])
      throw new Error(`${op}: steps[${k}] = ${(steps as ArrayLike<number>)[k]} must be an integer in [0, ${MASKED_CONV_MAX_STEP}]`);
  let n: number, c: number, h: number, wd: number;
  if (shared) {
    checkRank(op, x, 4, 'shared input');
    [n, c, h, wd] = x.shape;
  } else {
    checkRank(op, x, 5, 'input');
    if (x.shape[0] !== K) fail(op, `input holds ${x.shape[0]} models but steps has ${K} entries`, x);
    [, n, c, h, wd] = x.shape;
  }
  const [o, ci, kh, kw] = w.shape;
  if (ci !== c) fail(op, `input has ${c} channels but the weight expects ${ci}`, x, w);
  if (n === 0 || c === 0 || o === 0 || h === 0 || wd === 0) fail(op, 'empty dimension', x, w);
  if (h + 2 * pad < kh || wd + 2 * pad < kw) fail(op, 'kernel larger than the padded input', x, w);
  for (const [name, t] of [['scale', opts.scale], ['shift', opts.shift]] as const)
    if (t.rank !== 2 || t.shape[0] !== K || t.shape[1] !== o) fail(op, `${name} must have shape [${K},${o}], got ${shapeStr(t)}`, t);
  const oh = conv2dOutputSize(h, kh, stride, pad), ow = conv2dOutputSize(wd, kw, stride, pad);
  const yShape = [K, n, o, oh, ow];
  if (residual && !(residual.rank === 5 && residual.shape.every((d, i) => d === yShape[i])))
    fail(op, `residual must have shape [${yShape.join(',')}], got ${shapeStr(residual)}`, residual);
  if (needsGrad(x, w, opts.scale, opts.shift, residual))
    throw new Error(`${op}: inference only (no gradient); call it inside noGrad() or with inputs that do not require gradients`);
  let plan = opts.plan;
  if (plan) {
    if (plan.disposed) throw new Error(`${op}: the plan was disposed`);
    if (!plan.weightShape.every((d, i) => d === w.shape[i]))
      fail(op, `plan was built for a weight [${plan.weightShape.join(',')}]`, w);
  }
  if (x.device === 'cuda') {
    // the GPU kernel applies the mask while loading weight tiles: no plan (a given one holds copies)
    const dv = plan?.deviceBuffers ?? { w, mask };
    const y = Tensor.empty(yShape, { device: x.device });
    try {
      native.masked_conv_forward_cuda(dv.w.handle, dv.mask.handle, x.handle, st, opts.scale.handle, opts.shift.handle,
        residual ? residual.handle : -1, y.handle, K, n, c, h, wd, o, kh, kw, stride, pad, opts.relu ?? false, shared);
    } catch (e) {
      y.dispose();
      throw e;
    }
    return y;
  }
  const own = plan ? null : new MaskedConvPlan(w, mask);
  if (own) plan = own;
  try {
    const y = Tensor.empty(yShape, { device: x.device });
    try {
      native.masked_conv_forward(plan!.handle, x.handle, st, opts.scale.handle, opts.shift.handle, residual ? residual.handle : -1,
        y.handle, K, n, c, h, wd, o, kh, kw, stride, pad, opts.relu ?? false, shared);
    } catch (e) {
      y.dispose();
      throw e;
    }
    return y;
  } finally {
    if (own) own.dispose();
  }
}
