// linear forward / backward (the twin of kernels/cpu/linear.cc) on the plain GEMM of gemm.cu.
// Policy: y = x w^T + bias overwrites; backward accumulates (dx +=, dw +=, db +=). The bias
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

}  // namespace

void linear_forward(const CudaExec& ex, int64_t n, int64_t in, int64_t out, const float* x, const float* w,
                    const float* bias, float* y) {
  if (n <= 0 || out <= 0) return;
  // y[n,out] = x[n,in] w[out,in]^T + bias
  gemm_call(ex, false, true, n, out, in, 1.f, x, in, w, in, 0.f, y, out, bias, "linear_forward", __FILE__, __LINE__);
}

void linear_backward(const CudaExec& ex, int64_t n, int64_t in, int64_t out, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
  if (n <= 0 || in <= 0 || out <= 0) return;
  // dx[n,in] += dy[n,out] w[out,in]
  if (dx) gemm_call(ex, false, false, n, in, out, 1.f, dy, out, w, in, 1.f, dx, in, nullptr, "linear_backward(dx)",
               __FILE__, __LINE__);
  // dw[out,in] += dy^T[out,n] x[n,in]
  if (dw) gemm_call(ex, true, false, out, in, n, 1.f, dy, out, x, in, 1.f, dw, in, nullptr, "linear_backward(dw)",
               __FILE__, __LINE__);
  if (db) {
    M2KD_LAUNCH(unsigned((out + 127) / 128), 128, 0, ex.stream(), col_sum_k)(n, out, dy, db);
    M2KD_LAUNCHED(ex, "linear_backward(db)");
  }
}

}  // namespace cuda
}  // namespace m2kd
