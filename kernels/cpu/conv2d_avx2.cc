// conv2d family, avx2 variant (see cpu_common.h).
#include "cpu_common.h"
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,f16c,popcnt")  // = M2KD_TARGET_AVX2 (pragmas do not expand macros)
#define M2KD_ISA_LEVEL 1
namespace m2kd { namespace cpu { namespace avx2 {
#include "conv2d_impl.inc"
}  // namespace avx2
}  // namespace cpu
}  // namespace m2kd
#pragma GCC pop_options
