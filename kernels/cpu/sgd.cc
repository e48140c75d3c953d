// SGD public entry point: chunked parallel split + ISA dispatch. Math in sgd_impl.inc.
#include "cpu_common.h"

#define M2KD_SGD_DECL(ns)                                                                     \
  namespace m2kd { namespace cpu { namespace ns {                                             \
  void sgd_span_update(int64_t n, float* w, const float* grad, float* buf,                    \
                       const uint8_t* frozen, float lr, float mom, float wd);                 \
  } } }
M2KD_SGD_DECL(scalar)
M2KD_SGD_DECL(avx2)
M2KD_SGD_DECL(avx512)

namespace m2kd {

// PyTorch semantics: with momentum == 0 the buffer is neither read nor written.
void sgd_update(const Exec& ex, int64_t count, float* w, const float* grad, float* momentum_buf,
                const uint8_t* frozen, float lr, float momentum, float weight_decay) {
  if (count <= 0) return;
  const Isa isa = ex.isa();
  float* buf = momentum != 0.f ? momentum_buf : nullptr;
  auto run = [&](int64_t i, int64_t k) {
    M2KD_ISA_DISPATCH(isa, sgd_span_update(k, w + i, grad + i, buf ? buf + i : nullptr,
                                           frozen ? frozen + i : nullptr, lr, momentum,
                                           weight_decay));
  };
  constexpr int64_t kBlock = 4096;
  if (count < (1 << 16) || ex.threads() <= 1) { run(0, count); return; }
  const int64_t nb = (count + kBlock - 1) / kBlock;
  ex.parallel_for(nb, [&](int64_t b0, int64_t b1, int) {
    const int64_t i0 = b0 * kBlock, i1 = std::min(count, b1 * kBlock);
    if (i1 > i0) run(i0, i1 - i0);
  });
}

}  // namespace m2kd
