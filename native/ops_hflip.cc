// Binding: horizontal flip of NCHW images (all samples, or those whose u8 flag is set), out of place.
// CPU or CUDA, by the device of the buffers.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// hflip(x, y, flags(u8)|-1, n, c, h, w)
M2KD_OP(hflip) {
  Args a(info, "hflip", Devices::any);
  int64_t n = a.i64(3, "n"), c = a.i64(4, "c"), h = a.i64(5, "h"), w = a.i64(6, "w");
  a.set_shapes("x" + dims({n, c, h, w}));
  a.require(n > 0 && c > 0 && h > 0 && w > 0, "all dimensions must be positive");
  a.require(info[0].ToNumber().Int64Value() != info[1].ToNumber().Int64Value(), "hflip is out of place: y must differ from x");
  const float* x = a.f32(0, "x", n * c * h * w);
  float* y = a.f32(1, "y", n * c * h * w);
  const uint8_t* flags = a.opt<uint8_t>(2, "flags", DType::u8, n);
  M2KD_DISPATCH(a, hflip(cpu(), n, c, h, w, flags, x, y), cuda::hflip(gpu(), n, c, h, w, flags, x, y));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
