// Shared device helpers of kernels/cuda: launch checking (file:line in every error), grid
// sizing for grid-stride loops, and deterministic warp / block reductions (shuffle trees).
// Policy: helpers only; no kernel entry points live here.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "m2kd_cuda.h"

// One spelling of launches and shared memory for the two compilers: nvcc (the real device) and
// the host compiler (the emulated device, kernels/cuda/emu/cuda_runtime.h, which defines these
// itself and makes every shared access a checked one).
//   M2KD_LAUNCH(grid, block, shmem, stream, kernel)(args...)  ==  kernel<<<grid, block, shmem, stream>>>(args...)
//   M2KD_SHARED(float, tile, [16][65]);                       ==  M2KD_SHARED(float, tile, [16][65]);
//   M2KD_SHARED_DYNAMIC(float, buf);                          ==  extern __shared__ float buf[];
// Helpers that take shared memory take it as a template parameter S (T* on the device, a checked
// view under emulation) and only index it.
#ifndef M2KD_CUDA_EMU
#define M2KD_LAUNCH(grid, block, shmem, stream, ...) __VA_ARGS__<<<(grid), (block), (shmem), (stream)>>>
#define M2KD_SHARED(T, name, dims) __shared__ T name dims
#define M2KD_SHARED_DYNAMIC(T, name) extern __shared__ T name[]
#endif

namespace m2kd {
namespace cuda {

// Checks the last launch (and synchronises first when sync_launches() is on).
inline void launch_check(CUstream_st* stream, const char* file, int line, const char* kernel) {
  check(int(cudaGetLastError()), file, line, kernel);
  if (sync_launches()) check(int(cudaStreamSynchronize(stream)), file, line, kernel);
}
#define M2KD_LAUNCHED(ex, name) ::m2kd::cuda::launch_check((ex).stream(), __FILE__, __LINE__, name)
#define M2KD_CUDA(call) ::m2kd::cuda::check(int(call), __FILE__, __LINE__, #call)

constexpr int kThreads = 256;

// Grid-stride loop over [0, n) with 64-bit indices.
#define M2KD_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)


// Blocks for a grid-stride loop over n elements (capped: each thread loops).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535 * 8) b = 65535 * 8;
  return unsigned(b);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;  // valid in lane 0
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024). Result valid in every thread.
// `sh` must hold 32 elements. Contains __syncthreads: call from all threads of the block.
template <typename T, typename S>
__device__ __forceinline__ T block_sum(T v, S sh) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // protect sh from a previous use
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    // only warp 0 reads the partial sums: a read of sh[0] by another warp would race with the
    // write of the total below (found by the emulated device's racecheck)
    T r = lane < nw ? sh[lane] : T(0);
    r = warp_sum(r);
    if (lane == 0) sh[0] = r;
  }
  __syncthreads();
  return sh[0];
}

// Two sums at once (same contract as block_sum; sh holds 64 elements).
template <typename T, typename S>
__device__ __forceinline__ void block_sum2(T& a, T& b, S sh) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  __syncthreads();
  if (lane == 0) {
    sh[wid] = a;
    sh[32 + wid] = b;
  }
  __syncthreads();
  if (wid == 0) {
    T ra = lane < nw ? sh[lane] : T(0);
    T rb = lane < nw ? sh[32 + lane] : T(0);
    ra = warp_sum(ra);
    rb = warp_sum(rb);
    if (lane == 0) {
      sh[0] = ra;
      sh[32] = rb;
    }
  }
  __syncthreads();
  a = sh[0];
  b = sh[32];
}

// Sums `parts` doubles (device) in a fixed order into *out (device), one block.
void reduce_doubles(const CudaExec& ex, const double* parts, int parts_n, double* out);
// Copies one device double into host memory and waits.
double read_double(const CudaExec& ex, const double* dev);

}  // namespace cuda
}  // namespace m2kd
