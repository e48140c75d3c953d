// Bindings: conv2d (forward, backward-data, backward-weight).
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
  check_conv_shape(a, s);
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

}  // namespace
}  // namespace native
}  // namespace m2kd
