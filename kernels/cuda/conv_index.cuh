// Index maps of the implicit-GEMM convolutions (conv2d.cu, masked_conv.cu): the conv shape in
// int32 and the forward "im2col" column context, so both forward kernels read activations the
// same way. KS (kernel size) is a compile-time 3 or 1 for square 3x3 / 1x1 kernels, 0 otherwise:
// splitting a k index into (channel, row, column) is then a multiply-shift, not a division,
// and that split runs for every element loaded. Policy: helpers only, no kernel entry points.
#pragma once
#include "gemm_tile.cuh"


namespace m2kd {
namespace cuda {

struct ConvDims {
  int n, c, h, w, o, kh, kw, stride, pad, oh, ow;
  int khw, hw, ohw;
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
  const int img = nidx / d.ohw, p = nidx - img * d.ohw;
  const int oy = p / d.ow, ox = p - oy * d.ow;
  return {x + int64_t(img) * d.c * d.hw, oy * d.stride - d.pad, ox * d.stride - d.pad, true};
}

// kernel width and kh*kw, compile-time when KS != 0
template <int KS>
M2KD_HD int kw_of(const ConvDims& d) { return KS ? KS : d.kw; }
template <int KS>
M2KD_HD int khw_of(const ConvDims& d) { return KS ? KS * KS : d.khw; }

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
  const int ci = k / khw, rs = k - ci * khw;
  const int r = rs / kw, s = rs - r * kw;
  const int iy = col.iy0 + r, ix = col.ix0 + s;
  if (unsigned(iy) >= unsigned(d.h) || unsigned(ix) >= unsigned(d.w)) return 0.f;
  return col.ptr[(ci * d.h + iy) * d.w + ix];
}

}  // namespace cuda
}  // namespace m2kd
