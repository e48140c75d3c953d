// conv2d public entry points; dispatch to the ISA variants in conv2d_{scalar,avx2,avx512}.cc.
#include "cpu_common.h"

namespace m2kd {
namespace cpu {
#define M2KD_CONV_DECLS                                                                         \
  void conv2d_forward(const Exec& ex, const Conv2dShape& s, const float* x, const float* w,     \
                      const float* bias, float* y);                                             \
  void conv2d_backward_data(const Exec& ex, const Conv2dShape& s, const float* dy,              \
                            const float* w, float* dx);                                         \
  void conv2d_backward_weight(const Exec& ex, const Conv2dShape& s, const float* x,             \
                              const float* dy, float* dw, float* db);
namespace scalar { M2KD_CONV_DECLS }
namespace avx2 { M2KD_CONV_DECLS }
namespace avx512 { M2KD_CONV_DECLS }
#undef M2KD_CONV_DECLS
}  // namespace cpu

void conv2d_forward(const Exec& ex, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y) {
  M2KD_ISA_DISPATCH(ex.isa(), conv2d_forward(ex, s, x, w, bias, y));
}
void conv2d_backward_data(const Exec& ex, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx) {
  M2KD_ISA_DISPATCH(ex.isa(), conv2d_backward_data(ex, s, dy, w, dx));
}
void conv2d_backward_weight(const Exec& ex, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, float* db) {
  M2KD_ISA_DISPATCH(ex.isa(), conv2d_backward_weight(ex, s, x, dy, dw, db));
}

}  // namespace m2kd
