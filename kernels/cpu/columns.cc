// Column slice copy of row-major matrices. Pure memory movement: no ISA
// variants (the compiler vectorises the row loops at baseline).
#include "cpu_common.h"

namespace m2kd {

void copy_columns(const Exec& ex, int64_t rows, int64_t cols, const float* src, int64_t src_ld,
                  int64_t src_col0, float* dst, int64_t dst_ld, int64_t dst_col0, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  auto body = [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* s = src + r * src_ld + src_col0;
      float* d = dst + r * dst_ld + dst_col0;
      if (accumulate) {
        for (int64_t j = 0; j < cols; ++j) d[j] += s[j];
      } else {
        std::memmove(d, s, sizeof(float) * cols);
      }
    }
  };
  if (rows * cols < (1 << 16) || rows < 2) body(0, rows, 0);
  else ex.parallel_for(rows, body);
}

}  // namespace m2kd
