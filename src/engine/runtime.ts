// Runtime controls of the native backend: SIMD level, threads, and a description for `doctor`.
import { native, addonPath, RuntimeInfo } from '../native';

export type SimdLevel = 'scalar' | 'avx2' | 'avx512';

export function runtimeInfo(): RuntimeInfo & { addonPath: string } {
  return { ...native.runtime_info(), addonPath };
}

/** Forces a SIMD level at or below the best the CPU has (also: env M2KD_SIMD). */
export function setSimd(level: SimdLevel): void {
  native.set_isa(level);
}

export function availableSimdLevels(): SimdLevel[] {
  const best = native.runtime_info().bestIsa;
  const all: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  return all.slice(0, all.indexOf(best) + 1);
}

/** Resizes the native thread pool (also: env M2KD_THREADS). */
export function setThreads(n: number): void {
  native.set_threads(n);
}
