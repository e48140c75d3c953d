// Bindings: column copy of row-major matrices (slice / concat of logits), optionally accumulating.
// CPU or CUDA, by the device of the buffers.
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

}  // namespace
}  // namespace native
}  // namespace m2kd
