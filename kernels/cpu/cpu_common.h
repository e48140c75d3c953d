// Shared prelude of the CPU kernels. Include it FIRST in every kernels/cpu file, before any
// `#pragma GCC target`: every standard header must be parsed with the baseline target so that
// no inline std function gets compiled for AVX-512 and then picked by the linker for the
// scalar path.
//
// ISA variants: a family `foo` keeps its math in `foo_impl.inc`, written once against the
// macros below, and three tiny translation units compile it through isa_unit.h:
//   foo_scalar.cc  : M2KD_ISA_LEVEL 0, namespace m2kd::cpu::scalar  (baseline x86-64)
//   foo_avx2.cc    : M2KD_ISA_LEVEL 1, namespace m2kd::cpu::avx2    (target avx2,fma)
//   foo_avx512.cc  : M2KD_ISA_LEVEL 2, namespace m2kd::cpu::avx512  (target avx512f/bw/vl/dq,fma)
// foo.cc holds the public entry points of m2kd_kernels.h and dispatches on ex.isa().
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "m2kd_kernels.h"

#define M2KD_TARGET_AVX2 "avx2,fma,bmi,bmi2,f16c,popcnt"
#define M2KD_TARGET_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,f16c,popcnt,prefer-vector-width=512"

// `#pragma GCC target(MACRO)` does NOT expand the macro (g++ 12 then silently compiles the
// baseline); use M2KD_TARGET_PRAGMA(M2KD_TARGET_AVX512) between push/pop_options instead.
#define M2KD_PRAGMA_(x) _Pragma(#x)
#define M2KD_TARGET_PRAGMA(t) M2KD_PRAGMA_(GCC target(t))

// Declares fn in all three ISA namespaces and dispatches a call to the one for ex.isa().
#define M2KD_ISA_DISPATCH(isa, call)              \
  do {                                           \
    switch (isa) {                               \
      case ::m2kd::Isa::avx512: return ::m2kd::cpu::avx512::call; \
      case ::m2kd::Isa::avx2: return ::m2kd::cpu::avx2::call;     \
      default: return ::m2kd::cpu::scalar::call;                  \
    }                                            \
  } while (0)

namespace m2kd {
namespace cpu {

// Per-worker scratch without a fixed number of slots: ONE Exec slot holds `count` equal parts of
// `bytes_each` bytes, each rounded up to whole 64-byte lines (parts stay 64-byte aligned and never
// share a cache line). Sized from the worker count of the call, so a kernel may use as many
// workers as the pool has: there is no hidden thread cap. Part t: at<float>(t).
struct PerThreadScratch {
  char* base = nullptr;
  size_t stride = 0;
  template <class T>
  T* at(int t) const {
    return reinterpret_cast<T*>(base + stride * (size_t)t);
  }
};
inline PerThreadScratch per_thread_scratch(const Exec& ex, int slot, int count, size_t bytes_each) {
  PerThreadScratch s;
  s.stride = (std::max<size_t>(bytes_each, 1) + 63) / 64 * 64;
  s.base = static_cast<char*>(ex.scratch(slot, s.stride * (size_t)std::max(count, 1)));
  return s;
}

}  // namespace cpu
}  // namespace m2kd
