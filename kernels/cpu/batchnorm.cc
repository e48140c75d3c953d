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

// Eval-mode backward: the running statistics are constants, so per channel
// dx += g' * gamma * invstd, dgamma += sum g' * (x - mean) * invstd, dbeta += sum g'
// with g' = dy masked by (y > 0) when relu. Simple loops; the compiler vectorises them.
void batchnorm2d_backward_eval(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* y, const float* dy, const float* gamma,
                               const float* running_mean, const float* running_var, float eps,
                               bool relu, float* dx, float* dgamma, float* dbeta) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  auto body = [&](int64_t c0, int64_t c1, int) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float invstd = (float)(1.0 / std::sqrt((double)running_var[ch] + (double)eps));
      const float k = (gamma ? gamma[ch] : 1.0f) * invstd, mean = running_mean[ch];
      double sg = 0.0, sgx = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t off = (i * c + ch) * hw;
        float pg = 0.f, pgx = 0.f;
        for (int64_t j = 0; j < hw; ++j) {
          const float g = (relu && !(y[off + j] > 0.f)) ? 0.f : dy[off + j];
          pg += g;
          pgx += g * (x[off + j] - mean);
          if (dx) dx[off + j] += g * k;
        }
        sg += pg;
        sgx += pgx;
      }
      if (dgamma) dgamma[ch] += (float)(sgx * invstd);
      if (dbeta) dbeta[ch] += (float)sg;
    }
  };
  if (c == 1 || n * c * hw < (1 << 14)) body(0, c, 0);
  else ex.parallel_for(c, body);
}

}  // namespace m2kd
