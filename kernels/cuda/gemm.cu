// sgemm on the shared tiled core (gemm_tile.cuh), and gemm_call, the plain-GEMM launch that
// linear.cu uses too. Policy: transposes are folded into the row/column contexts (pointer +
// stride), so one kernel serves all four cases; C = alpha*acc + beta*C with beta == 0 never
// reading C; bias (when given) is added per column.
#include "gemm_problem.cuh"

namespace m2kd {
namespace cuda {

void gemm_call(const CudaExec& ex, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias,
          const char* name, const char* file, int line) {
  require_int32(name, (ta ? K : M) * lda);
  require_int32(name, (tb ? N : K) * ldb);
  require_int32(name, M * ldc);
  GemmP p{int(M), int(N), int(K), A, lda, ta, B, ldb, tb, C, ldc, alpha, beta, bias};
  launch_gemm_tile(ex, p, 1, name, file, line);
}

void sgemm(const CudaExec& ex, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  gemm_call(ex, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, "sgemm", __FILE__, __LINE__);
}

}  // namespace cuda
}  // namespace m2kd
