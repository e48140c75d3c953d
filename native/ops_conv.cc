// Bindings: sgemm, conv2d (forward, backward-data, backward-weight) and linear.
// Checks every shape and buffer size, then calls the kernel on the device of the buffers.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// Reads [n,c,h,w,o,kh,kw,stride,pad] starting at argument k and validates it.
Conv2dShape conv_shape(Args& a, size_t k) {
  Conv2dShape s{};
  s.n = a.i64(k + 0, "n"); s.c = a.i64(k + 1, "c"); s.h = a.i64(k + 2, "h"); s.w = a.i64(k + 3, "w");
  s.o = a.i64(k + 4, "o"); s.kh = a.i64(k + 5, "kh"); s.kw = a.i64(k + 6, "kw");
  s.stride = a.i64(k + 7, "stride"); s.pad = a.i64(k + 8, "pad");
  a.set_shapes("x" + dims({s.n, s.c, s.h, s.w}) + " w" + dims({s.o, s.c, s.kh, s.kw}) +
               " stride " + std::to_string(s.stride) + " pad " + std::to_string(s.pad));
  a.require(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.o > 0 && s.kh > 0 && s.kw > 0,
            "all dimensions must be positive");
  a.require(s.stride > 0 && s.pad >= 0, "stride must be > 0 and pad >= 0");
  a.require(s.h + 2 * s.pad >= s.kh && s.w + 2 * s.pad >= s.kw, "kernel larger than the padded input");
  s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
  s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
  return s;
}

// conv2d_forward(x, w, bias|-1, y, n,c,h,w,o,kh,kw,stride,pad)
M2KD_OP(conv2d_forward) {
  Args a(info, "conv2d_forward", Devices::any);
  Conv2dShape s = conv_shape(a, 4);
  const float* x = a.f32(0, "x", s.n * s.c * s.h * s.w);
  const float* w = a.f32(1, "w", s.o * s.c * s.kh * s.kw);
  const float* b = a.f32_opt(2, "bias", s.o);
  float* y = a.f32(3, "y", s.n * s.o * s.oh * s.ow);
  M2KD_DISPATCH(a, conv2d_forward(cpu(), s, x, w, b, y), cuda::conv2d_forward(gpu(), s, x, w, b, y));
  return info.Env().Undefined();
}

// conv2d_backward_data(dy, w, dx, n,c,h,w,o,kh,kw,stride,pad)   dx +=
M2KD_OP(conv2d_backward_data) {
  Args a(info, "conv2d_backward_data", Devices::any);
  Conv2dShape s = conv_shape(a, 3);
  const float* dy = a.f32(0, "dy", s.n * s.o * s.oh * s.ow);
  const float* w = a.f32(1, "w", s.o * s.c * s.kh * s.kw);
  float* dx = a.f32(2, "dx", s.n * s.c * s.h * s.w);
  M2KD_DISPATCH(a, conv2d_backward_data(cpu(), s, dy, w, dx), cuda::conv2d_backward_data(gpu(), s, dy, w, dx));
  return info.Env().Undefined();
}

// conv2d_backward_weight(x, dy, dw, db|-1, n,c,h,w,o,kh,kw,stride,pad)   dw +=, db +=
M2KD_OP(conv2d_backward_weight) {
  Args a(info, "conv2d_backward_weight", Devices::any);
  Conv2dShape s = conv_shape(a, 4);
  const float* x = a.f32(0, "x", s.n * s.c * s.h * s.w);
  const float* dy = a.f32(1, "dy", s.n * s.o * s.oh * s.ow);
  float* dw = a.f32(2, "dw", s.o * s.c * s.kh * s.kw);
  float* db = a.f32_opt(3, "db", s.o);
  M2KD_DISPATCH(a, conv2d_backward_weight(cpu(), s, x, dy, dw, db),
                cuda::conv2d_backward_weight(gpu(), s, x, dy, dw, db));
  return info.Env().Undefined();
}

void linear_dims(Args& a, size_t k, int64_t& n, int64_t& in, int64_t& out) {
  n = a.i64(k, "n"); in = a.i64(k + 1, "in"); out = a.i64(k + 2, "out");
  a.set_shapes("x" + dims({n, in}) + " w" + dims({out, in}));
  a.require(n > 0 && in > 0 && out > 0, "all dimensions must be positive");
}

// linear_forward(x, w, bias|-1, y, n, in, out)
M2KD_OP(linear_forward) {
  Args a(info, "linear_forward", Devices::any);
  int64_t n, in, out;
  linear_dims(a, 4, n, in, out);
  const float* x = a.f32(0, "x", n * in);
  const float* w = a.f32(1, "w", out * in);
  const float* b = a.f32_opt(2, "bias", out);
  float* y = a.f32(3, "y", n * out);
  M2KD_DISPATCH(a, linear_forward(cpu(), n, in, out, x, w, b, y), cuda::linear_forward(gpu(), n, in, out, x, w, b, y));
  return info.Env().Undefined();
}

// linear_backward(x, w, dy, dx|-1, dw|-1, db|-1, n, in, out)   all +=
M2KD_OP(linear_backward) {
  Args a(info, "linear_backward", Devices::any);
  int64_t n, in, out;
  linear_dims(a, 6, n, in, out);
  const float* x = a.f32(0, "x", n * in);
  const float* w = a.f32(1, "w", out * in);
  const float* dy = a.f32(2, "dy", n * out);
  float* dx = a.f32_opt(3, "dx", n * in);
  float* dw = a.f32_opt(4, "dw", out * in);
  float* db = a.f32_opt(5, "db", out);
  M2KD_DISPATCH(a, linear_backward(cpu(), n, in, out, x, w, dy, dx, dw, db),
                cuda::linear_backward(gpu(), n, in, out, x, w, dy, dx, dw, db));
  return info.Env().Undefined();
}

// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
M2KD_OP(sgemm) {
  Args a(info, "sgemm", Devices::any);
  bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  int64_t M = a.i64(2, "M"), N = a.i64(3, "N"), K = a.i64(4, "K");
  float alpha = float(a.f64(5, "alpha"));
  int64_t lda = a.i64(7, "lda"), ldb = a.i64(9, "ldb"), ldc = a.i64(12, "ldc");
  float beta = float(a.f64(10, "beta"));
  a.set_shapes("M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
  a.require(M > 0 && N > 0 && K > 0, "M, N, K must be positive");
  int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  a.require(lda >= ac && ldb >= bc && ldc >= N, "leading dimension smaller than the row length");
  const float* A = a.f32(6, "A", (ar - 1) * lda + ac);
  const float* B = a.f32(8, "B", (br - 1) * ldb + bc);
  float* C = a.f32(11, "C", (M - 1) * ldc + N);
  M2KD_DISPATCH(a, sgemm(cpu(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc),
                cuda::sgemm(gpu(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
