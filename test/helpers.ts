// Small shared helpers of the op tests: SIMD sweeps, seeded inputs, closeness assertions.
import 'tap';
import { Tensor, tidy, Rng, setSimd, availableSimdLevels } from '../src/engine';
import type { SimdLevel } from '../src/engine';

export type Test = tap.Test;

export const LEVELS: SimdLevel[] = availableSimdLevels();
export const BEST: SimdLevel = LEVELS[LEVELS.length - 1];

/**
 * Registers one subtest per available SIMD level; each runs fn with that level set and
 * inside a tidy scope (every tensor it creates is released), then restores the best level.
 */
export function eachSimd(t: Test, name: string, fn: (t: Test, level: SimdLevel) => void): void {
  for (const level of LEVELS)
    t.test(`${name} [${level}]`, async (tt) => {
      setSimd(level);
      try {
        tidy(() => fn(tt, level));
      } finally {
        setSimd(BEST);
      }
    });
}

export function prod(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

export function randn(rng: Rng, shape: readonly number[], std = 1, mean = 0): Float32Array {
  return rng.normal(prod(shape), mean, std);
}

export function uniform(rng: Rng, shape: readonly number[], lo = 0, hi = 1): Float32Array {
  return rng.uniform(prod(shape), lo, hi);
}

/** Values with |v| >= margin (for ops with a kink at 0: relu). */
export function awayFromZero(rng: Rng, shape: readonly number[], margin = 0.05): Float32Array {
  const x = randn(rng, shape);
  for (let i = 0; i < x.length; i++) if (Math.abs(x[i]) < margin) x[i] = x[i] < 0 ? -margin - Math.abs(x[i]) : margin + x[i];
  return x;
}

/** A random arrangement of well separated values (for max pool: no ties, no near-ties). */
export function distinct(rng: Rng, shape: readonly number[], spacing = 0.1): Float32Array {
  const n = prod(shape);
  const perm = rng.permutation(n);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (perm[i] - n / 2) * spacing;
  return x;
}

export function tensor(data: Float32Array, shape: readonly number[], requiresGrad = false): Tensor {
  return Tensor.fromArray(data, shape, { requiresGrad });
}

export interface Tol {
  atol?: number;
  rtol?: number;
}

/**
 * One assertion: |got_i - want_i| <= atol + rtol * |want_i| for every i (and equal lengths,
 * and got finite wherever want is). Reports the worst element on failure.
 */
export function close(t: Test, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol, msg: string): boolean {
  const atol = tol.atol ?? 1e-5, rtol = tol.rtol ?? 1e-4;
  if (got.length !== want.length) return t.fail(`${msg}: length ${got.length} != ${want.length}`);
  let worst = -1, worstExcess = 0, bad = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    const lim = atol + rtol * Math.abs(w);
    const err = Math.abs(g - w);
    const ok = Number.isFinite(w) ? Number.isFinite(g) && err <= lim : Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w));
    if (!ok) {
      bad++;
      const excess = Number.isFinite(err) ? err / lim : Infinity;
      if (worst < 0 || excess > worstExcess) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (bad === 0) return t.pass(msg);
  return t.fail(`${msg}: ${bad}/${got.length} elements off; worst [${worst}] got ${got[worst]} want ${want[worst]} (atol ${atol}, rtol ${rtol})`);
}

/** Exact equality (bitwise for floats, -0 == 0). */
export function same(t: Test, got: ArrayLike<number>, want: ArrayLike<number>, msg: string): boolean {
  return close(t, got, want, { atol: 0, rtol: 0 }, msg);
}

export function shapeOf(x: Tensor): number[] {
  return [...x.shape];
}
