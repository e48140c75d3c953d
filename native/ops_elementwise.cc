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
  Args a(info, "relu_forward", Devices::any);
  int64_t n = count_arg(a, 2);
  const float* x = a.f32(0, "x", n);
  float* y = a.f32(1, "y", n);
  M2KD_DISPATCH(a, relu_forward(cpu(), n, x, y), cuda::relu_forward(gpu(), n, x, y));
  return info.Env().Undefined();
}

// relu_backward(y, dy, dx, count)   dx +=
M2KD_OP(relu_backward) {
  Args a(info, "relu_backward", Devices::any);
  int64_t n = count_arg(a, 3);
  const float* y = a.f32(0, "y", n);
  const float* dy = a.f32(1, "dy", n);
  float* dx = a.f32(2, "dx", n);
  M2KD_DISPATCH(a, relu_backward(cpu(), n, y, dy, dx), cuda::relu_backward(gpu(), n, y, dy, dx));
  return info.Env().Undefined();
}

// add_relu_forward(a, b, y, count): y = max(a + b, 0)
M2KD_OP(add_relu_forward) {
  Args a(info, "add_relu_forward", Devices::any);
  int64_t n = count_arg(a, 3);
  const float* pa = a.f32(0, "a", n);
  const float* pb = a.f32(1, "b", n);
  float* y = a.f32(2, "y", n);
  M2KD_DISPATCH(a, add_relu_forward(cpu(), n, pa, pb, y), cuda::add_relu_forward(gpu(), n, pa, pb, y));
  return info.Env().Undefined();
}

// add_relu_backward(y, dy, da|-1, db|-1, count, overwrite_a, overwrite_b)   da +=, db += (or =)
M2KD_OP(add_relu_backward) {
  Args a(info, "add_relu_backward", Devices::any);
  int64_t n = count_arg(a, 4);
  bool oa = info.Length() > 5 && a.flag(5, "overwrite_a"), ob = info.Length() > 6 && a.flag(6, "overwrite_b");
  const float* y = a.f32(0, "y", n);
  const float* dy = a.f32(1, "dy", n);
  float* da = a.f32_opt(2, "da", n);
  float* db = a.f32_opt(3, "db", n);
  M2KD_DISPATCH(a, add_relu_backward(cpu(), n, y, dy, da, db, oa, ob),
                cuda::add_relu_backward(gpu(), n, y, dy, da, db, oa, ob));
  return info.Env().Undefined();
}

// axpby(alpha, x, beta, z, y, count): y = alpha*x + beta*z
M2KD_OP(axpby) {
  Args a(info, "axpby", Devices::any);
  int64_t n = count_arg(a, 5);
  const float alpha = float(a.f64(0, "alpha")), beta = float(a.f64(2, "beta"));
  const float* x = a.f32(1, "x", n);
  const float* z = a.f32(3, "z", n);
  float* y = a.f32(4, "y", n);
  M2KD_DISPATCH(a, axpby(cpu(), n, alpha, x, beta, z, y), cuda::axpby(gpu(), n, alpha, x, beta, z, y));
  return info.Env().Undefined();
}

// mul_forward(a, b, y, count)
M2KD_OP(mul_forward) {
  Args a(info, "mul_forward", Devices::any);
  int64_t n = count_arg(a, 3);
  const float* pa = a.f32(0, "a", n);
  const float* pb = a.f32(1, "b", n);
  float* y = a.f32(2, "y", n);
  M2KD_DISPATCH(a, mul_forward(cpu(), n, pa, pb, y), cuda::mul_forward(gpu(), n, pa, pb, y));
  return info.Env().Undefined();
}

// affine_scalar(x, scale, shift, y, count): y = scale*x + shift
M2KD_OP(affine_scalar) {
  Args a(info, "affine_scalar", Devices::any);
  int64_t n = count_arg(a, 4);
  const float sc = float(a.f64(1, "scale")), sh = float(a.f64(2, "shift"));
  const float* x = a.f32(0, "x", n);
  float* y = a.f32(3, "y", n);
  M2KD_DISPATCH(a, affine_scalar(cpu(), n, x, sc, sh, y), cuda::affine_scalar(gpu(), n, x, sc, sh, y));
  return info.Env().Undefined();
}

// fill(y, count, value)
M2KD_OP(fill) {
  Args a(info, "fill", Devices::any);
  int64_t n = count_arg(a, 1);
  const float v = float(a.f64(2, "value"));
  float* y = a.f32(0, "y", n);
  M2KD_DISPATCH(a, fill(cpu(), n, v, y), cuda::fill(gpu(), n, v, y));
  return info.Env().Undefined();
}

// sigmoid_forward(x, y, count)
M2KD_OP(sigmoid_forward) {
  Args a(info, "sigmoid_forward", Devices::any);
  int64_t n = count_arg(a, 2);
  const float* x = a.f32(0, "x", n);
  float* y = a.f32(1, "y", n);
  M2KD_DISPATCH(a, sigmoid_forward(cpu(), n, x, y), cuda::sigmoid_forward(gpu(), n, x, y));
  return info.Env().Undefined();
}

// sigmoid_backward(y, dy, dx, count)   dx +=
M2KD_OP(sigmoid_backward) {
  Args a(info, "sigmoid_backward", Devices::any);
  int64_t n = count_arg(a, 3);
  const float* y = a.f32(0, "y", n);
  const float* dy = a.f32(1, "dy", n);
  float* dx = a.f32(2, "dx", n);
  M2KD_DISPATCH(a, sigmoid_backward(cpu(), n, y, dy, dx), cuda::sigmoid_backward(gpu(), n, y, dy, dx));
  return info.Env().Undefined();
}

// sum_all(x, count) -> number
M2KD_OP(sum_all) {
  Args a(info, "sum_all", Devices::any);
  int64_t n = count_arg(a, 1);
  const float* x = a.f32(0, "x", n);
  double s = 0.0;
  M2KD_DISPATCH(a, s = sum_all(cpu(), n, x), s = cuda::sum_all(gpu(), n, x));
  return Napi::Number::New(info.Env(), s);
}

// add_scalar_inplace(dx, count, g): dx += g
M2KD_OP(add_scalar_inplace) {
  Args a(info, "add_scalar_inplace", Devices::any);
  int64_t n = count_arg(a, 1);
  const float g = float(a.f64(2, "g"));
  float* dx = a.f32(0, "dx", n);
  M2KD_DISPATCH(a, add_scalar_inplace(cpu(), n, g, dx), cuda::add_scalar_inplace(gpu(), n, g, dx));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
