// Bindings: the linear (fully connected) layer, w[out, in]: forward and backward (all gradients +=).
// Checks every shape and buffer size, then calls the kernel on the device of the buffers.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

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

}  // namespace
}  // namespace native
}  // namespace m2kd
