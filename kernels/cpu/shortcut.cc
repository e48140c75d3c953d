// Option-A shortcut (strided subsample + zero channel padding) forward/backward.
// Pure memory movement: no ISA variants; parallel over samples.
#include "cpu_common.h"

namespace m2kd {

void shortcut_a_forward(const Exec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                        int64_t pad_before, int64_t pad_after, const float* x, float* y) {
  if (n <= 0) return;
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  const int64_t oc = c + pad_before + pad_after, oplane = oh * ow;
  auto body = [&](int64_t n0, int64_t n1, int) {
    for (int64_t i = n0; i < n1; ++i) {
      float* yi = y + i * oc * oplane;
      if (pad_before > 0) std::memset(yi, 0, sizeof(float) * pad_before * oplane);
      if (pad_after > 0) std::memset(yi + (pad_before + c) * oplane, 0, sizeof(float) * pad_after * oplane);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* xp = x + (i * c + ch) * h * w;
        float* yp = yi + (pad_before + ch) * oplane;
        if (stride == 1) { std::memcpy(yp, xp, sizeof(float) * h * w); continue; }
        for (int64_t r = 0; r < oh; ++r) {
          const float* xr = xp + r * stride * w;
          float* yr = yp + r * ow;
          for (int64_t q = 0; q < ow; ++q) yr[q] = xr[q * stride];
        }
      }
    }
  };
  if (n * oc * oplane < (1 << 15)) body(0, n, 0);
  else ex.parallel_for(n, body);
}

void shortcut_a_backward(const Exec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                         int64_t pad_before, int64_t pad_after, const float* dy, float* dx) {
  if (n <= 0) return;
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  const int64_t oc = c + pad_before + pad_after, oplane = oh * ow;
  auto body = [&](int64_t n0, int64_t n1, int) {
    for (int64_t i = n0; i < n1; ++i) {
      for (int64_t ch = 0; ch < c; ++ch) {
        float* xp = dx + (i * c + ch) * h * w;
        const float* yp = dy + (i * oc + pad_before + ch) * oplane;
        for (int64_t r = 0; r < oh; ++r) {
          float* xr = xp + r * stride * w;
          const float* yr = yp + r * ow;
          for (int64_t q = 0; q < ow; ++q) xr[q * stride] += yr[q];
        }
      }
    }
  };
  if (n * oc * oplane < (1 << 15)) body(0, n, 0);
  else ex.parallel_for(n, body);
}

}  // namespace m2kd
