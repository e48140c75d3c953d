// The plain GEMM problem of gemm_tile.cuh (sgemm, linear): C = alpha * opA(A) opB(B) + beta * C
// (+ bias[n]), transposes folded into pointer + stride contexts. Policy: __host__ __device__,
// so kernels/cuda/workbench/index_check.cu checks it on the host.
#pragma once
#include "gemm_tile.cuh"

namespace m2kd {
namespace cuda {

struct Strided {
  const float* ptr;
  int64_t stride;
  bool ok;
};

// C[m,n] = alpha * sum_k opA[m,k] opB[k,n] + beta * C  (+ bias[n] when bias)
struct GemmP {
  int M, N, K;
  const float* A;
  int64_t lda;
  bool ta;
  const float* B;
  int64_t ldb;
  bool tb;
  float* C;
  int64_t ldc;
  float alpha, beta;
  const float* bias;
  using ARow = Strided;
  using BCol = Strided;
  M2KD_HD void k_range(int, int& k0, int& k1) const { k0 = 0; k1 = K; }
  M2KD_HD ARow arow(int m, int) const {
    if (m >= M) return {A, 0, false};
    return ta ? Strided{A + m, lda, true} : Strided{A + int64_t(m) * lda, 1, true};
  }
  M2KD_HD BCol bcol(int n, int) const {
    if (n >= N) return {B, 0, false};
    return tb ? Strided{B + int64_t(n) * ldb, 1, true} : Strided{B + n, ldb, true};
  }
  M2KD_HD float a(const ARow& r, int k) const { return r.ok ? r.ptr[k * r.stride] : 0.f; }
  M2KD_HD float b(const BCol& c, int k) const { return c.ok ? c.ptr[k * c.stride] : 0.f; }
  M2KD_HD void store(int m, int n, float acc, int) const {
    float* c = C + int64_t(m) * ldc + n;
    float v = alpha * acc;
    if (bias) v += bias[n];
    *c = beta == 0.f ? v : v + beta * *c;
  }
};

// The plain GEMM launch (gemm.cu): checks the int32 limits, launches the tile core.
void gemm_call(const CudaExec& ex, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias,
               const char* name, const char* file, int line);

}  // namespace cuda
}  // namespace m2kd
