// Runtime controls of the native backend: SIMD level, threads, the CUDA backend's state, and a
// description for `doctor`.
import { native, addonPath, addonFallback, cudaAddonPath, RuntimeInfo, CudaInfo } from '../native';

export type SimdLevel = 'scalar' | 'avx2' | 'avx512';

export function runtimeInfo(): RuntimeInfo & { addonPath: string } {
  return { ...native.runtime_info(), addonPath };
}

/**
 * The CUDA backend: whether this addon was compiled with it, whether a device is usable (and
 * why not), driver and runtime versions, device name; plus which addon file was loaded and why
 * the CPU build was used instead of the CUDA build, if it was.
 */
export function cudaInfo(): CudaInfo & { addonPath: string; cudaAddonPath: string; fallback: string } {
  const base: CudaInfo =
    typeof native.cuda_info === 'function'
      ? native.cuda_info()
      : { compiled: false, available: false, reason: 'this addon has no CUDA support' };
  return { ...base, addonPath, cudaAddonPath, fallback: addonFallback };
}

/** Waits until all queued work of `device` is done (no-op for cpu: CPU ops are synchronous). */
export function synchronize(device: 'cpu' | 'cuda' = 'cuda'): void {
  if (device === 'cuda' && typeof native.cuda_synchronize === 'function') native.cuda_synchronize();
}

/** Debugging: synchronise after every CUDA kernel so a fault names its own launch (also: env M2KD_CUDA_SYNC=1). */
export function setCudaSyncLaunches(on: boolean): void {
  if (typeof native.cuda_set_sync === 'function') native.cuda_set_sync(on);
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
