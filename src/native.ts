// Loads the N-API addon (through node-gyp-build, which finds build/Release or a prebuild) and
// types its exports. This is the only file that touches the addon object directly; everything
// above it goes through the engine.
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
}

export interface RuntimeInfo {
  isa: 'scalar' | 'avx2' | 'avx512';
  bestIsa: 'scalar' | 'avx2' | 'avx512';
  threads: number;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  ops: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface NativeAddon {
  alloc(dtype: string, count: number, zero: boolean): Handle;
  free(h: Handle): void;
  write(h: Handle, data: Float32Array | Int32Array | Uint8Array, offset?: number): void;
  read(h: Handle, offset?: number, count?: number): Float32Array | Int32Array | Uint8Array;
  copy(dst: Handle, dstOffset: number, src: Handle, srcOffset: number, count: number): void;
  memory_stats(): MemoryStats;
  empty_cache(): void;
  runtime_info(): RuntimeInfo;
  set_isa(level: string): void;
  set_threads(n: number): void;
  sum_all(x: Handle, count: number): number;
  bce_logits_forward(x: Handle, t: Handle, count: number, denom: number): number;
  softmax_ce_forward(x: Handle, labels: Handle, p: Handle, n: number, m: number): number;
  [op: string]: (...args: any[]) => any;
}

const root = path.resolve(__dirname, '..', '..');

function load(): { addon: NativeAddon; path: string } {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const gypBuild = require('node-gyp-build') as { (dir: string): NativeAddon; path(dir: string): string };
  const file = gypBuild.path(root);
  return { addon: require(file) as NativeAddon, path: file };
}

const loaded = load();
/** The addon. */
export const native: NativeAddon = loaded.addon;
/** Absolute path of the loaded addon binary. */
export const addonPath: string = loaded.path;
