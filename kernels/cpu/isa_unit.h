// One ISA variant of a kernel family: define M2KD_ISA_LEVEL (0 scalar, 1 AVX2, 2 AVX-512) and
// M2KD_ISA_IMPL (the family's "foo_impl.inc"), then include this file. It opens the matching
// target pragma and namespace m2kd::cpu::{scalar,avx2,avx512}, includes the implementation,
// and closes both. See cpu_common.h.
#include "cpu_common.h"

#if !defined(M2KD_ISA_LEVEL) || !defined(M2KD_ISA_IMPL)
#error "define M2KD_ISA_LEVEL and M2KD_ISA_IMPL before including isa_unit.h"
#endif

#if M2KD_ISA_LEVEL == 2
#pragma GCC push_options
M2KD_TARGET_PRAGMA(M2KD_TARGET_AVX512)
namespace m2kd { namespace cpu { namespace avx512 {
#include M2KD_ISA_IMPL
}  // namespace avx512
}  // namespace cpu
}  // namespace m2kd
#pragma GCC pop_options
#elif M2KD_ISA_LEVEL == 1
#pragma GCC push_options
M2KD_TARGET_PRAGMA(M2KD_TARGET_AVX2)
namespace m2kd { namespace cpu { namespace avx2 {
#include M2KD_ISA_IMPL
}  // namespace avx2
}  // namespace cpu
}  // namespace m2kd
#pragma GCC pop_options
#else
namespace m2kd { namespace cpu { namespace scalar {
#include M2KD_ISA_IMPL
}  // namespace scalar
}  // namespace cpu
}  // namespace m2kd
#endif
