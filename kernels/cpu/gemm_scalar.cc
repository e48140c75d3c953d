// gemm family, scalar variant (see cpu_common.h).
#include "cpu_common.h"
#define M2KD_ISA_LEVEL 0
namespace m2kd { namespace cpu { namespace scalar {
#include "gemm_impl.inc"
}  // namespace scalar
}  // namespace cpu
}  // namespace m2kd
