// Index maps of the implicit-GEMM convolutions (conv2d.cu, masked_conv.cu): the conv shape in
// int32 and the forward "im2col" column context, so both forward kernels read activations the
// same way. KS (kernel size) is a compile-time 3 or 1 for square 3x3 / 1x1 kernels, 0 otherwise:
// splitting a k index into (channel, row, column) is then a multiply-shift, not a division,
// and that split runs for every element loaded. Runtime divisors (plane sizes, widths) use
// FastDiv: a precomputed multiply + shift instead of a ~20-instruction integer division.
// Policy: helpers only, no kernel entry points.
#pragma once
#include "gemm_tile.cuh"

namespace m2kd {
namespace cuda {

// x / d for 0 <= x < 2^31 and 1 <= d < 2^31 as (x * m) >> shift with m = ceil(2^shift / d),
// shift = 31 + ceil(log2 d): m < 2^32 and the rounding error x*(m - 2^shift/d)/2^shift is below
// 2^-ceil(log2 d) <= 1/d, so the floor is exact (kernels/cuda/workbench/index_check.cu tests it).
struct FastDiv {
  unsigned m;
  int shift;
  static FastDiv make(int d) {
    int l = 0;
    while ((1ull << l) < (unsigned long long)d) ++l;
    FastDiv f;
    f.shift = 31 + l;
    f.m = unsigned(((1ull << f.shift) + (unsigned long long)d - 1) / (unsigned long long)d);
    return f;
  }
  M2KD_HD int div(int x) const { return int(((unsigned long long)(unsigned)x * m) >> shift); }
};

struct ConvDims {
  int n, c, h, w, o, kh, kw, stride, pad, oh, ow;
  int khw, hw, ohw;
  FastDiv f_khw, f_kw, f_hw, f_w, f_ohw, f_ow, f_stride;
};

inline ConvDims conv_dims(const Conv2dShape& s, const char* op) {
  require_int32(op, s.n * s.c * s.h * s.w);
  require_int32(op, s.n * s.o * s.oh * s.ow);
  require_int32(op, s.o * s.c * s.kh * s.kw);
  require_int32(op, s.n * s.oh * s.ow);
  require_int32(op, s.n * s.h * s.w);
  ConvDims d;
  d.n = int(s.n); d.c = int(s.c); d.h = int(s.h); d.w = int(s.w); d.o = int(s.o);
  d.kh = int(s.kh); d.kw = int(s.kw); d.stride = int(s.stride); d.pad = int(s.pad);
  d.oh = int(s.oh); d.ow = int(s.ow);
  d.khw = d.kh * d.kw; d.hw = d.h * d.w; d.ohw = d.oh * d.ow;
  d.f_khw = FastDiv::make(d.khw); d.f_kw = FastDiv::make(d.kw); d.f_hw = FastDiv::make(d.hw);
  d.f_w = FastDiv::make(d.w); d.f_ohw = FastDiv::make(d.ohw); d.f_ow = FastDiv::make(d.ow);
  d.f_stride = FastDiv::make(d.stride);
  return d;
}

// Column context of the forward GEMM: output position nidx = (img, oy, ox) of one image
// stack `x` ([n,c,h,w]); element k = (ci, r, s) of the receptive field.
struct FwdCol {
  const float* ptr;  // x + img * c*h*w
  int iy0, ix0;
  bool ok;
};

M2KD_HD FwdCol fwd_col(const ConvDims& d, const float* x, int nidx, int N) {
  if (nidx >= N) return {x, 0, 0, false};
  const int img = d.f_ohw.div(nidx), p = nidx - img * d.ohw;
  const int oy = d.f_ow.div(p), ox = p - oy * d.ow;
  return {x + int64_t(img) * d.c * d.hw, oy * d.stride - d.pad, ox * d.stride - d.pad, true};
}

// kernel width and kh*kw, compile-time when KS != 0
template <int KS>
M2KD_HD int kw_of(const ConvDims& d) { return KS ? KS : d.kw; }
template <int KS>
M2KD_HD int khw_of(const ConvDims& d) { return KS ? KS * KS : d.khw; }
// x / (kh*kw) and x / kw: constant divisions when KS != 0, FastDiv otherwise
template <int KS>
M2KD_HD int div_khw(const ConvDims& d, int x) { return KS ? x / (KS * KS) : d.f_khw.div(x); }
template <int KS>
M2KD_HD int div_kw(const ConvDims& d, int x) { return KS ? x / KS : d.f_kw.div(x); }

// KS of a shape: 3 or 1 for square 3x3 / 1x1 kernels, else 0 (generic)
inline int kernel_size_class(const ConvDims& d) {
  if (d.kh == 3 && d.kw == 3) return 3;
  if (d.kh == 1 && d.kw == 1) return 1;
  return 0;
}

template <int KS>
M2KD_HD float fwd_b(const ConvDims& d, const FwdCol& col, int k) {
  if (!col.ok) return 0.f;
  const int khw = khw_of<KS>(d), kw = kw_of<KS>(d);
  const int ci = div_khw<KS>(d, k), rs = k - ci * khw;
  const int r = div_kw<KS>(d, rs), s = rs - r * kw;
  const int iy = col.iy0 + r, ix = col.ix0 + s;
  if (unsigned(iy) >= unsigned(d.h) || unsigned(ix) >= unsigned(d.w)) return 0.f;
  return col.ptr[(ci * d.h + iy) * d.w + ix];
}

}  // namespace cuda
}  // namespace m2kd
