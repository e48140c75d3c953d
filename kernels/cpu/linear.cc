// linear (fully connected) layer on top of sgemm. PyTorch layout: w[out, in].
#include "cpu_common.h"

namespace m2kd {

void linear_forward(const Exec& ex, int64_t n, int64_t in, int64_t out, const float* x,
                    const float* w, const float* bias, float* y) {
  if (n <= 0 || out <= 0) return;
  if (bias) {
    for (int64_t i = 0; i < n; i++) std::memcpy(y + i * out, bias, sizeof(float) * out);
  }
  // y[n,out] (= or +=) x[n,in] * w[out,in]^T
  sgemm(ex, false, true, n, out, in, 1.f, x, in, w, in, bias ? 1.f : 0.f, y, out);
}

void linear_backward(const Exec& ex, int64_t n, int64_t in, int64_t out, const float* x,
                     const float* w, const float* dy, float* dx, float* dw, float* db) {
  if (n <= 0 || out <= 0) return;
  if (dx && in > 0) sgemm(ex, false, false, n, in, out, 1.f, dy, out, w, in, 1.f, dx, in);  // dx += dy w
  if (dw && in > 0) sgemm(ex, true, false, out, in, n, 1.f, dy, out, x, in, 1.f, dw, in);   // dw += dy^T x
  if (db) {
    for (int64_t i = 0; i < n; i++) {
      const float* d = dy + i * out;
      for (int64_t o = 0; o < out; o++) db[o] += d[o];
    }
  }
}

}  // namespace m2kd
