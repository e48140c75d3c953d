// Bindings: global average pooling and max pooling (forward and backward).
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// global_avg_pool_forward(x, y, n, c, hw)
M2KD_OP(global_avg_pool_forward) {
  Args a(info, "global_avg_pool_forward", Devices::any);
  int64_t n = a.i64(2, "n"), c = a.i64(3, "c"), hw = a.i64(4, "hw");
  a.set_shapes("x[" + std::to_string(n) + "," + std::to_string(c) + ",hw=" + std::to_string(hw) + "]");
  a.require(n > 0 && c > 0 && hw > 0, "all dimensions must be positive");
  const float* x = a.f32(0, "x", n * c * hw);
  float* y = a.f32(1, "y", n * c);
  M2KD_DISPATCH(a, global_avg_pool_forward(cpu(), n, c, hw, x, y), cuda::global_avg_pool_forward(gpu(), n, c, hw, x, y));
  return info.Env().Undefined();
}

// global_avg_pool_backward(dy, dx, n, c, hw)   dx +=
M2KD_OP(global_avg_pool_backward) {
  Args a(info, "global_avg_pool_backward", Devices::any);
  int64_t n = a.i64(2, "n"), c = a.i64(3, "c"), hw = a.i64(4, "hw");
  a.set_shapes("x[" + std::to_string(n) + "," + std::to_string(c) + ",hw=" + std::to_string(hw) + "]");
  a.require(n > 0 && c > 0 && hw > 0, "all dimensions must be positive");
  const float* dy = a.f32(0, "dy", n * c);
  float* dx = a.f32(1, "dx", n * c * hw);
  M2KD_DISPATCH(a, global_avg_pool_backward(cpu(), n, c, hw, dy, dx), cuda::global_avg_pool_backward(gpu(), n, c, hw, dy, dx));
  return info.Env().Undefined();
}

Pool2dShape pool_shape(Args& a, size_t k) {
  Pool2dShape s{};
  s.n = a.i64(k, "n"); s.c = a.i64(k + 1, "c"); s.h = a.i64(k + 2, "h"); s.w = a.i64(k + 3, "w");
  s.k = a.i64(k + 4, "kernel"); s.stride = a.i64(k + 5, "stride"); s.pad = a.i64(k + 6, "pad");
  a.set_shapes("x" + dims({s.n, s.c, s.h, s.w}) + " kernel " + std::to_string(s.k) + " stride " +
               std::to_string(s.stride) + " pad " + std::to_string(s.pad));
  a.require(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.k > 0 && s.stride > 0, "dimensions must be positive");
  a.require(s.pad >= 0 && 2 * s.pad <= s.k, "pad must be in 0..kernel/2");
  a.require(s.h + 2 * s.pad >= s.k && s.w + 2 * s.pad >= s.k, "kernel larger than the padded input");
  s.oh = (s.h + 2 * s.pad - s.k) / s.stride + 1;
  s.ow = (s.w + 2 * s.pad - s.k) / s.stride + 1;
  return s;
}

// max_pool2d_forward(x, y, argmax(i32), n,c,h,w, k, stride, pad)
M2KD_OP(max_pool2d_forward) {
  Args a(info, "max_pool2d_forward", Devices::any);
  Pool2dShape s = pool_shape(a, 3);
  int64_t out = s.n * s.c * s.oh * s.ow;
  const float* x = a.f32(0, "x", s.n * s.c * s.h * s.w);
  float* y = a.f32(1, "y", out);
  int32_t* am = a.buf<int32_t>(2, "argmax", DType::i32, out);
  M2KD_DISPATCH(a, max_pool2d_forward(cpu(), s, x, y, am), cuda::max_pool2d_forward(gpu(), s, x, y, am));
  return info.Env().Undefined();
}

// max_pool2d_backward(dy, argmax(i32), dx, n,c,h,w, k, stride, pad)   dx +=
M2KD_OP(max_pool2d_backward) {
  Args a(info, "max_pool2d_backward", Devices::any);
  Pool2dShape s = pool_shape(a, 3);
  int64_t out = s.n * s.c * s.oh * s.ow;
  const float* dy = a.f32(0, "dy", out);
  const int32_t* am = a.buf<int32_t>(1, "argmax", DType::i32, out);
  float* dx = a.f32(2, "dx", s.n * s.c * s.h * s.w);
  M2KD_DISPATCH(a, max_pool2d_backward(cpu(), s, dy, am, dx), cuda::max_pool2d_backward(gpu(), s, dy, am, dx));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
