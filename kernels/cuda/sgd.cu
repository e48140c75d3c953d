// SGD with momentum and weight decay (PyTorch semantics, dampening 0) and a frozen mask.
// Policy: one thread per element; frozen elements are not written at all (w and the momentum
// buffer keep their exact bits), as on the CPU. A momentum buffer, when given, is always used.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

__global__ void sgd_k(int64_t n, float* __restrict__ w, const float* __restrict__ grad, float* __restrict__ buf,
                      const uint8_t* __restrict__ frozen, float lr, float mom, float wd) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (frozen && frozen[i]) continue;
    const float wv = w[i];
    const float g = grad[i] + wd * wv;
    float d = g;
    if (buf) {
      d = mom * buf[i] + g;
      buf[i] = d;
    }
    w[i] = wv - lr * d;
  }
}

}  // namespace

void sgd_update(const CudaExec& ex, int64_t n, float* w, const float* grad, float* buf, const uint8_t* frozen,
                float lr, float momentum, float wd) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), sgd_k)(n, w, grad, buf, frozen, lr, momentum, wd);
  M2KD_LAUNCHED(ex, "sgd_update");
}

}  // namespace cuda
}  // namespace m2kd
