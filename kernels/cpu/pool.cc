// Global average pooling and max pooling (forward/backward). Parallel over n*c planes.
// Reductions per plane are short (hw <= a few thousand); the compiler vectorises the
// element loops at baseline, so no ISA variants.
#include "cpu_common.h"

namespace m2kd {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

void global_avg_pool_forward(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x, float* y) {
  if (n <= 0 || c <= 0) return;
  const double inv = hw > 0 ? 1.0 / (double)hw : 0.0;
  auto body = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * hw;
      // 8 float partials (vectorisable without reassociation), combined in double
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= hw; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += xp[i + k];
      double s = 0.0;
      for (int k = 0; k < 8; ++k) s += acc[k];
      for (; i < hw; ++i) s += xp[i];
      y[p] = (float)(s * inv);
    }
  };
  if (n * c * hw < kParallelMin) body(0, n * c, 0);
  else ex.parallel_for(n * c, body);
}

void global_avg_pool_backward(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* dy, float* dx) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  const float inv = (float)(1.0 / (double)hw);
  auto body = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const float g = dy[p] * inv;
      float* xp = dx + p * hw;
      for (int64_t i = 0; i < hw; ++i) xp[i] += g;
    }
  };
  if (n * c * hw < kParallelMin) body(0, n * c, 0);
  else ex.parallel_for(n * c, body);
}

// Padding never wins: each window starts from its first in-bounds element. NaN propagates
// (PyTorch semantics). A window entirely in padding (pad >= k, invalid for PyTorch) gives
// -inf with argmax -1, and backward skips it.
void max_pool2d_forward(const Exec& ex, const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t planes = s.n * s.c;
  if (planes <= 0) return;
  auto body = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * s.h * s.w;
      float* yp = y + p * s.oh * s.ow;
      int32_t* ap = argmax ? argmax + p * s.oh * s.ow : nullptr;
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        const int64_t y0 = std::max<int64_t>(0, oy * s.stride - s.pad);
        const int64_t y1 = std::min<int64_t>(s.h, oy * s.stride - s.pad + s.k);
        for (int64_t ox = 0; ox < s.ow; ++ox) {
          const int64_t x0 = std::max<int64_t>(0, ox * s.stride - s.pad);
          const int64_t x1 = std::min<int64_t>(s.w, ox * s.stride - s.pad + s.k);
          float best = -std::numeric_limits<float>::infinity();
          int64_t bi = -1;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) {
              const float v = xp[iy * s.w + ix];
              if (bi < 0 || v > best || (v != v && best == best)) { best = v; bi = iy * s.w + ix; }
            }
          yp[oy * s.ow + ox] = best;
          if (ap) ap[oy * s.ow + ox] = (int32_t)bi;
        }
      }
    }
  };
  if (planes * s.oh * s.ow * s.k * s.k < kParallelMin) body(0, planes, 0);
  else ex.parallel_for(planes, body);
}

void max_pool2d_backward(const Exec& ex, const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t planes = s.n * s.c;
  if (planes <= 0) return;
  auto body = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      float* xp = dx + p * s.h * s.w;
      const float* gp = dy + p * s.oh * s.ow;
      const int32_t* ap = argmax + p * s.oh * s.ow;
      for (int64_t o = 0; o < s.oh * s.ow; ++o)
        if (ap[o] >= 0) xp[ap[o]] += gp[o];
    }
  };
  if (planes * s.oh * s.ow < kParallelMin) body(0, planes, 0);
  else ex.parallel_for(planes, body);
}

}  // namespace m2kd
