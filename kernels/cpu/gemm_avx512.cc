// gemm family, avx512 variant (see cpu_common.h).
#include "cpu_common.h"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,f16c,popcnt,prefer-vector-width=512")  // = M2KD_TARGET_AVX512 (pragmas do not expand macros)
#define M2KD_ISA_LEVEL 2
namespace m2kd { namespace cpu { namespace avx512 {
#include "gemm_impl.inc"
}  // namespace avx512
}  // namespace cpu
}  // namespace m2kd
#pragma GCC pop_options
