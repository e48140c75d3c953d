// masked conv kernels, avx512 variant (see isa_unit.h and masked_conv_impl.inc).
#include <array>
#include <cstdlib>
#include <utility>
#include "cpu_common.h"
#define M2KD_ISA_LEVEL 2
#define M2KD_ISA_IMPL "masked_conv_impl.inc"
#include "isa_unit.h"
