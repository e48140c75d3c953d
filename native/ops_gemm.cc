// Binding: sgemm (row-major, optional transposes, C = alpha op(A) op(B) + beta C) on the device
// of the buffers. Checks the sizes and leading dimensions of every operand.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
M2KD_OP(sgemm) {
  Args a(info, "sgemm", Devices::any);
  bool ta = a.flag(0, "transA"), tb = a.flag(1, "transB");
  int64_t M = a.i64(2, "M"), N = a.i64(3, "N"), K = a.i64(4, "K");
  float alpha = float(a.f64(5, "alpha"));
  int64_t lda = a.i64(7, "lda"), ldb = a.i64(9, "ldb"), ldc = a.i64(12, "ldc");
  float beta = float(a.f64(10, "beta"));
  a.set_shapes("M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
  a.require(M > 0 && N > 0 && K > 0, "M, N, K must be positive");
  int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  a.require(lda >= ac && ldb >= bc && ldc >= N, "leading dimension smaller than the row length");
  const float* A = a.f32(6, "A", (ar - 1) * lda + ac);
  const float* B = a.f32(8, "B", (br - 1) * ldb + bc);
  float* C = a.f32(11, "C", (M - 1) * ldc + N);
  M2KD_DISPATCH(a, sgemm(cpu(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc),
                cuda::sgemm(gpu(), ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
