// Fused masked convolution: the plan builder (ISA-independent) and the public entry point,
// dispatched to masked_conv_{scalar,avx2,avx512}.cc. Semantics: masked_conv_impl.inc.
#include "cpu_common.h"

namespace m2kd {
namespace cpu {
#define M2KD_MASKED_DECLS                                                                       \
  void masked_conv_forward(const Exec& ex, const MaskedConvShape& s, const int32_t* plan,       \
                           const int32_t* steps, const float* x, const float* scale,            \
                           const float* shift, const float* residual, bool relu, float* y);
namespace scalar { M2KD_MASKED_DECLS }
namespace avx2 { M2KD_MASKED_DECLS }
namespace avx512 { M2KD_MASKED_DECLS }
#undef M2KD_MASKED_DECLS
}  // namespace cpu

int64_t masked_conv_plan_ints(int64_t o, int64_t c, int64_t kh, int64_t kw) {
  return 8 + o * 256 + 2 * o * c * kh * kw;
}

void masked_conv_build_plan(int64_t o, int64_t c, int64_t kh, int64_t kw, const float* w,
                            const uint8_t* mask, int32_t* plan) {
  const int64_t ckk = c * kh * kw;
  plan[0] = 0x4D4B4350;
  plan[1] = int32_t(o); plan[2] = int32_t(c); plan[3] = int32_t(kh); plan[4] = int32_t(kw);
  plan[5] = plan[6] = plan[7] = 0;
  int32_t* counts = plan + 8;
  int32_t* taps = counts + o * 256;
  float* wts = reinterpret_cast<float*>(taps + o * ckk);
  for (int64_t oc = 0; oc < o; ++oc) {
    int32_t* cnt = counts + oc * 256;
    const uint8_t* m = mask + oc * ckk;
    const float* wr = w + oc * ckk;
    int64_t hist[256] = {0};
    for (int64_t t = 0; t < ckk; ++t) hist[m[t]]++;
    // cnt[s] = #taps with 1 <= m <= s; start of step s's segment = cnt[s-1]
    cnt[0] = 0;
    for (int s = 1; s < 256; ++s) cnt[s] = cnt[s - 1] + int32_t(hist[s]);
    int64_t pos[256];
    pos[0] = 0;
    for (int s = 1; s < 256; ++s) pos[s] = cnt[s - 1];
    for (int64_t t = 0; t < ckk; ++t) {
      const int s = m[t];
      if (s == 0) continue;
      const int64_t p = pos[s]++;
      taps[oc * ckk + p] = int32_t(t);
      wts[oc * ckk + p] = wr[t];
    }
    for (int64_t p = cnt[255]; p < ckk; ++p) {  // unused tail: defined contents
      taps[oc * ckk + p] = 0;
      wts[oc * ckk + p] = 0.f;
    }
  }
}

void masked_conv_forward(const Exec& ex, const MaskedConvShape& s, const int32_t* plan,
                         const int32_t* steps, const float* x, const float* scale,
                         const float* shift, const float* residual, bool relu, float* y) {
  M2KD_ISA_DISPATCH(ex.isa(), masked_conv_forward(ex, s, plan, steps, x, scale, shift, residual, relu, y));
}

}  // namespace m2kd
