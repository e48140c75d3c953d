// Pooling: global average (one warp per (n,c) plane, shuffle-tree sum) and max pooling.
// Policy: max-pool forward follows the CPU rules exactly (padding never wins, first maximum in
// scan order, NaN propagates, an all-padding window gives -inf and argmax -1). Backward is a
// gather (one thread per input element visits the windows that contain it, in output order),
// so overlapping windows need no atomics and the result is deterministic.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

__global__ void gap_fwd_k(int64_t planes, int64_t hw, const float* __restrict__ x, float* __restrict__ y) {
  const int64_t p = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (p >= planes) return;  // whole warp leaves together
  const float* xp = x + p * hw;
  float s = 0.f;
  for (int64_t i = lane; i < hw; i += 32) s += xp[i];
  s = warp_sum(s);
  if (lane == 0) y[p] = float(double(s) / double(hw));
}
__global__ void gap_bwd_k(int64_t total, int64_t hw, float inv, const float* __restrict__ dy, float* dx) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] += dy[i / hw] * inv;
}

__global__ void maxpool_fwd_k(Pool2dShape s, const float* __restrict__ x, float* __restrict__ y,
                              int32_t* __restrict__ argmax) {
  const int64_t total = s.n * s.c * s.oh * s.ow;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % s.ow, oy = (i / s.ow) % s.oh, p = i / (s.ow * s.oh);
    const float* xp = x + p * s.h * s.w;
    const int64_t y0 = max(int64_t(0), oy * s.stride - s.pad), y1 = min(s.h, oy * s.stride - s.pad + s.k);
    const int64_t x0 = max(int64_t(0), ox * s.stride - s.pad), x1 = min(s.w, ox * s.stride - s.pad + s.k);
    float best = -INFINITY;
    int64_t bi = -1;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) {
        const float v = xp[iy * s.w + ix];
        if (bi < 0 || v > best || (v != v && best == best)) {
          best = v;
          bi = iy * s.w + ix;
        }
      }
    y[i] = best;
    if (argmax) argmax[i] = int32_t(bi);
  }
}
__global__ void maxpool_bwd_k(Pool2dShape s, const float* __restrict__ dy, const int32_t* __restrict__ argmax,
                              float* dx) {
  const int64_t total = s.n * s.c * s.h * s.w;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ix = i % s.w, iy = (i / s.w) % s.h, p = i / (s.w * s.h);
    const int32_t me = int32_t(iy * s.w + ix);
    // windows containing iy: oy*stride - pad <= iy <= oy*stride - pad + k - 1
    const int64_t ty = iy + s.pad, tx = ix + s.pad;
    const int64_t oy0 = ty - s.k + 1 <= 0 ? 0 : (ty - s.k + 1 + s.stride - 1) / s.stride;
    const int64_t oy1 = min(s.oh - 1, ty / s.stride);
    const int64_t ox0 = tx - s.k + 1 <= 0 ? 0 : (tx - s.k + 1 + s.stride - 1) / s.stride;
    const int64_t ox1 = min(s.ow - 1, tx / s.stride);
    const float* gp = dy + p * s.oh * s.ow;
    const int32_t* ap = argmax + p * s.oh * s.ow;
    // added one by one in output order, exactly as the CPU kernel does
    float v = dx[i];
    bool any = false;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox)
        if (ap[oy * s.ow + ox] == me) {
          v += gp[oy * s.ow + ox];
          any = true;
        }
    if (any) dx[i] = v;
  }
}

}  // namespace

void global_avg_pool_forward(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x, float* y) {
  const int64_t planes = n * c;
  if (planes <= 0 || hw <= 0) return;
  const int64_t per = kThreads / 32;
  M2KD_LAUNCH(unsigned((planes + per - 1) / per), kThreads, 0, ex.stream(), gap_fwd_k)(planes, hw, x, y);
  M2KD_LAUNCHED(ex, "global_avg_pool_forward");
}
void global_avg_pool_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* dy, float* dx) {
  const int64_t total = n * c * hw;
  if (total <= 0) return;
  M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), gap_bwd_k)(total, hw, float(1.0 / double(hw)), dy, dx);
  M2KD_LAUNCHED(ex, "global_avg_pool_backward");
}
void max_pool2d_forward(const CudaExec& ex, const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t total = s.n * s.c * s.oh * s.ow;
  if (total <= 0) return;
  M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), maxpool_fwd_k)(s, x, y, argmax);
  M2KD_LAUNCHED(ex, "max_pool2d_forward");
}
void max_pool2d_backward(const CudaExec& ex, const Pool2dShape& s, const float* dy, const int32_t* argmax,
                         float* dx) {
  const int64_t total = s.n * s.c * s.h * s.w;
  if (total <= 0) return;
  M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), maxpool_bwd_k)(s, dy, argmax, dx);
  M2KD_LAUNCHED(ex, "max_pool2d_backward");
}

}  // namespace cuda
}  // namespace m2kd
