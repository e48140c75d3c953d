// gemm kernels, scalar variant (see isa_unit.h).
#define M2KD_ISA_LEVEL 0
#define M2KD_ISA_IMPL "gemm_impl.inc"
#include "isa_unit.h"
