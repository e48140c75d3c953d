// The implicit-GEMM problems of the convolutions (index maps for gemm_tile.cuh): forward,
// backward-data, backward-weight (conv2d.cu) and the fused masked forward (masked_conv.cu).
// Policy: __host__ __device__ and free of CUDA intrinsics, so that the host workbench
// (kernels/cuda/workbench/index_check.cu) runs the very same index maps on the CPU against
// direct convolution loops; the kernels' files only launch them.
#pragma once
#include "conv_index.cuh"

namespace m2kd {
namespace cuda {

template <int KS>
struct ConvFwdP {
  int M, N, K;
  ConvDims d;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  struct ARow {
    const float* ptr;
    bool ok;
  };
  using BCol = FwdCol;
  M2KD_HD void k_range(int, int& k0, int& k1) const { k0 = 0; k1 = K; }
  M2KD_HD ARow arow(int m, int) const { return {w + int64_t(m < M ? m : 0) * K, m < M}; }
  M2KD_HD BCol bcol(int n, int) const { return fwd_col(d, x, n, N); }
  M2KD_HD float a(const ARow& r, int k) const { return r.ok ? r.ptr[k] : 0.f; }
  M2KD_HD float b(const BCol& c, int k) const { return fwd_b<KS>(d, c, k); }
  M2KD_HD void store(int m, int n, float acc, int) const {
    const int img = d.f_ohw.div(n), p = n - img * d.ohw;
    y[(int64_t(img) * d.o + m) * d.ohw + p] = bias ? acc + bias[m] : acc;
  }
};

template <int KS>
struct ConvBwdDataP {
  int M, N, K;  // M = c, N = n*h*w, K = o*kh*kw
  ConvDims d;
  const float* dy;
  const float* w;
  float* dx;
  struct ARow {
    const float* ptr;  // w + ci*khw
    bool ok;
  };
  struct BCol {
    const float* ptr;  // dy + img*o*ohw
    int ty0, tx0;      // iy + pad, ix + pad
    bool ok;
  };
  M2KD_HD void k_range(int, int& k0, int& k1) const { k0 = 0; k1 = K; }
  M2KD_HD ARow arow(int m, int) const { return {w + (m < M ? m : 0) * d.khw, m < M}; }
  M2KD_HD BCol bcol(int n, int) const {
    if (n >= N) return {dy, 0, 0, false};
    const int img = d.f_hw.div(n), p = n - img * d.hw;
    const int iy = d.f_w.div(p), ix = p - iy * d.w;
    return {dy + int64_t(img) * d.o * d.ohw, iy + d.pad, ix + d.pad, true};
  }
  M2KD_HD float a(const ARow& r, int k) const {
    if (!r.ok) return 0.f;
    const int khw = khw_of<KS>(d);
    const int o = div_khw<KS>(d, k), rs = k - o * khw;
    return r.ptr[int64_t(o) * d.c * khw + rs];
  }
  M2KD_HD float b(const BCol& c, int k) const {
    if (!c.ok) return 0.f;
    const int khw = khw_of<KS>(d), kw = kw_of<KS>(d);
    const int o = div_khw<KS>(d, k), rs = k - o * khw;
    const int r = div_kw<KS>(d, rs), s = rs - r * kw;
    const int ty = c.ty0 - r, tx = c.tx0 - s;
    if (ty < 0 || tx < 0) return 0.f;
    int oy = ty, ox = tx;
    if (d.stride > 1) {
      oy = d.f_stride.div(ty);
      ox = d.f_stride.div(tx);
      if (oy * d.stride != ty || ox * d.stride != tx) return 0.f;
    }
    if (oy >= d.oh || ox >= d.ow) return 0.f;
    return c.ptr[(o * d.oh + oy) * d.ow + ox];
  }
  M2KD_HD void store(int m, int n, float acc, int) const {
    const int img = d.f_hw.div(n), p = n - img * d.hw;
    float* t = dx + (int64_t(img) * d.c + m) * d.hw + p;
    *t += acc;
  }
};

struct ConvBwdWeightP {
  int M, N, K;  // M = o, N = c*kh*kw, K = n*oh*ow
  int chunk;    // K per z (a multiple of the tile's BK)
  ConvDims d;
  const float* x;
  const float* dy;
  float* dw;    // used when splits == 1: dw +=
  float* part;  // [splits, M, N] partials when splits > 1
  int splits;
  struct ARow {
    const float* ptr;  // dy + o*ohw
    bool ok;
  };
  struct BCol {
    const float* ptr;  // x + ci*hw
    int roff, soff;    // r - pad, s - pad
    bool ok;
  };
  M2KD_HD void k_range(int z, int& k0, int& k1) const {
    k0 = z * chunk;
    k1 = K < k0 + chunk ? K : k0 + chunk;
  }
  M2KD_HD ARow arow(int m, int) const { return {dy + (m < M ? m : 0) * d.ohw, m < M}; }
  M2KD_HD BCol bcol(int n, int) const {
    if (n >= N) return {x, 0, 0, false};
    const int ci = d.f_khw.div(n), rs = n - ci * d.khw;
    const int r = d.f_kw.div(rs), s = rs - r * d.kw;
    return {x + ci * d.hw, r - d.pad, s - d.pad, true};
  }
  M2KD_HD float a(const ARow& r, int k) const {
    if (!r.ok) return 0.f;
    const int img = d.f_ohw.div(k), p = k - img * d.ohw;
    return r.ptr[int64_t(img) * d.o * d.ohw + p];
  }
  M2KD_HD float b(const BCol& c, int k) const {
    if (!c.ok) return 0.f;
    const int img = d.f_ohw.div(k), p = k - img * d.ohw;
    const int oy = d.f_ow.div(p), ox = p - oy * d.ow;
    const int iy = oy * d.stride + c.roff, ix = ox * d.stride + c.soff;
    if (unsigned(iy) >= unsigned(d.h) || unsigned(ix) >= unsigned(d.w)) return 0.f;
    return c.ptr[int64_t(img) * d.c * d.hw + iy * d.w + ix];
  }
  M2KD_HD void store(int m, int n, float acc, int z) const {
    if (splits == 1) dw[m * N + n] += acc;
    else part[(int64_t(z) * M + m) * N + n] = acc;
  }
};

struct Steps {
  int32_t v[kMaskedConvModelsPerLaunch];
};

template <int KS>
struct MaskedConvP {
  int M, N, Kd;  // M = o, N = n*oh*ow, Kd = c*kh*kw
  ConvDims d;
  const float* x;
  int64_t x_model_stride;  // 0 when the input is shared
  const float* w;
  const uint8_t* mask;
  Steps steps;  // by value (kernel parameter space)
  const float* scale;
  const float* shift;
  const float* residual;
  bool relu;
  float* y;
  struct ARow {
    const float* wp;
    const uint8_t* mp;
    int step;
    bool ok;
  };
  using BCol = FwdCol;
  M2KD_HD void k_range(int, int& k0, int& k1) const { k0 = 0; k1 = Kd; }
  M2KD_HD ARow arow(int m, int z) const {
    const int64_t off = int64_t(m < M ? m : 0) * Kd;
    return {w + off, mask + off, steps.v[z], m < M};
  }
  M2KD_HD BCol bcol(int n, int z) const { return fwd_col(d, x + int64_t(z) * x_model_stride, n, N); }
  M2KD_HD float a(const ARow& r, int k) const {
    if (!r.ok) return 0.f;
    const int m = r.mp[k];
    return (m >= 1 && m <= r.step) ? r.wp[k] : 0.f;
  }
  M2KD_HD float b(const BCol& c, int k) const { return fwd_b<KS>(d, c, k); }
  M2KD_HD void store(int m, int n, float acc, int z) const {
    const int img = d.f_ohw.div(n), p = n - img * d.ohw;
    const int64_t idx = ((int64_t(z) * d.n + img) * d.o + m) * d.ohw + p;
    float v = scale[z * d.o + m] * acc + shift[z * d.o + m];
    if (residual) v += residual[idx];
    if (relu) v = v > 0.f ? v : 0.f;
    y[idx] = v;
  }
};

}  // namespace cuda
}  // namespace m2kd
