// Binding: the SGD update with momentum, weight decay and a u8 freeze mask (frozen elements keep
// their exact bits). CPU or CUDA, by the device of the buffers.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// sgd_update(w, grad, momentum_buf|-1, frozen(u8)|-1, count, lr, momentum, weight_decay)
M2KD_OP(sgd_update) {
  Args a(info, "sgd_update", Devices::any);
  int64_t n = a.i64(4, "count");
  a.set_shapes("count " + std::to_string(n));
  a.require(n >= 0, "count must be >= 0");
  float lr = float(a.f64(5, "lr")), mom = float(a.f64(6, "momentum")), wd = float(a.f64(7, "weight_decay"));
  float* buf = a.f32_opt(2, "momentum_buf", n);
  a.require(mom == 0.0f || buf != nullptr, "momentum > 0 needs a momentum buffer");
  float* w = a.f32(0, "w", n);
  const float* g = a.f32(1, "grad", n);
  const uint8_t* frozen = a.opt<uint8_t>(3, "frozen", DType::u8, n);
  M2KD_DISPATCH(a, sgd_update(cpu(), n, w, g, buf, frozen, lr, mom, wd),
                cuda::sgd_update(gpu(), n, w, g, buf, frozen, lr, mom, wd));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
