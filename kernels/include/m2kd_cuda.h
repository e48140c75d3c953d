// m2kd CUDA kernel signatures: the CUDA twin of m2kd_kernels.h, shared by kernels/cuda/*.cu
// and native/ (which dispatches to them when a tensor lives on the device).
//
// Policy (same as the CPU header, plus):
//  - Plain C++: no CUDA, no N-API types here, so native/*.cc include it in any build. The stream
//    is passed as CUstream_st* (what cudaStream_t is), forward-declared below.
//  - Every pointer is DEVICE memory unless a comment says otherwise. Every function enqueues its
//    work on exec.stream() and returns without waiting, except those that return a value
//    (sum_all, losses), which wait for their result.
//  - Forward kernels OVERWRITE, backward kernels ACCUMULATE (+=), exactly as on the CPU.
//  - Every launch is checked: a failure throws m2kd::cuda::CudaError whose message names the
//    .cu file and line ("conv2d.cu:123: ..."). Asynchronous faults surface at the next check
//    that synchronises; set M2KD_CUDA_SYNC=1 to synchronise after every launch while debugging.
//  - No cuBLAS / cuDNN: everything is hand-written. Reductions are deterministic (fixed grid,
//    fixed tree order, no float atomics), so a run is reproducible on the same device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "m2kd_kernels.h"  // Conv2dShape, Pool2dShape

struct CUstream_st;

namespace m2kd {
namespace cuda {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Execution context handed to every CUDA kernel by the addon (native/cuda_runtime.cc).
class CudaExec {
 public:
  virtual ~CudaExec() = default;
  virtual CUstream_st* stream() const = 0;
  // Reusable device scratch owned by the addon; `slot` (0..7) names independent buffers alive
  // at the same time within one call. Stream-ordered: valid for work enqueued on stream().
  virtual void* scratch(int slot, size_t bytes) const = 0;
  // Pinned host scratch (for results read back by value), valid until the call returns.
  virtual void* host_scratch(size_t bytes) const = 0;
  virtual int sm_count() const = 0;
};

// Throws CudaError("file:line: what: <cuda error string>") when err != 0 (err is a cudaError_t).
void check(int err, const char* file, int line, const char* what);
// Synchronise after every launch (debugging; also env M2KD_CUDA_SYNC=1).
void set_sync_launches(bool on);
bool sync_launches();

// ---------------------------------------------------------------------------------------
// GEMM: C[M,N] = alpha * op(A) * op(B) + beta * C, row-major (tiled, shared memory)
void sgemm(const CudaExec& ex, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// conv2d, NCHW / OIHW, as on the CPU (implicit GEMM: no im2col buffer)
void conv2d_forward(const CudaExec& ex, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y);
void conv2d_backward_data(const CudaExec& ex, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx);  // dx +=
void conv2d_backward_weight(const CudaExec& ex, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, float* db);  // dw +=, db += (db may be null)

// Fused masked convolution for K models (teacher bank), one launch for all K (up to
// kMaskedConvModelsPerLaunch; longer lists take one launch per 256 models). Semantics of
// kernels/cpu/masked_conv_impl.inc (the CPU twin):
//   x: [K,N,C,H,W], or [N,C,H,W] shared by all K when shared_input
//   w: [O,C,kh,kw] f32, mask: [O,C,kh,kw] u8 step ids, steps: [K] int32 in HOST memory
//   (passed to the kernel by value: no copy, no sync)
//   model k uses exactly the weights with 1 <= mask <= steps[k]; the others are skipped
//   (their values never enter the sum: they load as 0 into the tile);
//   y[k,n,o,p] = act(scale[k,o] * acc + shift[k,o] + residual[k,n,o,p])
//   scale/shift: [K,O]; residual: [K,N,O,Ho,Wo] or null; act = ReLU when relu.
//   y: [K,N,O,Ho,Wo]
constexpr int kMaskedConvModelsPerLaunch = 256;
void masked_conv2d_forward(const CudaExec& ex, int64_t K, const Conv2dShape& s, const float* x,
                           bool shared_input, const float* w, const uint8_t* mask, const int32_t* steps,
                           const float* scale, const float* shift, const float* residual, bool relu,
                           float* y);

// linear: x [n,in], w [out,in], bias [out] or null, y [n,out]
void linear_forward(const CudaExec& ex, int64_t n, int64_t in, int64_t out, const float* x,
                    const float* w, const float* bias, float* y);
void linear_backward(const CudaExec& ex, int64_t n, int64_t in, int64_t out, const float* x,
                     const float* w, const float* dy, float* dx, float* dw, float* db);  // all +=

// batch norm 2d over [n,c,hw], semantics of m2kd_kernels.h (warp-shuffle block reductions)
void batchnorm2d_forward_train(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* gamma, const float* beta, float eps, float momentum,
                               float* running_mean, float* running_var, float* save_mean,
                               float* save_invstd, bool relu, float* y);
void batchnorm2d_forward_eval(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                              const float* gamma, const float* beta, const float* running_mean,
                              const float* running_var, float eps, bool relu, float* y);
void batchnorm2d_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                          const float* y, const float* dy, const float* gamma, const float* save_mean,
                          const float* save_invstd, bool relu, float* dx, float* dgamma, float* dbeta,
                          bool overwrite_dx);
void batchnorm2d_backward_eval(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* y, const float* dy, const float* gamma,
                               const float* running_mean, const float* running_var, float eps,
                               bool relu, float* dx, float* dgamma, float* dbeta);

// elementwise (grid-stride loops)
void relu_forward(const CudaExec& ex, int64_t count, const float* x, float* y);
void relu_backward(const CudaExec& ex, int64_t count, const float* y, const float* dy, float* dx);
void add_relu_forward(const CudaExec& ex, int64_t count, const float* a, const float* b, float* y);
void add_relu_backward(const CudaExec& ex, int64_t count, const float* y, const float* dy, float* da,
                       float* db, bool overwrite_a, bool overwrite_b);
void axpby(const CudaExec& ex, int64_t count, float a, const float* x, float b, const float* z, float* y);
void mul_forward(const CudaExec& ex, int64_t count, const float* a, const float* b, float* y);
void affine_scalar(const CudaExec& ex, int64_t count, const float* x, float a, float b, float* y);
void fill(const CudaExec& ex, int64_t count, float value, float* y);
void sigmoid_forward(const CudaExec& ex, int64_t count, const float* x, float* y);
void sigmoid_backward(const CudaExec& ex, int64_t count, const float* y, const float* dy, float* dx);
double sum_all(const CudaExec& ex, int64_t count, const float* x);  // waits
void add_scalar_inplace(const CudaExec& ex, int64_t count, float g, float* dx);

// option-A shortcut
void shortcut_a_forward(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                        int64_t pad_before, int64_t pad_after, const float* x, float* y);
void shortcut_a_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                         int64_t pad_before, int64_t pad_after, const float* dy, float* dx);

// pooling
void global_avg_pool_forward(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* x, float* y);
void global_avg_pool_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t hw, const float* dy, float* dx);
void max_pool2d_forward(const CudaExec& ex, const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const CudaExec& ex, const Pool2dShape& s, const float* dy, const int32_t* argmax,
                         float* dx);

// losses (forward ones wait and return the value). Labels must be validated by the caller.
double bce_logits_forward(const CudaExec& ex, int64_t count, const float* x, const float* t, double denom);
void bce_logits_backward(const CudaExec& ex, int64_t count, const float* x, const float* t, double scale,
                         float* dx);
// the same loss left on the device (nothing read back): y[0] = float(sum / denom), and the backward
// that takes its scale from the device: dx += float(dy[0] / denom) * (sigmoid(x) - t)
void bce_logits_forward_to(const CudaExec& ex, int64_t count, const float* x, const float* t, double denom,
                           float* y);
void bce_logits_backward_dy(const CudaExec& ex, int64_t count, const float* x, const float* t, const float* dy,
                            double denom, float* dx);
double softmax_ce_forward(const CudaExec& ex, int64_t n, int64_t m, const float* x, const int32_t* labels,
                          float* p);
void softmax_ce_backward(const CudaExec& ex, int64_t n, int64_t m, const float* p, const int32_t* labels,
                         double scale, float* dx);

// columns, flip, SGD
void copy_columns(const CudaExec& ex, int64_t rows, int64_t cols, const float* src, int64_t src_ld,
                  int64_t src_col0, float* dst, int64_t dst_ld, int64_t dst_col0, bool accumulate);
void hflip(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, const uint8_t* flags,
           const float* x, float* y);
void sgd_update(const CudaExec& ex, int64_t count, float* w, const float* grad, float* momentum_buf,
                const uint8_t* frozen, float lr, float momentum, float weight_decay);

}  // namespace cuda
}  // namespace m2kd
