// Bindings: batch norm 2d (train forward with running-stat update, eval forward, backward),
// with the optional fused ReLU.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

void bn_dims(Args& a, size_t k, int64_t& n, int64_t& c, int64_t& hw) {
  n = a.i64(k, "n"); c = a.i64(k + 1, "c"); hw = a.i64(k + 2, "hw");
  a.set_shapes("x[" + std::to_string(n) + "," + std::to_string(c) + ",hw=" + std::to_string(hw) + "]");
  a.require(n > 0 && c > 0 && hw > 0, "all dimensions must be positive");
}

// batchnorm2d_forward_train(x, gamma, beta, rmean|-1, rvar|-1, save_mean, save_invstd, y,
//                           n, c, hw, eps, momentum, relu)
M2KD_OP(batchnorm2d_forward_train) {
  Args a(info, "batchnorm2d_forward_train", Devices::any);
  int64_t n, c, hw;
  bn_dims(a, 8, n, c, hw);
  float eps = float(a.f64(11, "eps")), momentum = float(a.f64(12, "momentum"));
  bool relu = a.flag(13, "relu");
  a.require(eps > 0, "eps must be > 0");
  a.require(n * hw > 1, "batch norm in training mode needs more than one value per channel");
  const float* x = a.f32(0, "x", n * c * hw);
  const float* g = a.f32(1, "gamma", c);
  const float* b = a.f32(2, "beta", c);
  float* rm = a.f32_opt(3, "running_mean", c);
  float* rv = a.f32_opt(4, "running_var", c);
  float* sm = a.f32(5, "save_mean", c);
  float* si = a.f32(6, "save_invstd", c);
  float* y = a.f32(7, "y", n * c * hw);
  M2KD_DISPATCH(a, batchnorm2d_forward_train(cpu(), n, c, hw, x, g, b, eps, momentum, rm, rv, sm, si, relu, y),
                cuda::batchnorm2d_forward_train(gpu(), n, c, hw, x, g, b, eps, momentum, rm, rv, sm, si, relu, y));
  return info.Env().Undefined();
}

// batchnorm2d_forward_eval(x, gamma, beta, rmean, rvar, y, n, c, hw, eps, relu)
M2KD_OP(batchnorm2d_forward_eval) {
  Args a(info, "batchnorm2d_forward_eval", Devices::any);
  int64_t n, c, hw;
  bn_dims(a, 6, n, c, hw);
  float eps = float(a.f64(9, "eps"));
  bool relu = a.flag(10, "relu");
  const float* x = a.f32(0, "x", n * c * hw);
  const float* g = a.f32(1, "gamma", c);
  const float* b = a.f32(2, "beta", c);
  const float* rm = a.f32(3, "running_mean", c);
  const float* rv = a.f32(4, "running_var", c);
  float* y = a.f32(5, "y", n * c * hw);
  M2KD_DISPATCH(a, batchnorm2d_forward_eval(cpu(), n, c, hw, x, g, b, rm, rv, eps, relu, y),
                cuda::batchnorm2d_forward_eval(gpu(), n, c, hw, x, g, b, rm, rv, eps, relu, y));
  return info.Env().Undefined();
}

// batchnorm2d_backward(x, y|-1, dy, gamma, save_mean, save_invstd, dx, dgamma|-1, dbeta|-1,
//                      n, c, hw, relu, overwrite_dx)
M2KD_OP(batchnorm2d_backward) {
  Args a(info, "batchnorm2d_backward", Devices::any);
  int64_t n, c, hw;
  bn_dims(a, 9, n, c, hw);
  bool relu = a.flag(12, "relu");
  const float* x = a.f32(0, "x", n * c * hw);
  const float* y = relu ? a.f32(1, "y", n * c * hw) : a.f32_opt(1, "y", n * c * hw);
  const float* dy = a.f32(2, "dy", n * c * hw);
  const float* g = a.f32(3, "gamma", c);
  const float* sm = a.f32(4, "save_mean", c);
  const float* si = a.f32(5, "save_invstd", c);
  float* dx = a.f32(6, "dx", n * c * hw);
  float* dg = a.f32_opt(7, "dgamma", c);
  float* db = a.f32_opt(8, "dbeta", c);
  bool overwrite = info.Length() > 13 && a.flag(13, "overwrite_dx");
  M2KD_DISPATCH(a, batchnorm2d_backward(cpu(), n, c, hw, x, y, dy, g, sm, si, relu, dx, dg, db, overwrite),
                cuda::batchnorm2d_backward(gpu(), n, c, hw, x, y, dy, g, sm, si, relu, dx, dg, db, overwrite));
  return info.Env().Undefined();
}

// batchnorm2d_backward_eval(x, y|-1, dy, gamma, rmean, rvar, dx|-1, dgamma|-1, dbeta|-1,
//                           n, c, hw, eps, relu)   all +=
M2KD_OP(batchnorm2d_backward_eval) {
  Args a(info, "batchnorm2d_backward_eval", Devices::any);
  int64_t n, c, hw;
  bn_dims(a, 9, n, c, hw);
  float eps = float(a.f64(12, "eps"));
  bool relu = a.flag(13, "relu");
  const float* x = a.f32(0, "x", n * c * hw);
  const float* y = relu ? a.f32(1, "y", n * c * hw) : a.f32_opt(1, "y", n * c * hw);
  const float* dy = a.f32(2, "dy", n * c * hw);
  const float* g = a.f32(3, "gamma", c);
  const float* rm = a.f32(4, "running_mean", c);
  const float* rv = a.f32(5, "running_var", c);
  float* dx = a.f32_opt(6, "dx", n * c * hw);
  float* dg = a.f32_opt(7, "dgamma", c);
  float* db = a.f32_opt(8, "dbeta", c);
  M2KD_DISPATCH(a, batchnorm2d_backward_eval(cpu(), n, c, hw, x, y, dy, g, rm, rv, eps, relu, dx, dg, db),
                cuda::batchnorm2d_backward_eval(gpu(), n, c, hw, x, y, dy, g, rm, rv, eps, relu, dx, dg, db));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
