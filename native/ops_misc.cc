// Bindings: column copy (slice / concat of logits), horizontal flip, masked SGD update
// (CPU or CUDA, by the device of the buffers).
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// copy_columns(src, src_ld, src_col0, dst, dst_ld, dst_col0, rows, cols, accumulate)
M2KD_OP(copy_columns) {
  Args a(info, "copy_columns", Devices::any);
  int64_t sld = a.i64(1, "src_ld"), sc0 = a.i64(2, "src_col0"), dld = a.i64(4, "dst_ld"), dc0 = a.i64(5, "dst_col0");
  int64_t rows = a.i64(6, "rows"), cols = a.i64(7, "cols");
  bool acc = a.flag(8, "accumulate");
  a.set_shapes("src[" + std::to_string(rows) + "," + std::to_string(sld) + "] cols " + std::to_string(sc0) + ".." +
               std::to_string(sc0 + cols) + " -> dst[" + std::to_string(rows) + "," + std::to_string(dld) + "] at " +
               std::to_string(dc0));
  a.require(rows > 0 && cols >= 0 && sc0 >= 0 && dc0 >= 0, "bad row/column range");
  a.require(sc0 + cols <= sld && dc0 + cols <= dld, "column range exceeds the row length");
  if (cols == 0) return info.Env().Undefined();
  const float* src = a.f32(0, "src", rows * sld);
  float* dst = a.f32(3, "dst", rows * dld);
  M2KD_DISPATCH(a, copy_columns(cpu(), rows, cols, src, sld, sc0, dst, dld, dc0, acc),
                cuda::copy_columns(gpu(), rows, cols, src, sld, sc0, dst, dld, dc0, acc));
  return info.Env().Undefined();
}

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
