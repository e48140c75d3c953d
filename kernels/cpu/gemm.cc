// SGEMM public entry points; dispatch to the ISA variants in gemm_{scalar,avx2,avx512}.cc.
#include "cpu_common.h"

namespace m2kd {
namespace cpu {
#define M2KD_GEMM_DECLS                                                                         \
  void sgemm(const Exec& ex, bool transA, bool transB, int64_t M, int64_t N, int64_t K,         \
             float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,  \
             float* C, int64_t ldc);                                                            \
  void sgemm_serial(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,     \
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta,       \
                    float* C, int64_t ldc, float* pack);
namespace scalar { M2KD_GEMM_DECLS }
namespace avx2 { M2KD_GEMM_DECLS }
namespace avx512 { M2KD_GEMM_DECLS }
#undef M2KD_GEMM_DECLS
}  // namespace cpu

void sgemm(const Exec& ex, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  M2KD_ISA_DISPATCH(ex.isa(), sgemm(ex, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

void sgemm_serial(Isa isa, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, float* pack) {
  M2KD_ISA_DISPATCH(isa, sgemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pack));
}

// Upper bound over all ISA variants (largest MR/NR/MC/NC of any variant), computed here in
// baseline code: A block (<= 128 rows x KC) + B block (KC x <= 1024 cols) + alignment slack.
size_t sgemm_pack_floats(int64_t M, int64_t N, int64_t K) {
  auto ru = [](int64_t a, int64_t b) { return (a + b - 1) / b * b; };
  const int64_t kc = std::max<int64_t>(1, std::min<int64_t>(K, 256));
  const int64_t mc = ru(std::min<int64_t>(std::max<int64_t>(M, 1), 128), 8) + 8;
  const int64_t nc = ru(std::min<int64_t>(std::max<int64_t>(N, 1), 1024), 32);
  return (size_t)(ru(mc * kc, 16) + nc * kc + 32);
}

}  // namespace m2kd
