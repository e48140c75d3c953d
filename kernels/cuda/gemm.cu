// sgemm and linear (forward / backward) on the shared tiled core (gemm_tile.cuh).
// Policy: transposes are folded into the row/column contexts (pointer + stride), so one kernel
// serves all four cases; C = alpha*acc + beta*C with beta == 0 never reading C. Linear's bias
// gradient is a column sum: one thread per column, rows summed in order (deterministic).
#include "gemm_problem.cuh"

namespace m2kd {
namespace cuda {
namespace {

// db[j] += sum_i dy[i, j]   (one thread per column, rows in order: deterministic)
__global__ void col_sum_k(int64_t rows, int64_t cols, const float* __restrict__ dy, float* db) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float s = 0.f;
  for (int64_t i = 0; i < rows; ++i) s += dy[i * cols + j];
  db[j] += s;
}

void gemm(const CudaExec& ex, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias,
          const char* name, const char* file, int line) {
  require_int32(name, (ta ? K : M) * lda);
  require_int32(name, (tb ? N : K) * ldb);
  require_int32(name, M * ldc);
  GemmP p{int(M), int(N), int(K), A, lda, ta, B, ldb, tb, C, ldc, alpha, beta, bias};
  launch_gemm_tile(ex, p, 1, name, file, line);
}

}  // namespace

void sgemm(const CudaExec& ex, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  gemm(ex, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, "sgemm", __FILE__, __LINE__);
}

void linear_forward(const CudaExec& ex, int64_t n, int64_t in, int64_t out, const float* x, const float* w,
                    const float* bias, float* y) {
  if (n <= 0 || out <= 0) return;
  // y[n,out] = x[n,in] w[out,in]^T + bias
  gemm(ex, false, true, n, out, in, 1.f, x, in, w, in, 0.f, y, out, bias, "linear_forward", __FILE__, __LINE__);
}

void linear_backward(const CudaExec& ex, int64_t n, int64_t in, int64_t out, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
  if (n <= 0 || in <= 0 || out <= 0) return;
  // dx[n,in] += dy[n,out] w[out,in]
  if (dx) gemm(ex, false, false, n, in, out, 1.f, dy, out, w, in, 1.f, dx, in, nullptr, "linear_backward(dx)",
               __FILE__, __LINE__);
  // dw[out,in] += dy^T[out,n] x[n,in]
  if (dw) gemm(ex, true, false, out, in, n, 1.f, dy, out, x, in, 1.f, dw, in, nullptr, "linear_backward(dw)",
               __FILE__, __LINE__);
  if (db) {
    col_sum_k<<<unsigned((out + 127) / 128), 128, 0, ex.stream()>>>(n, out, dy, db);
    M2KD_LAUNCHED(ex, "linear_backward(db)");
  }
}

}  // namespace cuda
}  // namespace m2kd
