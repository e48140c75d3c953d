// Batch norm 2d over [n,c,hw]: train forward (batch statistics, running-stat update), eval
// forward, and the backward of both, each with the optional fused ReLU.
// Policy: per-channel sums are split over G blocks per channel (enough blocks to fill the GPU
// even at 16 channels); each block reduces its contiguous slice of the channel's n*hw values
// with warp shuffles (block_sum2), writes one partial in double, and a finalize kernel combines
// the G partials in a fixed order: deterministic, no atomics. Statistics use the CPU's shifted
// moments (K = the channel's first element) so var = E[(x-K)^2] - E[x-K]^2 stays well
// conditioned. The elementwise passes (normalise, dx) are separate grid-stride kernels that
// read per-channel coefficients from scratch.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

constexpr int kBnThreads = 256;

struct BnSplit {
  int g;          // blocks per channel
  int64_t chunk;  // values of the channel's n*hw range per block
};

BnSplit bn_split(const CudaExec& ex, int64_t n, int64_t c, int64_t hw) {
  const int64_t cnt = n * hw;
  int64_t g = (int64_t(ex.sm_count()) * 4 + c - 1) / c;  // ~4 blocks per SM over all channels
  const int64_t max_g = (cnt + 4 * kBnThreads - 1) / (4 * kBnThreads);  // >= 4 values per thread
  if (g > max_g) g = max_g;
  if (g > 64) g = 64;
  if (g < 1) g = 1;
  BnSplit s;
  s.chunk = (cnt + g - 1) / g;
  s.g = int((cnt + s.chunk - 1) / s.chunk);
  return s;
}

// Value j of channel ch, j in [0, n*hw): plane j / hw, offset j % hw. 32-bit division (the
// host checks n*c*hw < 2^31): a 64-bit one per element would dominate these memory-bound loops.
__device__ __forceinline__ int64_t bn_index(int64_t j, int64_t ch, int64_t c, int64_t hw) {
  const unsigned jj = unsigned(j), h = unsigned(hw);
  const unsigned i = jj / h;
  return (int64_t(i) * c + ch) * hw + (jj - i * h);
}

// channel of flat element i of [n, c, hw]
__device__ __forceinline__ int64_t bn_channel(int64_t i, int64_t c, int64_t hw) {
  return int64_t((unsigned(i) / unsigned(hw)) % unsigned(c));
}

// parts[ch*g + b] = (sum (x-K), sum (x-K)^2) over block b's slice, K = x[ch*hw]
__global__ void bn_moments_k(int64_t c, int64_t hw, int64_t cnt, int64_t chunk, const float* __restrict__ x,
                             double2* __restrict__ parts) {
  M2KD_SHARED(double, sh, [64]);
  const int64_t ch = blockIdx.y;
  const float K = x[ch * hw];
  const int64_t j0 = int64_t(blockIdx.x) * chunk, j1 = min(cnt, j0 + chunk);
  float s1 = 0.f, s2 = 0.f;
  for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
    const float d = x[bn_index(j, ch, c, hw)] - K;
    s1 += d;
    s2 += d * d;
  }
  double a = s1, b = s2;
  block_sum2(a, b, sh);
  if (threadIdx.x == 0) parts[ch * gridDim.x + blockIdx.x] = make_double2(a, b);
}

// one thread per channel: statistics, running update, coefficients y = a*x + b
__global__ void bn_train_finalize_k(int64_t c, int g, int64_t hw, int64_t cnt, const float* __restrict__ x,
                                    const double2* __restrict__ parts, const float* __restrict__ gamma,
                                    const float* __restrict__ beta, float eps, float momentum,
                                    float* running_mean, float* running_var, float* __restrict__ save_mean,
                                    float* __restrict__ save_invstd, float2* __restrict__ coef) {
  const int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double s1 = 0.0, s2 = 0.0;
  for (int b = 0; b < g; ++b) {
    s1 += parts[ch * g + b].x;
    s2 += parts[ch * g + b].y;
  }
  const double K = x[ch * hw];
  const double md = s1 / double(cnt);
  double var = s2 / double(cnt) - md * md;
  if (!(var > 0.0)) var = var == var ? 0.0 : var;
  const double mean = K + md;
  const double invstd = 1.0 / sqrt(var + double(eps));
  if (save_mean) save_mean[ch] = float(mean);
  if (save_invstd) save_invstd[ch] = float(invstd);
  if (running_mean) running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + double(momentum) * mean);
  if (running_var) {
    const double unbiased = cnt > 1 ? var * double(cnt) / double(cnt - 1) : var;
    running_var[ch] = float((1.0 - momentum) * running_var[ch] + double(momentum) * unbiased);
  }
  const double gm = gamma ? double(gamma[ch]) : 1.0;
  const float a = float(gm * invstd), bt = beta ? beta[ch] : 0.f;
  // y = (x - mean) * a + b, as on the CPU: keep mean and a separate
  coef[ch] = make_float2(float(mean), a);
  coef[c + ch] = make_float2(bt, 0.f);
}

__global__ void bn_eval_coef_k(int64_t c, const float* __restrict__ gamma, const float* __restrict__ beta,
                               const float* __restrict__ rm, const float* __restrict__ rv, float eps,
                               float2* __restrict__ coef) {
  const int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double invstd = 1.0 / sqrt(double(rv[ch]) + double(eps));
  const float a = float((gamma ? double(gamma[ch]) : 1.0) * invstd);
  coef[ch] = make_float2(rm[ch], a);
  coef[c + ch] = make_float2(beta ? beta[ch] : 0.f, float(invstd));
}

template <bool RELU>
__global__ void bn_apply_k(int64_t total, int64_t c, int64_t hw, const float* __restrict__ x,
                           const float2* __restrict__ coef, float* __restrict__ y) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = bn_channel(i, c, hw);
    const float2 ma = coef[ch];
    float v = (x[i] - ma.x) * ma.y + coef[c + ch].x;
    if (RELU) v = v > 0.f ? v : 0.f;
    y[i] = v;
  }
}

// parts[ch*g + b] = (sum g', sum g' * (x - center[ch])), g' = dy masked by y > 0 when RELU
template <bool RELU>
__global__ void bn_bwd_sums_k(int64_t c, int64_t hw, int64_t cnt, int64_t chunk, const float* __restrict__ x,
                              const float* __restrict__ y, const float* __restrict__ dy,
                              const float* __restrict__ center, double2* __restrict__ parts) {
  M2KD_SHARED(double, sh, [64]);
  const int64_t ch = blockIdx.y;
  const float m = center[ch];
  const int64_t j0 = int64_t(blockIdx.x) * chunk, j1 = min(cnt, j0 + chunk);
  float s1 = 0.f, s2 = 0.f;
  for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
    const int64_t i = bn_index(j, ch, c, hw);
    float g = dy[i];
    if (RELU) g = y[i] > 0.f ? g : 0.f;
    s1 += g;
    s2 += g * (x[i] - m);
  }
  double a = s1, b = s2;
  block_sum2(a, b, sh);
  if (threadIdx.x == 0) parts[ch * gridDim.x + blockIdx.x] = make_double2(a, b);
}

// train-mode backward coefficients: dx = k1*g' + k2*(x - mean) + k3; dgamma, dbeta +=
__global__ void bn_bwd_finalize_k(int64_t c, int g, double cnt, const double2* __restrict__ parts,
                                  const float* __restrict__ gamma, const float* __restrict__ save_invstd,
                                  float* dgamma, float* dbeta, float4* __restrict__ k) {
  const int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double sdy = 0.0, sdyx = 0.0;
  for (int b = 0; b < g; ++b) {
    sdy += parts[ch * g + b].x;
    sdyx += parts[ch * g + b].y;
  }
  const double invstd = save_invstd[ch];
  if (dgamma) dgamma[ch] += float(sdyx * invstd);
  if (dbeta) dbeta[ch] += float(sdy);
  const double gi = (gamma ? double(gamma[ch]) : 1.0) * invstd;
  k[ch] = make_float4(float(gi), float(-gi * invstd * invstd * sdyx / cnt), float(-gi * sdy / cnt), 0.f);
}

// eval-mode backward: dgamma += sum g'(x - rm) invstd, dbeta += sum g'; k1 = gamma*invstd
__global__ void bn_bwd_eval_finalize_k(int64_t c, int g, const double2* __restrict__ parts,
                                       const float* __restrict__ gamma, const float* __restrict__ rv, float eps,
                                       float* dgamma, float* dbeta, float4* __restrict__ k) {
  const int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double sdy = 0.0, sdyx = 0.0;
  for (int b = 0; b < g; ++b) {
    sdy += parts[ch * g + b].x;
    sdyx += parts[ch * g + b].y;
  }
  const double invstd = 1.0 / sqrt(double(rv[ch]) + double(eps));
  if (dgamma) dgamma[ch] += float(sdyx * invstd);
  if (dbeta) dbeta[ch] += float(sdy);
  k[ch] = make_float4(float((gamma ? double(gamma[ch]) : 1.0) * invstd), 0.f, 0.f, 0.f);
}

template <bool RELU, bool OVERWRITE>
__global__ void bn_bwd_dx_k(int64_t total, int64_t c, int64_t hw, const float* __restrict__ x,
                            const float* __restrict__ y, const float* __restrict__ dy,
                            const float* __restrict__ center, const float4* __restrict__ k, float* dx) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = bn_channel(i, c, hw);
    const float4 kk = k[ch];
    float g = dy[i];
    if (RELU) g = y[i] > 0.f ? g : 0.f;
    const float d = kk.x * g + kk.y * (x[i] - center[ch]) + kk.z;
    dx[i] = OVERWRITE ? d : dx[i] + d;
  }
}

unsigned small_grid(int64_t c) { return unsigned((c + 127) / 128); }

void launch_bwd_dx(const CudaExec& ex, bool relu, bool overwrite, int64_t total, int64_t c, int64_t hw,
                   const float* x, const float* y, const float* dy, const float* center, const float4* k,
                   float* dx) {
  const unsigned gr = grid_for(total);
  cudaStream_t st = ex.stream();
  if (relu && overwrite) M2KD_LAUNCH(gr, kThreads, 0, st, bn_bwd_dx_k<true, true>)(total, c, hw, x, y, dy, center, k, dx);
  else if (relu) M2KD_LAUNCH(gr, kThreads, 0, st, bn_bwd_dx_k<true, false>)(total, c, hw, x, y, dy, center, k, dx);
  else if (overwrite) M2KD_LAUNCH(gr, kThreads, 0, st, bn_bwd_dx_k<false, true>)(total, c, hw, x, y, dy, center, k, dx);
  else M2KD_LAUNCH(gr, kThreads, 0, st, bn_bwd_dx_k<false, false>)(total, c, hw, x, y, dy, center, k, dx);
  M2KD_LAUNCHED(ex, "batchnorm2d_backward(dx)");
}

void launch_bwd_sums(const CudaExec& ex, bool relu, const BnSplit& sp, int64_t c, int64_t hw, int64_t cnt,
                     const float* x, const float* y, const float* dy, const float* center, double2* parts) {
  const dim3 grid(unsigned(sp.g), unsigned(c));
  if (relu) M2KD_LAUNCH(grid, kBnThreads, 0, ex.stream(), bn_bwd_sums_k<true>)(c, hw, cnt, sp.chunk, x, y, dy, center, parts);
  else M2KD_LAUNCH(grid, kBnThreads, 0, ex.stream(), bn_bwd_sums_k<false>)(c, hw, cnt, sp.chunk, x, y, dy, center, parts);
  M2KD_LAUNCHED(ex, "batchnorm2d_backward(sums)");
}

}  // namespace

void batchnorm2d_forward_train(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* gamma, const float* beta, float eps, float momentum,
                               float* running_mean, float* running_var, float* save_mean, float* save_invstd,
                               bool relu, float* y) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  if (n * c * hw >= (int64_t(1) << 31)) throw CudaError("batchnorm2d_forward_train: more than 2^31 elements");
  if (c > 65535) throw CudaError("batchnorm2d_forward_train: more than 65535 channels");
  const int64_t cnt = n * hw;
  const BnSplit sp = bn_split(ex, n, c, hw);
  double2* parts = static_cast<double2*>(ex.scratch(0, sizeof(double2) * size_t(c) * size_t(sp.g)));
  float2* coef = static_cast<float2*>(ex.scratch(1, sizeof(float2) * 2 * size_t(c)));
  M2KD_LAUNCH(dim3(unsigned(sp.g), unsigned(c)), kBnThreads, 0, ex.stream(), bn_moments_k)(c, hw, cnt, sp.chunk, x, parts);
  M2KD_LAUNCHED(ex, "batchnorm2d_forward_train(moments)");
  M2KD_LAUNCH(small_grid(c), 128, 0, ex.stream(), bn_train_finalize_k)(c, sp.g, hw, cnt, x, parts, gamma, beta, eps, momentum,
                                                              running_mean, running_var, save_mean, save_invstd,
                                                              coef);
  M2KD_LAUNCHED(ex, "batchnorm2d_forward_train(finalize)");
  const int64_t total = n * c * hw;
  if (relu) M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), bn_apply_k<true>)(total, c, hw, x, coef, y);
  else M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), bn_apply_k<false>)(total, c, hw, x, coef, y);
  M2KD_LAUNCHED(ex, "batchnorm2d_forward_train(apply)");
}

void batchnorm2d_forward_eval(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                              const float* gamma, const float* beta, const float* running_mean,
                              const float* running_var, float eps, bool relu, float* y) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  if (n * c * hw >= (int64_t(1) << 31)) throw CudaError("batchnorm2d_forward_eval: more than 2^31 elements");
  float2* coef = static_cast<float2*>(ex.scratch(1, sizeof(float2) * 2 * size_t(c)));
  M2KD_LAUNCH(small_grid(c), 128, 0, ex.stream(), bn_eval_coef_k)(c, gamma, beta, running_mean, running_var, eps, coef);
  M2KD_LAUNCHED(ex, "batchnorm2d_forward_eval(coef)");
  const int64_t total = n * c * hw;
  if (relu) M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), bn_apply_k<true>)(total, c, hw, x, coef, y);
  else M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), bn_apply_k<false>)(total, c, hw, x, coef, y);
  M2KD_LAUNCHED(ex, "batchnorm2d_forward_eval(apply)");
}

void batchnorm2d_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x, const float* y,
                          const float* dy, const float* gamma, const float* save_mean, const float* save_invstd,
                          bool relu, float* dx, float* dgamma, float* dbeta, bool overwrite_dx) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  if (n * c * hw >= (int64_t(1) << 31)) throw CudaError("batchnorm2d_backward: more than 2^31 elements");
  if (c > 65535) throw CudaError("batchnorm2d_backward: more than 65535 channels");
  const int64_t cnt = n * hw;
  const BnSplit sp = bn_split(ex, n, c, hw);
  double2* parts = static_cast<double2*>(ex.scratch(0, sizeof(double2) * size_t(c) * size_t(sp.g)));
  float4* k = static_cast<float4*>(ex.scratch(1, sizeof(float4) * size_t(c)));
  launch_bwd_sums(ex, relu, sp, c, hw, cnt, x, y, dy, save_mean, parts);
  M2KD_LAUNCH(small_grid(c), 128, 0, ex.stream(), bn_bwd_finalize_k)(c, sp.g, double(cnt), parts, gamma, save_invstd, dgamma,
                                                            dbeta, k);
  M2KD_LAUNCHED(ex, "batchnorm2d_backward(finalize)");
  if (dx) launch_bwd_dx(ex, relu, overwrite_dx, n * c * hw, c, hw, x, y, dy, save_mean, k, dx);
}

void batchnorm2d_backward_eval(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x, const float* y,
                               const float* dy, const float* gamma, const float* running_mean,
                               const float* running_var, float eps, bool relu, float* dx, float* dgamma,
                               float* dbeta) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  if (n * c * hw >= (int64_t(1) << 31)) throw CudaError("batchnorm2d_backward_eval: more than 2^31 elements");
  if (c > 65535) throw CudaError("batchnorm2d_backward_eval: more than 65535 channels");
  const int64_t cnt = n * hw;
  const BnSplit sp = bn_split(ex, n, c, hw);
  double2* parts = static_cast<double2*>(ex.scratch(0, sizeof(double2) * size_t(c) * size_t(sp.g)));
  float4* k = static_cast<float4*>(ex.scratch(1, sizeof(float4) * size_t(c)));
  if (dgamma || dbeta) {
    launch_bwd_sums(ex, relu, sp, c, hw, cnt, x, y, dy, running_mean, parts);
  } else {
    M2KD_CUDA(cudaMemsetAsync(parts, 0, sizeof(double2) * size_t(c) * size_t(sp.g), ex.stream()));
  }
  M2KD_LAUNCH(small_grid(c), 128, 0, ex.stream(), bn_bwd_eval_finalize_k)(c, sp.g, parts, gamma, running_var, eps, dgamma,
                                                                 dbeta, k);
  M2KD_LAUNCHED(ex, "batchnorm2d_backward_eval(finalize)");
  // k2 = k3 = 0: dx += gamma * invstd * g'
  if (dx) launch_bwd_dx(ex, relu, false, n * c * hw, c, hw, x, y, dy, running_mean, k, dx);
}

}  // namespace cuda
}  // namespace m2kd
