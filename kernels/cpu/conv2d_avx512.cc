// conv2d kernels, avx512 variant (see isa_unit.h).
#define M2KD_ISA_LEVEL 2
#define M2KD_ISA_IMPL "conv2d_impl.inc"
#include "isa_unit.h"
