// Plain float64 reference implementations of every op forward: the living definition of what
// the kernels must compute. Inputs are any numeric arrays (usually the float32 data handed to
// the engine); outputs are Float64Array (or a number for the losses). Layout is NCHW / OIHW
// contiguous row-major, exactly as in kernels/include/m2kd_kernels.h. No cleverness here:
// the loops read like the formulas.

export type Arr = ArrayLike<number>;

export function outSize(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

/** conv2d: x [n,c,h,w], w [o,c,kh,kw], bias [o] | null -> y [n,o,oh,ow]. */
export function conv2d(
  x: Arr, xs: readonly number[], w: Arr, ws: readonly number[], bias: Arr | null, stride: number, pad: number,
): { y: Float64Array; shape: number[] } {
  const [n, c, h, wd] = xs;
  const [o, ci, kh, kw] = ws;
  if (ci !== c) throw new Error('reference conv2d: channel mismatch');
  const oh = outSize(h, kh, stride, pad), ow = outSize(wd, kw, stride, pad);
  const y = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = bias ? bias[oc] : 0;
          for (let ic = 0; ic < c; ic++)
            for (let u = 0; u < kh; u++) {
              const r = i * stride - pad + u;
              if (r < 0 || r >= h) continue;
              for (let v = 0; v < kw; v++) {
                const q = j * stride - pad + v;
                if (q < 0 || q >= wd) continue;
                s += x[((b * c + ic) * h + r) * wd + q] * w[((oc * c + ic) * kh + u) * kw + v];
              }
            }
          y[((b * o + oc) * oh + i) * ow + j] = s;
        }
  return { y, shape: [n, o, oh, ow] };
}

/** linear: x [n,in], w [out,in], bias [out] | null -> y [n,out] = x w^T + b. */
export function linear(x: Arr, n: number, inF: number, w: Arr, outF: number, bias: Arr | null): Float64Array {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++)
    for (let k = 0; k < outF; k++) {
      let s = bias ? bias[k] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[k * inF + i];
      y[r * outF + k] = s;
    }
  return y;
}

export interface BnTrainResult {
  y: Float64Array;
  /** batch mean per channel */
  mean: Float64Array;
  /** biased batch variance per channel (used to normalise) */
  varBiased: Float64Array;
  /** unbiased batch variance per channel (used for the running statistic) */
  varUnbiased: Float64Array;
  /** running statistics after the update (null when none were given) */
  runningMean: Float64Array | null;
  runningVar: Float64Array | null;
}

/**
 * Batch norm 2d, training mode, over x [n,c,hw]: normalise with the batch mean and the biased
 * variance, y = gamma (x - mean) / sqrt(var + eps) + beta (then relu if asked); running stats
 * r <- (1 - momentum) r + momentum * stat, with the UNBIASED variance (PyTorch semantics).
 * Two-pass statistics in float64 (no cancellation).
 */
export function batchNormTrain(
  x: Arr, n: number, c: number, hw: number, gamma: Arr, beta: Arr, eps: number, momentum: number,
  runningMean: Arr | null, runningVar: Arr | null, relu = false,
): BnTrainResult {
  const m = n * hw;
  const mean = new Float64Array(c), varB = new Float64Array(c), varU = new Float64Array(c);
  const y = new Float64Array(n * c * hw);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) s += x[(b * c + ch) * hw + i];
    const mu = s / m;
    let ss = 0;
    for (let b = 0; b < n; b++)
      for (let i = 0; i < hw; i++) {
        const d = x[(b * c + ch) * hw + i] - mu;
        ss += d * d;
      }
    mean[ch] = mu;
    varB[ch] = ss / m;
    varU[ch] = m > 1 ? ss / (m - 1) : 0;
    const invstd = 1 / Math.sqrt(varB[ch] + eps);
    for (let b = 0; b < n; b++)
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const v = gamma[ch] * (x[k] - mu) * invstd + beta[ch];
        y[k] = relu ? Math.max(0, v) : v;
      }
  }
  let rm: Float64Array | null = null, rv: Float64Array | null = null;
  if (runningMean && runningVar) {
    rm = new Float64Array(c);
    rv = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      rm[ch] = (1 - momentum) * runningMean[ch] + momentum * mean[ch];
      rv[ch] = (1 - momentum) * runningVar[ch] + momentum * varU[ch];
    }
  }
  return { y, mean, varBiased: varB, varUnbiased: varU, runningMean: rm, runningVar: rv };
}

/** Batch norm 2d, eval mode: y = gamma (x - rm) / sqrt(rv + eps) + beta (then relu if asked). */
export function batchNormEval(
  x: Arr, n: number, c: number, hw: number, gamma: Arr, beta: Arr, runningMean: Arr, runningVar: Arr,
  eps: number, relu = false,
): Float64Array {
  const y = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      const invstd = 1 / Math.sqrt(runningVar[ch] + eps);
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const v = gamma[ch] * (x[k] - runningMean[ch]) * invstd + beta[ch];
        y[k] = relu ? Math.max(0, v) : v;
      }
    }
  return y;
}

export function relu(x: Arr): Float64Array {
  return Float64Array.from(x, (v) => (v > 0 ? v : 0));
}

/** Logistic sigmoid, evaluated without overflow for any x. */
export function sigmoidScalar(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

export function sigmoid(x: Arr): Float64Array {
  return Float64Array.from(x, sigmoidScalar);
}

/** Elementwise a*x + b*z. */
export function axpby(a: number, x: Arr, b: number, z: Arr): Float64Array {
  return Float64Array.from(x, (v, i) => a * v + b * z[i]);
}

export function mul(x: Arr, z: Arr): Float64Array {
  return Float64Array.from(x, (v, i) => v * z[i]);
}

export function affine(x: Arr, a: number, b: number): Float64Array {
  return Float64Array.from(x, (v) => a * v + b);
}

export function sum(x: Arr): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

export function mean(x: Arr): number {
  return sum(x) / x.length;
}

/**
 * Option-A shortcut: x[:, :, ::s, ::s] with channels zero-padded (padBefore, padAfter).
 * x [n,c,h,w] -> y [n, c+pb+pa, ceil(h/s), ceil(w/s)].
 */
export function shortcutA(
  x: Arr, xs: readonly number[], stride: number, padBefore: number, padAfter: number,
): { y: Float64Array; shape: number[] } {
  const [n, c, h, w] = xs;
  const oh = Math.ceil(h / stride), ow = Math.ceil(w / stride);
  const oc = c + padBefore + padAfter;
  const y = new Float64Array(n * oc * oh * ow);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++)
          y[((b * oc + ch + padBefore) * oh + i) * ow + j] = x[((b * c + ch) * h + i * stride) * w + j * stride];
  return { y, shape: [n, oc, oh, ow] };
}

/** Global average pool: x [n,c,h,w] -> y [n,c]. */
export function globalAvgPool(x: Arr, n: number, c: number, hw: number): Float64Array {
  const y = new Float64Array(n * c);
  for (let k = 0; k < n * c; k++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[k * hw + i];
    y[k] = s / hw;
  }
  return y;
}

/**
 * Max pool with a square k x k window and stride; padding positions are -infinity (padding
 * never wins, even over all-negative inputs). Returns y and the argmax (flat index in
 * the input plane h*w of the first maximum in row-major window order).
 */
export function maxPool2d(
  x: Arr, xs: readonly number[], k: number, stride: number, pad: number,
): { y: Float64Array; argmax: Int32Array; shape: number[] } {
  const [n, c, h, w] = xs;
  const oh = outSize(h, k, stride, pad), ow = outSize(w, k, stride, pad);
  const y = new Float64Array(n * c * oh * ow);
  const argmax = new Int32Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let best = -Infinity, arg = -1;
        for (let u = 0; u < k; u++) {
          const r = i * stride - pad + u;
          if (r < 0 || r >= h) continue;
          for (let v = 0; v < k; v++) {
            const q = j * stride - pad + v;
            if (q < 0 || q >= w) continue;
            const val = x[p * h * w + r * w + q];
            if (val > best) {
              best = val;
              arg = r * w + q;
            }
          }
        }
        y[(p * oh + i) * ow + j] = best;
        argmax[(p * oh + i) * ow + j] = arg;
      }
  return { y, argmax, shape: [n, c, oh, ow] };
}

/** log(1 + e^v) without overflow. */
export function softplus(v: number): number {
  return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
}

/**
 * Sigmoid BCE with logits against soft targets: (1/denom) sum [ -t log s(x) - (1-t) log(1-s(x)) ]
 * = (1/denom) sum [ softplus(x) - x t ]. denom defaults to the element count.
 */
export function bceWithLogits(x: Arr, t: Arr, denom = x.length): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += softplus(x[i]) - x[i] * t[i];
  return s / denom;
}

/** d bce / d x = (sigmoid(x) - t) / denom. */
export function bceWithLogitsGrad(x: Arr, t: Arr, denom = x.length): Float64Array {
  return Float64Array.from(x, (v, i) => (sigmoidScalar(v) - t[i]) / denom);
}

/** Row-wise softmax of x [n,m] (max-shifted). */
export function softmax(x: Arr, n: number, m: number): Float64Array {
  const p = new Float64Array(n * m);
  for (let r = 0; r < n; r++) {
    let mx = -Infinity;
    for (let k = 0; k < m; k++) mx = Math.max(mx, x[r * m + k]);
    let s = 0;
    for (let k = 0; k < m; k++) s += Math.exp(x[r * m + k] - mx);
    for (let k = 0; k < m; k++) p[r * m + k] = Math.exp(x[r * m + k] - mx) / s;
  }
  return p;
}

/** Softmax cross-entropy with integer labels, mean over the n rows: mean_r [lse(x_r) - x_r[label]]. */
export function softmaxCrossEntropy(x: Arr, n: number, m: number, labels: Arr): number {
  let total = 0;
  for (let r = 0; r < n; r++) {
    let mx = -Infinity;
    for (let k = 0; k < m; k++) mx = Math.max(mx, x[r * m + k]);
    let s = 0;
    for (let k = 0; k < m; k++) s += Math.exp(x[r * m + k] - mx);
    total += mx + Math.log(s) - x[r * m + labels[r]];
  }
  return total / n;
}

/** d ce / d x = (softmax(x) - onehot(labels)) / n. */
export function softmaxCrossEntropyGrad(x: Arr, n: number, m: number, labels: Arr): Float64Array {
  const g = softmax(x, n, m);
  for (let r = 0; r < n; r++) g[r * m + labels[r]] -= 1;
  for (let i = 0; i < g.length; i++) g[i] /= n;
  return g;
}

/** x[:, start:end] of a row-major [n,m] matrix. */
export function sliceColumns(x: Arr, n: number, m: number, start: number, end: number): Float64Array {
  const cols = end - start;
  const y = new Float64Array(n * cols);
  for (let r = 0; r < n; r++) for (let k = 0; k < cols; k++) y[r * cols + k] = x[r * m + start + k];
  return y;
}

/** Concatenation of [n, m_i] matrices along the columns. */
export function concatColumns(xs: { data: Arr; cols: number }[], n: number): Float64Array {
  const m = xs.reduce((s, x) => s + x.cols, 0);
  const y = new Float64Array(n * m);
  let col = 0;
  for (const x of xs) {
    for (let r = 0; r < n; r++) for (let k = 0; k < x.cols; k++) y[r * m + col + k] = x.data[r * x.cols + k];
    col += x.cols;
  }
  return y;
}

/** Horizontal flip of x [n,c,h,w] along w, for samples whose flag is nonzero (null: all). */
export function hflip(x: Arr, xs: readonly number[], flags: ArrayLike<number> | null): Float64Array {
  const [n, c, h, w] = xs;
  const y = new Float64Array(n * c * h * w);
  for (let b = 0; b < n; b++) {
    const flip = flags === null || flags[b] !== 0;
    for (let ch = 0; ch < c; ch++)
      for (let r = 0; r < h; r++)
        for (let q = 0; q < w; q++) {
          const base = ((b * c + ch) * h + r) * w;
          y[base + q] = x[base + (flip ? w - 1 - q : q)];
        }
  }
  return y;
}

// ------------------------------------------------------------------ reference backward
// (for analytic-vs-reference gradient checks on shapes too large for finite differences)

/** Gradients of conv2d given dy [n,o,oh,ow]: dx, dw, db (sum of dy over n, oh, ow). */
export function conv2dBackward(
  x: Arr, xs: readonly number[], w: Arr, ws: readonly number[], dy: Arr, stride: number, pad: number,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [n, c, h, wd] = xs;
  const [o, , kh, kw] = ws;
  const oh = outSize(h, kh, stride, pad), ow = outSize(wd, kw, stride, pad);
  const dx = new Float64Array(n * c * h * wd), dw = new Float64Array(o * c * kh * kw), db = new Float64Array(o);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          const g = dy[((b * o + oc) * oh + i) * ow + j];
          db[oc] += g;
          for (let ic = 0; ic < c; ic++)
            for (let u = 0; u < kh; u++) {
              const r = i * stride - pad + u;
              if (r < 0 || r >= h) continue;
              for (let v = 0; v < kw; v++) {
                const q = j * stride - pad + v;
                if (q < 0 || q >= wd) continue;
                const xi = ((b * c + ic) * h + r) * wd + q, wi = ((oc * c + ic) * kh + u) * kw + v;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
        }
  return { dx, dw, db };
}

/** Gradients of linear given dy [n,out]. */
export function linearBackward(
  x: Arr, n: number, inF: number, w: Arr, outF: number, dy: Arr,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(n * inF), dw = new Float64Array(outF * inF), db = new Float64Array(outF);
  for (let r = 0; r < n; r++)
    for (let k = 0; k < outF; k++) {
      const g = dy[r * outF + k];
      db[k] += g;
      for (let i = 0; i < inF; i++) {
        dx[r * inF + i] += g * w[k * inF + i];
        dw[k * inF + i] += g * x[r * inF + i];
      }
    }
  return { dx, dw, db };
}

/** Gradients of train-mode batch norm (optionally with the fused relu) given dy. */
export function batchNormTrainBackward(
  x: Arr, n: number, c: number, hw: number, gamma: Arr, beta: Arr, eps: number, dy: Arr, relu = false,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const fwd = batchNormTrain(x, n, c, hw, gamma, beta, eps, 0, null, null, relu);
  const m = n * hw;
  const dx = new Float64Array(n * c * hw), dgamma = new Float64Array(c), dbeta = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const mu = fwd.mean[ch], invstd = 1 / Math.sqrt(fwd.varBiased[ch] + eps);
    let sg = 0, sgx = 0;
    for (let b = 0; b < n; b++)
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const g = relu && !(fwd.y[k] > 0) ? 0 : dy[k];
        const xh = (x[k] - mu) * invstd;
        sg += g;
        sgx += g * xh;
      }
    dbeta[ch] = sg;
    dgamma[ch] = sgx;
    for (let b = 0; b < n; b++)
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const g = relu && !(fwd.y[k] > 0) ? 0 : dy[k];
        const xh = (x[k] - mu) * invstd;
        dx[k] = (gamma[ch] * invstd / m) * (m * g - sg - xh * sgx);
      }
  }
  return { dx, dgamma, dbeta };
}
