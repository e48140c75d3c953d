// Horizontal flip of NCHW images, out of place, for every sample or those whose u8 flag is set.
// Pure memory movement: no ISA variants (the compiler vectorises the row loops at baseline).
#include "cpu_common.h"

namespace m2kd {

// Samples with flag 0 are copied unchanged (y is always fully written).
void hflip(const Exec& ex, int64_t n, int64_t c, int64_t h, int64_t w, const uint8_t* flags,
           const float* x, float* y) {
  if (n <= 0) return;
  const int64_t per = c * h;  // rows per sample
  auto body = [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xs = x + r * w;
      float* __restrict ys = y + r * w;
      if (flags && !flags[r / per]) {
        std::memcpy(ys, xs, sizeof(float) * w);
      } else {
        for (int64_t j = 0; j < w; ++j) ys[j] = xs[w - 1 - j];
      }
    }
  };
  if (n * per * w < (1 << 15)) body(0, n * per, 0);
  else ex.parallel_for(n * per, body);
}

}  // namespace m2kd
