// Loads the N-API addon and types its exports. This is the only file that touches the addon
// object directly; everything above it goes through the engine.
// Which build: the CUDA build (build-cuda/Release/m2kd.node, `npm run build:cuda`) when it
// exists and loads, else the CPU build found by node-gyp-build (build/Release or a prebuild).
// When the CUDA build exists but cannot be loaded, a one-line message on stderr says why and the
// CPU build is used. Env M2KD_ADDON=cpu forces the CPU build, M2KD_ADDON=cuda makes a failing
// CUDA build an error, M2KD_ADDON=<path> loads that file. A CUDA build on a machine without a
// GPU or driver still loads and runs on the CPU (cuda_info().available = false says why).
import * as fs from 'fs';
import * as path from 'path';

/** Handles are integers naming native buffers; -1 means "none" for optional arguments. */
export type Handle = number;

export interface MemoryStats {
  liveBytes: number;
  liveBlocks: number;
  pooledBytes: number;
  pooledBlocks: number;
  peakLiveBytes: number;
  osAllocations: number;
  /** CUDA builds only: the caching device allocator (bytes by size class held) */
  deviceLiveBytes?: number;
  deviceLiveBlocks?: number;
  devicePooledBytes?: number;
  devicePeakLiveBytes?: number;
  deviceAllocations?: number;
}

export interface RuntimeInfo {
  isa: 'scalar' | 'avx2' | 'avx512';
  bestIsa: 'scalar' | 'avx2' | 'avx512';
  threads: number;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  ops: number;
}

/** exec_stats(): the CPU pool size and the widest parallel_for split since the last reset */
export interface ExecStats {
  threads: number;
  maxParts: number;
}

export interface CudaInfo {
  compiled: boolean;
  available: boolean;
  /** why the backend is unavailable ('' when available) */
  reason: string;
  driverVersion?: number;
  runtimeVersion?: number;
  deviceName?: string;
  computeCapability?: string;
  smCount?: number;
  totalMemory?: number;
  /** architectures the kernels were compiled for, e.g. "80,90" */
  archs?: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface NativeAddon {
  alloc(dtype: string, count: number, zero: boolean, device?: 'cpu' | 'cuda'): Handle;
  to_device(h: Handle, device: 'cpu' | 'cuda'): Handle;
  device_of(h: Handle): 'cpu' | 'cuda';
  cuda_info(): CudaInfo;
  cuda_synchronize(): void;
  cuda_set_sync(on: boolean): void;
  free(h: Handle): void;
  write(h: Handle, data: Float32Array | Int32Array | Uint8Array, offset?: number): void;
  read(h: Handle, offset?: number, count?: number): Float32Array | Int32Array | Uint8Array;
  copy(dst: Handle, dstOffset: number, src: Handle, srcOffset: number, count: number): void;
  memory_stats(): MemoryStats;
  empty_cache(): void;
  runtime_info(): RuntimeInfo;
  set_isa(level: string): void;
  set_threads(n: number): void;
  /** reads (and with reset=true, then resets) the widest parallel split */
  exec_stats(reset?: boolean): ExecStats;
  sum_all(x: Handle, count: number): number;
  bce_logits_forward(x: Handle, t: Handle, count: number, denom: number): number;
  softmax_ce_forward(x: Handle, labels: Handle, p: Handle, n: number, m: number): number;
  [op: string]: (...args: any[]) => any;
}

const root = path.resolve(__dirname, '..', '..');

/** Where the CUDA build of the addon is looked for. */
export const cudaAddonPath = path.join(root, 'build-cuda', 'Release', 'm2kd.node');

function loadCpu(): { addon: NativeAddon; path: string } {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const gypBuild = require('node-gyp-build') as { (dir: string): NativeAddon; path(dir: string): string };
  const file = gypBuild.path(root);
  return { addon: require(file) as NativeAddon, path: file };
}

function load(): { addon: NativeAddon; path: string; fallback: string } {
  const want = (process.env.M2KD_ADDON ?? 'auto').trim();
  if (want === 'cpu') return { ...loadCpu(), fallback: 'M2KD_ADDON=cpu' };
  const file = want !== 'auto' && want !== 'cuda' && want !== '' ? path.resolve(want) : cudaAddonPath;
  if (!fs.existsSync(file)) {
    if (want !== 'auto' && want !== '') throw new Error(`m2kd: addon ${file} not found (M2KD_ADDON=${want}; run npm run build:cuda)`);
    return { ...loadCpu(), fallback: 'no CUDA build (npm run build:cuda)' };
  }
  try {
    return { addon: require(file) as NativeAddon, path: file, fallback: '' };
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    if (want !== 'auto' && want !== '') throw new Error(`m2kd: cannot load ${file}: ${why}`);
    process.stderr.write(`m2kd: the CUDA build ${file} failed to load (${why}); using the CPU build\n`);
    return { ...loadCpu(), fallback: `CUDA build failed to load: ${why}` };
  }
}

const loaded = load();
/** The addon. */
export const native: NativeAddon = loaded.addon;
/** Absolute path of the loaded addon binary. */
export const addonPath: string = loaded.path;
/** Why the CPU build was loaded instead of the CUDA build ('' when the CUDA build is loaded). */
export const addonFallback: string = loaded.fallback;
