// Loss public entry points: row/element split + ISA dispatch. Math in loss_impl.inc.
#include "parallel_blocks.h"

#define M2KD_LOSS_DECL(ns)                                                                      \
  namespace m2kd { namespace cpu { namespace ns {                                               \
  double loss_bce_sum(int64_t n, const float* x, const float* t);                               \
  void loss_bce_backward(int64_t n, const float* x, const float* t, float scale, float* dx);    \
  double loss_softmax_rows(int64_t r0, int64_t r1, int64_t m, const float* x,                   \
                           const int32_t* labels, float* p);                                    \
  void loss_softmax_backward_rows(int64_t r0, int64_t r1, int64_t m, const float* p,            \
                                  const int32_t* labels, float scale, float* dx);               \
  } } }
M2KD_LOSS_DECL(scalar)
M2KD_LOSS_DECL(avx2)
M2KD_LOSS_DECL(avx512)

namespace m2kd {
namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements; losses are usually [128, 10..100]
}  // namespace

double bce_logits_forward(const Exec& ex, int64_t count, const float* x, const float* t, double denom) {
  if (count <= 0) return 0.0;
  const Isa isa = ex.isa();
  const double s = cpu::sum_blocks(ex, count, kParallelMin, [&](int64_t i, int64_t k) -> double {
    M2KD_ISA_DISPATCH(isa, loss_bce_sum(k, x + i, t + i));
  });
  return s / denom;
}

void bce_logits_backward(const Exec& ex, int64_t count, const float* x, const float* t, double scale, float* dx) {
  if (count <= 0) return;
  const Isa isa = ex.isa();
  const float sc = (float)scale;
  cpu::for_blocks(ex, count, kParallelMin, [&](int64_t i, int64_t k) {
    M2KD_ISA_DISPATCH(isa, loss_bce_backward(k, x + i, t + i, sc, dx + i));
  });
}

double softmax_ce_forward(const Exec& ex, int64_t n, int64_t m, const float* x, const int32_t* labels, float* p) {
  if (n <= 0 || m <= 0) return 0.0;
  const Isa isa = ex.isa();
  auto rows = [&](int64_t r0, int64_t r1) -> double {
    M2KD_ISA_DISPATCH(isa, loss_softmax_rows(r0, r1, m, x, labels, p));
  };
  double s;
  if (n * m < kParallelMin || ex.threads() <= 1 || n < 2) {
    s = rows(0, n);
  } else {
    const int T = ex.threads();
    double* acc = static_cast<double*>(ex.scratch(0, sizeof(double) * 8 * (size_t)T));
    for (int t = 0; t < T; ++t) acc[8 * t] = 0.0;
    ex.parallel_for(n, [&](int64_t r0, int64_t r1, int tid) { if (r1 > r0) acc[8 * tid] += rows(r0, r1); });
    s = 0.0;
    for (int t = 0; t < T; ++t) s += acc[8 * t];
  }
  return s / (double)n;
}

void softmax_ce_backward(const Exec& ex, int64_t n, int64_t m, const float* p, const int32_t* labels, double scale, float* dx) {
  if (n <= 0 || m <= 0) return;
  const Isa isa = ex.isa();
  const float sc = (float)scale;
  auto rows = [&](int64_t r0, int64_t r1, int) {
    M2KD_ISA_DISPATCH(isa, loss_softmax_backward_rows(r0, r1, m, p, labels, sc, dx));
  };
  if (n * m < kParallelMin || ex.threads() <= 1) rows(0, n, 0);
  else ex.parallel_for(n, rows);
}

}  // namespace m2kd
