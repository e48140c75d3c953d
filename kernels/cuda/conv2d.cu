// conv2d forward, backward-data and backward-weight as implicit GEMMs on the shared tiled core
// (gemm_tile.cuh): no im2col buffer, the receptive field is gathered while loading tiles.
//   forward:         y[o, (n,oy,ox)]  = sum_(c,r,s) w[o,(c,r,s)] x[...]      M=O, N=n*oh*ow
//   backward-data:   dx[c, (n,iy,ix)] += sum_(o,r,s) w[o,c,r,s] dy[...]      M=C, N=n*h*w
//   backward-weight: dw[o, (c,r,s)]   += sum_(n,oy,ox) dy[...] x[...]        M=O, N=C*kh*kw
// Policy: backward-weight has a long K (n*oh*ow) and a small output, so K is split over
// blockIdx.z into a scratch of partial tiles that one kernel then adds into dw in a fixed order
// (deterministic, no float atomics). db is a per-channel block reduction (warp shuffles).
// Backward-data of strided convs visits the zero taps too (they load as 0): simple, not fast.
#include "conv_problems.cuh"

namespace m2kd {
namespace cuda {
namespace {

// dw[i] += sum_z part[z, i], z in order
__global__ void conv_wgrad_reduce_k(int64_t mn, int splits, const float* __restrict__ part, float* dw) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < mn; i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int z = 0; z < splits; ++z) s += part[z * mn + i];
    dw[i] += s;
  }
}

// db[o] += sum over (n, oy, ox) of dy; one block per output channel
__global__ void conv_bias_grad_k(int n, int o, int ohw, const float* __restrict__ dy, float* db) {
  M2KD_SHARED(double, sh, [32]);
  const int ch = blockIdx.x;
  const int cnt = n * ohw;
  float s = 0.f;
  for (int j = threadIdx.x; j < cnt; j += blockDim.x) {
    const int img = j / ohw, p = j - img * ohw;
    s += dy[(int64_t(img) * o + ch) * ohw + p];
  }
  const double t = block_sum(double(s), sh);
  if (threadIdx.x == 0) db[ch] += float(t);
}

}  // namespace

void conv2d_forward(const CudaExec& ex, const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  const ConvDims d = conv_dims(s, "conv2d_forward");
  switch (kernel_size_class(d)) {
    case 3: M2KD_GEMM_TILE(ex, (ConvFwdP<3>{d.o, d.n * d.ohw, d.c * 9, d, x, w, bias, y}), 1, "conv2d_forward"); break;
    case 1: M2KD_GEMM_TILE(ex, (ConvFwdP<1>{d.o, d.n * d.ohw, d.c, d, x, w, bias, y}), 1, "conv2d_forward"); break;
    default: M2KD_GEMM_TILE(ex, (ConvFwdP<0>{d.o, d.n * d.ohw, d.c * d.khw, d, x, w, bias, y}), 1, "conv2d_forward");
  }
}

void conv2d_backward_data(const CudaExec& ex, const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const ConvDims d = conv_dims(s, "conv2d_backward_data");
  switch (kernel_size_class(d)) {
    case 3: M2KD_GEMM_TILE(ex, (ConvBwdDataP<3>{d.c, d.n * d.hw, d.o * 9, d, dy, w, dx}), 1, "conv2d_backward_data"); break;
    case 1: M2KD_GEMM_TILE(ex, (ConvBwdDataP<1>{d.c, d.n * d.hw, d.o, d, dy, w, dx}), 1, "conv2d_backward_data"); break;
    default: M2KD_GEMM_TILE(ex, (ConvBwdDataP<0>{d.c, d.n * d.hw, d.o * d.khw, d, dy, w, dx}), 1, "conv2d_backward_data");
  }
}

void conv2d_backward_weight(const CudaExec& ex, const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* db) {
  const ConvDims d = conv_dims(s, "conv2d_backward_weight");
  const int M = d.o, N = d.c * d.khw, K = d.n * d.ohw;
  // split K so that the launch has ~4 blocks per SM, each split at least 8 k-tiles long
  const int64_t tiles = gemm_tile_blocks(M, N);
  int64_t splits = (int64_t(ex.sm_count()) * 4 + tiles - 1) / tiles;
  const int64_t max_splits = (K + 8 * kTileK - 1) / (8 * kTileK);
  if (splits > max_splits) splits = max_splits;
  if (splits > 64) splits = 64;
  if (splits < 1) splits = 1;
  int64_t chunk = (K + splits - 1) / splits;
  chunk = (chunk + kTileK - 1) / kTileK * kTileK;
  splits = (K + chunk - 1) / chunk;
  float* part = nullptr;
  if (splits > 1) part = static_cast<float*>(ex.scratch(0, sizeof(float) * size_t(splits) * size_t(M) * size_t(N)));
  ConvBwdWeightP p{M, N, K, int(chunk), d, x, dy, dw, part, int(splits)};
  M2KD_GEMM_TILE(ex, p, int(splits), "conv2d_backward_weight");
  if (splits > 1) {
    const int64_t mn = int64_t(M) * N;
    M2KD_LAUNCH(grid_for(mn), kThreads, 0, ex.stream(), conv_wgrad_reduce_k)(mn, int(splits), part, dw);
    M2KD_LAUNCHED(ex, "conv2d_backward_weight(reduce)");
  }
  if (db) {
    M2KD_LAUNCH(unsigned(d.o), kThreads, 0, ex.stream(), conv_bias_grad_k)(d.n, d.o, d.ohw, dy, db);
    M2KD_LAUNCHED(ex, "conv2d_backward_weight(bias)");
  }
}

}  // namespace cuda
}  // namespace m2kd
