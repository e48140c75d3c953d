// Loads the N-API addon and types its exports. This is the only file that touches the addon
// object directly; everything above it goes through the engine.
// Which build: the CUDA build (build-cuda/Release/m2kd.node, `npm run build:cuda`) when it
// exists and loads, else the CPU build found by node-gyp-build (build/Release or a prebuild).
// When the CUDA build exists but cannot be loaded, a one-line message on stderr says why and the
// CPU build is used. Env M2KD_ADDON=cpu forces the CPU build, M2KD_ADDON=cuda makes a failing
// CUDA build an error, M2KD_ADDON=cuda-emu loads the emulated-device build
// (build-cuda-emu/Release/m2kd.node, `npm run build:cuda-emu`), M2KD_ADDON=<path> loads that file. A CUDA build on a machine without a
// GPU or driver still loads and runs on the CPU (cuda_info().available = false says why).
import * as fs from 'fs';
import * as path from 'path';

declare const handleBrand: unique symbol;
/**
 * Handles are integers naming native buffers. The brand keeps a plain number (a size, a stride)
 * from standing where a buffer is expected: a call with its arguments out of order fails to compile.
 */
export type Handle = number & { readonly [handleBrand]: true };
/** An optional buffer: a handle, or -1 for "none". */
export type OptHandle = Handle | -1;

/** conv2d geometry, in the order the addon reads it. */
export type Conv2dDims = [n: number, c: number, h: number, w: number, o: number, kh: number, kw: number, stride: number, pad: number];
/** max_pool2d geometry, in the order the addon reads it. */
export type Pool2dDims = [n: number, c: number, h: number, w: number, kernel: number, stride: number, pad: number];
/** option-A shortcut geometry, in the order the addon reads it. */
export type ShortcutDims = [n: number, c: number, h: number, w: number, stride: number, padBefore: number, padAfter: number];
/** Fused masked convolution geometry and epilogue flags (after the buffers), in the addon's order. */
export type MaskedConvDims = [
  k: number, n: number, c: number, h: number, w: number, o: number, kh: number, kw: number,
  stride: number, pad: number, relu: boolean, shared: boolean,
  // CPU only, optional: the bank's blocked layout (ops/maskedConv.ts MaskedBlocked) and the position tile
  inBlocked?: boolean, outBlocked?: boolean, outPad?: number, posTile?: number,
  // the padding a blocked x is stored with (>= pad; default pad)
  inPad?: number,
];

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

/** copy_stats(): host <-> device transfers (h2d, d2h copies and a kernel's value read back) */
export interface HostCopyStats {
  h2d: number;
  d2h: number;
  h2dBytes: number;
  d2hBytes: number;
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

/**
 * Every entry point of the addon, one typed signature each, in the order the binding reads its
 * arguments (native/ops_<op>.cc). Buffers are handles; "+=" marks outputs that accumulate.
 */
export interface NativeAddon {
  // storage and runtime (native/addon.cc, native/storage.cc, native/exec.cc)
  alloc(dtype: 'f32' | 'i32' | 'u8', count: number, zero: boolean, device?: 'cpu' | 'cuda'): Handle;
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
  /** host <-> device transfers since load (or the last reset); zeros in a CPU-only build */
  copy_stats(reset?: boolean): HostCopyStats;
  empty_cache(): void;
  runtime_info(): RuntimeInfo;
  set_isa(level: string): void;
  set_threads(n: number): void;

  // gemm (native/ops_gemm.cc): C = alpha op(A) op(B) + beta C, row-major
  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: Handle, lda: number,
    B: Handle, ldb: number, beta: number, C: Handle, ldc: number): void;

  // conv2d (native/ops_conv2d.cc)
  conv2d_forward(x: Handle, w: Handle, bias: OptHandle, y: Handle, ...dims: Conv2dDims): void;
  /** dx += */
  conv2d_backward_data(dy: Handle, w: Handle, dx: Handle, ...dims: Conv2dDims): void;
  /** dw +=, db += */
  conv2d_backward_weight(x: Handle, dy: Handle, dw: Handle, db: OptHandle, ...dims: Conv2dDims): void;

  // linear (native/ops_linear.cc), w[out, in]
  linear_forward(x: Handle, w: Handle, bias: OptHandle, y: Handle, n: number, inFeatures: number, outFeatures: number): void;
  /** all += */
  linear_backward(x: Handle, w: Handle, dy: Handle, dx: OptHandle, dw: OptHandle, db: OptHandle,
    n: number, inFeatures: number, outFeatures: number): void;

  // batchnorm (native/ops_batchnorm.cc), x viewed as [n, c, hw]
  batchnorm2d_forward_train(x: Handle, gamma: Handle, beta: Handle, runningMean: OptHandle, runningVar: OptHandle,
    saveMean: Handle, saveInvstd: Handle, y: Handle, n: number, c: number, hw: number, eps: number, momentum: number,
    relu: boolean): void;
  batchnorm2d_forward_eval(x: Handle, gamma: Handle, beta: Handle, runningMean: Handle, runningVar: Handle, y: Handle,
    n: number, c: number, hw: number, eps: number, relu: boolean): void;
  /** dx += (or = with overwriteDx), dgamma +=, dbeta += */
  batchnorm2d_backward(x: Handle, y: OptHandle, dy: Handle, gamma: Handle, saveMean: Handle, saveInvstd: Handle,
    dx: Handle, dgamma: OptHandle, dbeta: OptHandle, n: number, c: number, hw: number, relu: boolean,
    overwriteDx: boolean): void;
  /** all += */
  batchnorm2d_backward_eval(x: Handle, y: OptHandle, dy: Handle, gamma: Handle, runningMean: Handle, runningVar: Handle,
    dx: OptHandle, dgamma: OptHandle, dbeta: OptHandle, n: number, c: number, hw: number, eps: number, relu: boolean): void;

  // elementwise (native/ops_elementwise.cc)
  relu_forward(x: Handle, y: Handle, count: number): void;
  /** dx += */
  relu_backward(y: Handle, dy: Handle, dx: Handle, count: number): void;
  add_relu_forward(a: Handle, b: Handle, y: Handle, count: number): void;
  /** da += (or = with overwriteA), db += (or = with overwriteB) */
  add_relu_backward(y: Handle, dy: Handle, da: OptHandle, db: OptHandle, count: number, overwriteA: boolean,
    overwriteB: boolean): void;
  /** y = alpha x + beta z */
  axpby(alpha: number, x: Handle, beta: number, z: Handle, y: Handle, count: number): void;
  mul_forward(a: Handle, b: Handle, y: Handle, count: number): void;
  /** y = scale x + shift */
  affine_scalar(x: Handle, scale: number, shift: number, y: Handle, count: number): void;
  fill(y: Handle, count: number, value: number): void;
  sigmoid_forward(x: Handle, y: Handle, count: number): void;
  /** dx += */
  sigmoid_backward(y: Handle, dy: Handle, dx: Handle, count: number): void;
  /** reads (and with reset=true, then resets) the widest parallel split */
  exec_stats(reset?: boolean): ExecStats;

  // emulated CUDA build only (native/cuda_emu_selftest.cc): absent from the CPU and CUDA builds
  /** runs one deliberately broken kernel (or its corrected twin) and returns its output */
  cuda_emu_selftest?(name: string): Float32Array;
  /** counters of the emulated device since load */
  cuda_emu_stats?(): { launches: number; blocks: number; threads: number; barriers: number; shuffles: number; sharedAccesses: number };
  sum_all(x: Handle, count: number): number;
  /** dx += g */
  add_scalar_inplace(dx: Handle, count: number, g: number): void;

  // loss (native/ops_loss.cc)
  bce_logits_forward(x: Handle, t: Handle, count: number, denom: number): number;
  /** the loss written to y[0] where the buffers live (on a device nothing is read back) */
  bce_logits_forward_out(x: Handle, t: Handle, y: Handle, count: number, denom: number): void;
  /** dx += (dy[0] / denom) (sigmoid(x) - t), dy a one-element buffer on the buffers' device */
  bce_logits_backward_dy(x: Handle, t: Handle, dy: Handle, dx: Handle, count: number, denom: number): void;
  /** dx += scale (sigmoid(x) - t) */
  bce_logits_backward(x: Handle, t: Handle, dx: Handle, count: number, scale: number): void;
  /** labels i32; returns the mean loss and writes the probabilities p */
  softmax_ce_forward(x: Handle, labels: Handle, p: Handle, n: number, m: number): number;
  /** dx += scale (p - onehot) */
  softmax_ce_backward(p: Handle, labels: Handle, dx: Handle, n: number, m: number, scale: number): void;

  // pool (native/ops_pool.cc)
  global_avg_pool_forward(x: Handle, y: Handle, n: number, c: number, hw: number): void;
  /** dx += */
  global_avg_pool_backward(dy: Handle, dx: Handle, n: number, c: number, hw: number): void;
  /** argmax i32 */
  max_pool2d_forward(x: Handle, y: Handle, argmax: Handle, ...dims: Pool2dDims): void;
  /** dx += */
  max_pool2d_backward(dy: Handle, argmax: Handle, dx: Handle, ...dims: Pool2dDims): void;

  // shortcut (native/ops_shortcut.cc)
  shortcut_a_forward(x: Handle, y: Handle, ...dims: ShortcutDims): void;
  /** dx += */
  shortcut_a_backward(dy: Handle, dx: Handle, ...dims: ShortcutDims): void;

  // columns (native/ops_columns.cc)
  copy_columns(src: Handle, srcLd: number, srcCol0: number, dst: Handle, dstLd: number, dstCol0: number,
    rows: number, cols: number, accumulate: boolean): void;

  // hflip (native/ops_hflip.cc): flags u8, one per sample
  hflip(x: Handle, y: Handle, flags: OptHandle, n: number, c: number, h: number, w: number): void;

  // sgd (native/ops_sgd.cc): frozen u8, nonzero = frozen
  sgd_update(w: Handle, grad: Handle, momentumBuf: OptHandle, frozen: OptHandle, count: number, lr: number,
    momentum: number, weightDecay: number): void;

  // masked_conv (native/ops_masked_conv.cc on the CPU, native/ops_masked_conv_cuda.cc on CUDA). `steps` must be an
  // Int32Array of K step ids; the addon refuses any other array at run time.
  /** int32 count a plan needs (without a mask: an upper bound valid for any mask) */
  masked_conv_plan_ints(o: number, c: number, kh: number, kw: number, mask?: Handle, denseAbove?: number): number;
  /** mask u8, plan i32 of masked_conv_plan_ints(...) elements; panels at least denseAbove dense run dense */
  masked_conv_build_plan(w: Handle, mask: Handle, plan: Handle, o: number, c: number, kh: number, kw: number,
    denseAbove?: number): void;
  /** vector width (images per vector) of the blocked layout at the current ISA */
  masked_conv_lanes(): number;
  /** floats of a blocked [K][N/V][H+2p][W+2p][C][V] tensor */
  masked_blocked_floats(k: number, n: number, c: number, h: number, w: number, pad: number): number;
  /** option-A shortcut on blocked tensors (stride, zero channels before/after) */
  masked_blocked_shortcut_a(x: Handle, y: Handle, k: number, n: number, c: number, h: number, w: number, pad: number,
    stride: number, before: number, after: number, outPad: number): void;
  /** max pooling on blocked tensors (positions outside the image skipped) */
  masked_blocked_maxpool(x: Handle, y: Handle, k: number, n: number, c: number, h: number, w: number, inPad: number,
    kernel: number, stride: number, pad: number, outPad: number): void;
  /** global average pool of a blocked tensor into [K*N, C] */
  masked_blocked_avgpool(x: Handle, y: Handle, k: number, n: number, c: number, h: number, w: number, pad: number): void;
  masked_conv_forward(plan: number, x: Handle, steps: ArrayLike<number>, scale: Handle, shift: Handle,
    residual: OptHandle, y: Handle, ...dims: MaskedConvDims): void;
  masked_conv_forward_cuda(w: Handle, mask: Handle, x: Handle, steps: ArrayLike<number>, scale: Handle, shift: Handle,
    residual: OptHandle, y: Handle, ...dims: MaskedConvDims): void;
}

const root = path.resolve(__dirname, '..', '..');

/** Where the CUDA build of the addon is looked for. */
export const cudaAddonPath = path.join(root, 'build-cuda', 'Release', 'm2kd.node');
/** The emulated-device build (`npm run build:cuda-emu`: the CUDA kernels run on the CPU), chosen by M2KD_ADDON=cuda-emu. */
export const cudaEmuAddonPath = path.join(root, 'build-cuda-emu', 'Release', 'm2kd.node');

function loadCpu(): { addon: NativeAddon; path: string } {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const gypBuild = require('node-gyp-build') as { (dir: string): NativeAddon; path(dir: string): string };
  const file = gypBuild.path(root);
  return { addon: require(file) as NativeAddon, path: file };
}

function load(): { addon: NativeAddon; path: string; fallback: string } {
  const want = (process.env.M2KD_ADDON ?? 'auto').trim();
  if (want === 'cpu') return { ...loadCpu(), fallback: 'M2KD_ADDON=cpu' };
  const file = want === 'cuda-emu' ? cudaEmuAddonPath
    : want !== 'auto' && want !== 'cuda' && want !== '' ? path.resolve(want) : cudaAddonPath;
  if (!fs.existsSync(file)) {
    if (want !== 'auto' && want !== '') {
      throw new Error(`m2kd: addon ${file} not found (M2KD_ADDON=${want}; run npm run build:${want === 'cuda-emu' ? 'cuda-emu' : 'cuda'})`);
    }
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
