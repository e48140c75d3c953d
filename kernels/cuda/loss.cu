// Losses over logits: sigmoid BCE with logits (soft targets) and softmax cross-entropy.
// bce_logits_forward_to / _backward_dy keep the loss on the device (a training step reads it
// back once, explicitly, for the progress bar and the NaN guard).
// Policy: forward sums go thread (double) -> block (shuffle tree) -> fixed-order final sum, so
// the value is deterministic; forward returns wait for that one double. Softmax uses one warp
// per row (max, then sum of exp, in shuffle trees); p is saved for backward. Labels are
// validated by the caller (native/) before these run; out-of-range ones add no loss here.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

__global__ void bce_fwd_k(int64_t n, const float* __restrict__ x, const float* __restrict__ t,
                          double* __restrict__ parts) {
  M2KD_SHARED(double, sh, [32]);
  double s = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double xv = x[i], tv = t[i];
    s += (xv > 0.0 ? xv : 0.0) - xv * tv + log1p(exp(-fabs(xv)));
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) parts[blockIdx.x] = s;
}
__global__ void bce_bwd_k(int64_t n, const float* __restrict__ x, const float* __restrict__ t, float scale,
                          float* dx) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i];
    float sg;
    if (v >= 0.f) sg = 1.f / (1.f + expf(-v));
    else { const float e = expf(v); sg = e / (1.f + e); }
    dx[i] += scale * (sg - t[i]);
  }
}
// the device-resident forward's last step: the reduced sum divided, as a float (as the host path rounds it)
__global__ void bce_store_k(const double* __restrict__ total, double denom, float* __restrict__ y) {
  if (blockIdx.x == 0 && threadIdx.x == 0) y[0] = float(total[0] / denom);
}
// backward with the upstream gradient read on the device: scale = dy[0] / denom (double, then float)
__global__ void bce_bwd_dy_k(int64_t n, const float* __restrict__ x, const float* __restrict__ t,
                             const float* __restrict__ dy, double denom, float* dx) {
  const float scale = float(double(dy[0]) / denom);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i];
    float sg;
    if (v >= 0.f) sg = 1.f / (1.f + expf(-v));
    else { const float e = expf(v); sg = e / (1.f + e); }
    dx[i] += scale * (sg - t[i]);
  }
}
// one warp per row; rows_loss[r] = logsumexp(x_r) - x_r[label]
__global__ void softmax_fwd_k(int64_t n, int64_t m, const float* __restrict__ x, const int32_t* __restrict__ labels,
                              float* __restrict__ p, double* __restrict__ rows_loss) {
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= n) return;  // whole warp
  const float* xr = x + r * m;
  float* pr = p + r * m;
  float mx = -INFINITY;
  for (int64_t j = lane; j < m; j += 32) mx = fmaxf(mx, xr[j]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  double sum = 0.0;
  for (int64_t j = lane; j < m; j += 32) {
    const float e = expf(xr[j] - mx);
    pr[j] = e;
    sum += e;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float inv = float(1.0 / sum);
  for (int64_t j = lane; j < m; j += 32) pr[j] *= inv;
  if (lane == 0) {
    const int32_t lab = labels[r];
    rows_loss[r] = (lab >= 0 && lab < m) ? double(mx) + log(sum) - double(xr[lab]) : 0.0;
  }
}
__global__ void sum_doubles_k(int64_t n, const double* __restrict__ v, double* __restrict__ parts) {
  M2KD_SHARED(double, sh, [32]);
  double s = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s += v[i];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) parts[blockIdx.x] = s;
}
__global__ void softmax_bwd_k(int64_t n, int64_t m, const float* __restrict__ p, const int32_t* __restrict__ labels,
                              float scale, float* dx) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n * m; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / m, j = i % m;
    float d = scale * p[i];
    if (labels[r] == j) d -= scale;
    dx[i] += d;
  }
}

}  // namespace

double bce_logits_forward(const CudaExec& ex, int64_t n, const float* x, const float* t, double denom) {
  if (n <= 0) return 0.0;
  unsigned blocks = grid_for(n);
  if (blocks > 1024) blocks = 1024;
  double* parts = static_cast<double*>(ex.scratch(0, sizeof(double) * (blocks + 1)));
  M2KD_LAUNCH(blocks, kThreads, 0, ex.stream(), bce_fwd_k)(n, x, t, parts);
  M2KD_LAUNCHED(ex, "bce_logits_forward");
  reduce_doubles(ex, parts, int(blocks), parts + blocks);
  return read_double(ex, parts + blocks) / denom;
}
void bce_logits_backward(const CudaExec& ex, int64_t n, const float* x, const float* t, double scale, float* dx) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), bce_bwd_k)(n, x, t, float(scale), dx);
  M2KD_LAUNCHED(ex, "bce_logits_backward");
}
void bce_logits_forward_to(const CudaExec& ex, int64_t n, const float* x, const float* t, double denom, float* y) {
  if (n <= 0) return;
  unsigned blocks = grid_for(n);
  if (blocks > 1024) blocks = 1024;
  double* parts = static_cast<double*>(ex.scratch(0, sizeof(double) * (blocks + 1)));
  M2KD_LAUNCH(blocks, kThreads, 0, ex.stream(), bce_fwd_k)(n, x, t, parts);
  M2KD_LAUNCHED(ex, "bce_logits_forward_to");
  reduce_doubles(ex, parts, int(blocks), parts + blocks);
  M2KD_LAUNCH(1, 32, 0, ex.stream(), bce_store_k)(parts + blocks, denom, y);
  M2KD_LAUNCHED(ex, "bce_logits_forward_to(store)");
}
void bce_logits_backward_dy(const CudaExec& ex, int64_t n, const float* x, const float* t, const float* dy,
                            double denom, float* dx) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), bce_bwd_dy_k)(n, x, t, dy, denom, dx);
  M2KD_LAUNCHED(ex, "bce_logits_backward_dy");
}
double softmax_ce_forward(const CudaExec& ex, int64_t n, int64_t m, const float* x, const int32_t* labels,
                          float* p) {
  if (n <= 0 || m <= 0) return 0.0;
  const int64_t per = kThreads / 32;
  unsigned blocks = grid_for(n);
  if (blocks > 1024) blocks = 1024;
  double* rows = static_cast<double*>(ex.scratch(0, sizeof(double) * size_t(n)));
  double* parts = static_cast<double*>(ex.scratch(1, sizeof(double) * (blocks + 1)));
  M2KD_LAUNCH(unsigned((n + per - 1) / per), kThreads, 0, ex.stream(), softmax_fwd_k)(n, m, x, labels, p, rows);
  M2KD_LAUNCHED(ex, "softmax_ce_forward");
  M2KD_LAUNCH(blocks, kThreads, 0, ex.stream(), sum_doubles_k)(n, rows, parts);
  M2KD_LAUNCHED(ex, "softmax_ce_forward(sum)");
  reduce_doubles(ex, parts, int(blocks), parts + blocks);
  return read_double(ex, parts + blocks) / double(n);
}
void softmax_ce_backward(const CudaExec& ex, int64_t n, int64_t m, const float* p, const int32_t* labels,
                         double scale, float* dx) {
  if (n <= 0 || m <= 0) return;
  M2KD_LAUNCH(grid_for(n * m), kThreads, 0, ex.stream(), softmax_bwd_k)(n, m, p, labels, float(scale), dx);
  M2KD_LAUNCHED(ex, "softmax_ce_backward");
}

}  // namespace cuda
}  // namespace m2kd
