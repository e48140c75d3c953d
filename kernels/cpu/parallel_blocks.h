// Block-aligned parallel splits shared by the streaming kernel families (elementwise, losses):
// [0, count) is cut into kParallelBlock-float blocks, each worker takes a contiguous run of
// blocks, and below `min_parallel` elements everything runs on the calling thread.
#pragma once
#include "cpu_common.h"

namespace m2kd {
namespace cpu {

constexpr int64_t kParallelBlock = 4096;

// Calls f(begin, n) on disjoint block-aligned chunks covering [0, count).
template <class F>
void for_blocks(const Exec& ex, int64_t count, int64_t min_parallel, F&& f) {
  if (count <= 0) return;
  if (count < min_parallel || ex.threads() <= 1) {
    f(int64_t(0), count);
    return;
  }
  const int64_t nb = (count + kParallelBlock - 1) / kParallelBlock;
  ex.parallel_for(nb, [&](int64_t b0, int64_t b1, int) {
    const int64_t i0 = b0 * kParallelBlock, i1 = std::min(count, b1 * kParallelBlock);
    if (i1 > i0) f(i0, i1 - i0);
  });
}

// Sum over chunks of part(begin, n) -> double. Per-worker partials live in scratch slot 0,
// one 64-byte line each (no false sharing); combined in worker order (deterministic).
template <class F>
double sum_blocks(const Exec& ex, int64_t count, int64_t min_parallel, F&& part) {
  if (count <= 0) return 0.0;
  if (count < min_parallel || ex.threads() <= 1) return part(int64_t(0), count);
  const int T = ex.threads();
  double* acc = static_cast<double*>(ex.scratch(0, sizeof(double) * 8 * (size_t)T));
  for (int t = 0; t < T; ++t) acc[8 * t] = 0.0;
  const int64_t nb = (count + kParallelBlock - 1) / kParallelBlock;
  ex.parallel_for(nb, [&](int64_t b0, int64_t b1, int tid) {
    const int64_t i0 = b0 * kParallelBlock, i1 = std::min(count, b1 * kParallelBlock);
    if (i1 > i0) acc[8 * tid] += part(i0, i1 - i0);
  });
  double s = 0.0;
  for (int t = 0; t < T; ++t) s += acc[8 * t];
  return s;
}

}  // namespace cpu
}  // namespace m2kd
