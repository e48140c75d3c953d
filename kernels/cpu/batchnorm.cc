// Batch norm 2d public entry points: parallel split + ISA dispatch. Math in batchnorm_impl.inc.
#include "cpu_common.h"

#define M2KD_BN_DECL(ns)                                                                          \
  namespace m2kd { namespace cpu { namespace ns {                                                 \
  void bn_forward_train_channels(int64_t c0, int64_t c1, int64_t n, int64_t c, int64_t hw,         \
                                 const float* x, const float* gamma, const float* beta, float eps,\
                                 float momentum, float* running_mean, float* running_var,         \
                                 float* save_mean, float* save_invstd, bool relu, float* y);      \
  void bn_forward_eval_planes(int64_t p0, int64_t p1, int64_t c, int64_t hw, const float* x,      \
                              const float* gamma, const float* beta, const float* running_mean,   \
                              const float* running_var, float eps, bool relu, float* y);          \
  void bn_backward_channels(int64_t c0, int64_t c1, int64_t n, int64_t c, int64_t hw,              \
                            const float* x, const float* y, const float* dy, const float* gamma,  \
                            const float* save_mean, const float* save_invstd, bool relu,          \
                            float* dx, float* dgamma, float* dbeta, bool overwrite_dx);                              \
  } } }
M2KD_BN_DECL(scalar)
M2KD_BN_DECL(avx2)
M2KD_BN_DECL(avx512)

namespace m2kd {

// Channels are independent; each worker owns a contiguous channel range (stats + normalise
// per channel back to back, see batchnorm_impl.inc). Shapes with c < threads run on fewer
// workers.
void batchnorm2d_forward_train(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* gamma, const float* beta, float eps, float momentum,
                               float* running_mean, float* running_var, float* save_mean,
                               float* save_invstd, bool relu, float* y) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  const Isa isa = ex.isa();
  auto body = [&](int64_t c0, int64_t c1, int) {
    M2KD_ISA_DISPATCH(isa, bn_forward_train_channels(c0, c1, n, c, hw, x, gamma, beta, eps, momentum,
                                                     running_mean, running_var, save_mean,
                                                     save_invstd, relu, y));
  };
  if (c == 1 || n * c * hw < (1 << 14)) body(0, c, 0);
  else ex.parallel_for(c, body);
}

void batchnorm2d_forward_eval(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                              const float* gamma, const float* beta, const float* running_mean,
                              const float* running_var, float eps, bool relu, float* y) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  const Isa isa = ex.isa();
  auto body = [&](int64_t p0, int64_t p1, int) {
    M2KD_ISA_DISPATCH(isa, bn_forward_eval_planes(p0, p1, c, hw, x, gamma, beta, running_mean,
                                                  running_var, eps, relu, y));
  };
  if (n * c * hw < (1 << 14)) body(0, n * c, 0);
  else ex.parallel_for(n * c, body);
}

void batchnorm2d_backward(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                          const float* y, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, bool relu, float* dx,
                          float* dgamma, float* dbeta, bool overwrite_dx) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  const Isa isa = ex.isa();
  auto body = [&](int64_t c0, int64_t c1, int) {
    M2KD_ISA_DISPATCH(isa, bn_backward_channels(c0, c1, n, c, hw, x, y, dy, gamma, save_mean,
                                                save_invstd, relu, dx, dgamma, dbeta, overwrite_dx));
  };
  if (c == 1 || n * c * hw < (1 << 14)) body(0, c, 0);
  else ex.parallel_for(c, body);
}

}  // namespace m2kd
