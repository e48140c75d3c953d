// Bindings: elementwise ops over contiguous f32 buffers (relu, axpby, mul, scalar affine,
// fill, sigmoid) and the full reductions (sum).
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

int64_t count_arg(Args& a, size_t i) {
  int64_t n = a.i64(i, "count");
  a.set_shapes("count " + std::to_string(n));
  a.require(n >= 0, "count must be >= 0");
  return n;
}

// relu_forward(x, y, count)
M2KD_OP(relu_forward) {
  Args a(info, "relu_forward");
  int64_t n = count_arg(a, 2);
  relu_forward(cpu(), n, a.f32(0, "x", n), a.f32(1, "y", n));
  return info.Env().Undefined();
}

// relu_backward(y, dy, dx, count)   dx +=
M2KD_OP(relu_backward) {
  Args a(info, "relu_backward");
  int64_t n = count_arg(a, 3);
  relu_backward(cpu(), n, a.f32(0, "y", n), a.f32(1, "dy", n), a.f32(2, "dx", n));
  return info.Env().Undefined();
}

// add_relu_forward(a, b, y, count): y = max(a + b, 0)
M2KD_OP(add_relu_forward) {
  Args a(info, "add_relu_forward");
  int64_t n = count_arg(a, 3);
  add_relu_forward(cpu(), n, a.f32(0, "a", n), a.f32(1, "b", n), a.f32(2, "y", n));
  return info.Env().Undefined();
}

// add_relu_backward(y, dy, da|-1, db|-1, count, overwrite_a, overwrite_b)   da +=, db += (or =)
M2KD_OP(add_relu_backward) {
  Args a(info, "add_relu_backward");
  int64_t n = count_arg(a, 4);
  bool oa = info.Length() > 5 && a.flag(5, "overwrite_a"), ob = info.Length() > 6 && a.flag(6, "overwrite_b");
  add_relu_backward(cpu(), n, a.f32(0, "y", n), a.f32(1, "dy", n), a.f32_opt(2, "da", n), a.f32_opt(3, "db", n), oa, ob);
  return info.Env().Undefined();
}

// axpby(alpha, x, beta, z, y, count): y = alpha*x + beta*z
M2KD_OP(axpby) {
  Args a(info, "axpby");
  int64_t n = count_arg(a, 5);
  axpby(cpu(), n, float(a.f64(0, "alpha")), a.f32(1, "x", n), float(a.f64(2, "beta")), a.f32(3, "z", n),
        a.f32(4, "y", n));
  return info.Env().Undefined();
}

// mul_forward(a, b, y, count)
M2KD_OP(mul_forward) {
  Args a(info, "mul_forward");
  int64_t n = count_arg(a, 3);
  mul_forward(cpu(), n, a.f32(0, "a", n), a.f32(1, "b", n), a.f32(2, "y", n));
  return info.Env().Undefined();
}

// affine_scalar(x, scale, shift, y, count): y = scale*x + shift
M2KD_OP(affine_scalar) {
  Args a(info, "affine_scalar");
  int64_t n = count_arg(a, 4);
  affine_scalar(cpu(), n, a.f32(0, "x", n), float(a.f64(1, "scale")), float(a.f64(2, "shift")), a.f32(3, "y", n));
  return info.Env().Undefined();
}

// fill(y, count, value)
M2KD_OP(fill) {
  Args a(info, "fill");
  int64_t n = count_arg(a, 1);
  fill(cpu(), n, float(a.f64(2, "value")), a.f32(0, "y", n));
  return info.Env().Undefined();
}

// sigmoid_forward(x, y, count)
M2KD_OP(sigmoid_forward) {
  Args a(info, "sigmoid_forward");
  int64_t n = count_arg(a, 2);
  sigmoid_forward(cpu(), n, a.f32(0, "x", n), a.f32(1, "y", n));
  return info.Env().Undefined();
}

// sigmoid_backward(y, dy, dx, count)   dx +=
M2KD_OP(sigmoid_backward) {
  Args a(info, "sigmoid_backward");
  int64_t n = count_arg(a, 3);
  sigmoid_backward(cpu(), n, a.f32(0, "y", n), a.f32(1, "dy", n), a.f32(2, "dx", n));
  return info.Env().Undefined();
}

// sum_all(x, count) -> number
M2KD_OP(sum_all) {
  Args a(info, "sum_all");
  int64_t n = count_arg(a, 1);
  return Napi::Number::New(info.Env(), sum_all(cpu(), n, a.f32(0, "x", n)));
}

// add_scalar_inplace(dx, count, g): dx += g
M2KD_OP(add_scalar_inplace) {
  Args a(info, "add_scalar_inplace");
  int64_t n = count_arg(a, 1);
  add_scalar_inplace(cpu(), n, float(a.f64(2, "g")), a.f32(0, "dx", n));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
