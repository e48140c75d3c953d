// Per-sample horizontal flip of NCHW images (flags[n] != 0, or all when flags is null); the twin
// of kernels/cpu/columns.cc's hflip. Policy: one thread per destination element, x and y distinct.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

__global__ void hflip_k(int64_t total, int64_t chw, int64_t w, const uint8_t* __restrict__ flags,
                        const float* __restrict__ x, float* __restrict__ y) {
  M2KD_GRID_LOOP(i, total) {
    const int64_t s = i / chw, q = i % w;
    const bool f = flags == nullptr || flags[s] != 0;
    y[i] = f ? x[i - q + (w - 1 - q)] : x[i];
  }
}

}  // namespace

void hflip(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, const uint8_t* flags, const float* x,
           float* y) {
  const int64_t total = n * c * h * w;
  if (total <= 0) return;
  M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), hflip_k)(total, c * h * w, w, flags, x, y);
  M2KD_LAUNCHED(ex, "hflip");
}

}  // namespace cuda
}  // namespace m2kd
