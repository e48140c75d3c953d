// Finite-difference gradient checker. For an op f and its inputs, L = sum(f(x) * R) with a
// fixed random R of f's output shape (so every output element matters; backward is seeded
// with R itself). Analytic gradients (autograd backward) are compared with central
// differences in float64: each float32 input element is perturbed by +-eps (the actually
// representable float32 step is used as the denominator) and L is re-evaluated in float64
// from the float32 outputs. Also checks that gradients ACCUMULATE: a second forward+backward
// doubles every leaf gradient.
import { Tensor, Rng, noGrad, backward, tidy } from '../src/engine';
import { Test, prod } from './helpers';

export interface GradInput {
  data: Float32Array;
  shape: readonly number[];
  /** default true */
  requiresGrad?: boolean;
  /** i32 inputs (labels) are passed through as they are */
  i32?: Int32Array;
}

export interface GradcheckOptions {
  /** perturbation; default 1e-2 */
  eps?: number;
  /** absolute tolerance, scaled by max(1, max |numeric grad|); default 2e-3 */
  atol?: number;
  /** relative tolerance; default 1e-2 */
  rtol?: number;
  /** seed of R */
  seed?: number;
  /** skip the accumulation check */
  noAccumulate?: boolean;
}

function makeInputs(inputs: GradInput[], withGrad: boolean): Tensor[] {
  return inputs.map((g) =>
    g.i32
      ? Tensor.fromArray(g.i32, g.shape)
      : Tensor.fromArray(g.data, g.shape, { requiresGrad: withGrad && (g.requiresGrad ?? true) }),
  );
}

/** L = sum(y * R) in float64 over the float32 output. */
function dotR(y: Tensor, r: Float32Array): number {
  const v = y.toFloat32();
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * r[i];
  return s;
}

export interface GradcheckResult {
  analytic: Float32Array[];
  numeric: Float64Array[];
}

/**
 * Runs the check and reports one assertion per input that requires grad (plus one for the
 * accumulation check). f must build its output from the given tensors with engine ops.
 */
export function gradcheck(
  t: Test, name: string, f: (xs: Tensor[]) => Tensor, inputs: GradInput[], opts: GradcheckOptions = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-2;
  const atol0 = opts.atol ?? 2e-3;
  const rtol = opts.rtol ?? 1e-2;
  const result: GradcheckResult = { analytic: [], numeric: [] };
  tidy(() => {
    // analytic
    const xs = makeInputs(inputs, true);
    const y0 = f(xs);
    const R = new Rng(opts.seed ?? 1234, 7).normal(y0.size);
    const rT = Tensor.fromArray(R, y0.shape);
    backward(y0, rT);
    const analytic: (Float32Array | null)[] = inputs.map((g, i) => {
      if (g.i32 || !(g.requiresGrad ?? true)) return null;
      const grad = xs[i].grad;
      if (!grad) {
        t.fail(`${name}: input ${i} got no gradient from backward`);
        return null;
      }
      return grad.toFloat32();
    });

    // numeric
    noGrad(() => {
      for (let i = 0; i < inputs.length; i++) {
        if (!analytic[i]) continue;
        const base = inputs[i].data;
        const num = new Float64Array(base.length);
        for (let k = 0; k < base.length; k++) {
          const orig = base[k];
          const plus = Math.fround(orig + eps), minus = Math.fround(orig - eps);
          const data = Float32Array.from(base);
          const evalAt = (v: number): number =>
            tidy(() => {
              data[k] = v;
              const ins = makeInputs(inputs, false);
              ins[i] = Tensor.fromArray(data, inputs[i].shape);
              return dotR(f(ins), R);
            });
          num[k] = (evalAt(plus) - evalAt(minus)) / (plus - minus);
        }
        const a = analytic[i]!;
        let scale = 1;
        for (const v of num) scale = Math.max(scale, Math.abs(v));
        const atol = atol0 * scale;
        let worst = -1, worstExcess = 0, bad = 0, errNorm = 0, refNorm = 0;
        for (let k = 0; k < num.length; k++) {
          const err = Math.abs(a[k] - num[k]);
          errNorm += err * err;
          refNorm += num[k] * num[k];
          const lim = atol + rtol * Math.abs(num[k]);
          if (!(err <= lim)) {
            bad++;
            const ex = err / lim;
            if (worst < 0 || ex > worstExcess || Number.isNaN(ex)) {
              worst = k;
              worstExcess = ex;
            }
          }
        }
        const rel = Math.sqrt(errNorm) / Math.max(Math.sqrt(refNorm), 1e-12);
        const shape = `[${inputs[i].shape.join(',')}]`;
        if (bad === 0) t.pass(`${name}: gradient of input ${i} ${shape} (rel err ${rel.toExponential(1)})`);
        else
          t.fail(
            `${name}: gradient of input ${i} ${shape}: ${bad}/${num.length} off, rel err ${rel.toExponential(2)}; ` +
              `worst [${worst}] analytic ${a[worst]} numeric ${num[worst]}`,
          );
        result.numeric.push(num);
        result.analytic.push(a);
      }
    });

    // accumulation: a second forward + backward adds the same gradient again
    if (!opts.noAccumulate) {
      const y1 = f(xs);
      backward(y1, rT);
      let bad = 0, worstMsg = '';
      for (let i = 0; i < inputs.length; i++) {
        if (!analytic[i]) continue;
        const g2 = xs[i].grad!.toFloat32();
        const g1 = analytic[i]!;
        let scale = 0;
        for (const v of g1) scale = Math.max(scale, Math.abs(v));
        for (let k = 0; k < g1.length; k++) {
          if (!(Math.abs(g2[k] - 2 * g1[k]) <= 1e-5 * scale + 1e-5 * Math.abs(2 * g1[k]))) {
            bad++;
            if (!worstMsg) worstMsg = `input ${i} [${k}]: after two backwards ${g2[k]}, after one ${g1[k]}`;
          }
        }
      }
      if (bad === 0) t.pass(`${name}: gradients accumulate over two backward calls`);
      else t.fail(`${name}: gradients do not accumulate (${bad} elements): ${worstMsg}`);
    }
    for (const x of xs) {
      x.grad?.dispose();
      x.grad = null;
    }
  });
  return result;
}

/** Number of elements of a shape (re-exported for tests building GradInputs). */
export { prod };
