// Error checking, the launch-sync switch, and the shared final reduction of partial sums.
// Policy: every CUDA error becomes a CudaError naming file:line and the CUDA error string.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.cuh"

namespace m2kd {
namespace cuda {

namespace {
std::atomic<int> g_sync{-1};

const char* base_name(const char* file) {
  const char* s = std::strrchr(file, '/');
  return s ? s + 1 : file;
}

__global__ void reduce_doubles_kernel(const double* __restrict__ parts, int n, double* __restrict__ out) {
  M2KD_SHARED(double, sh, [32]);
  double s = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += parts[i];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) *out = s;
}
}  // namespace

void check(int err, const char* file, int line, const char* what) {
  if (err == 0) return;
  cudaError_t e = cudaError_t(err);
  (void)cudaGetLastError();  // clear a non-sticky error so later calls are not blamed
  throw CudaError(std::string(base_name(file)) + ":" + std::to_string(line) + ": " + what + ": " +
                  cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

bool sync_launches() {
  int v = g_sync.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* env = std::getenv("M2KD_CUDA_SYNC");
    v = env && env[0] && std::strcmp(env, "0") != 0 ? 1 : 0;
    g_sync.store(v);
  }
  return v == 1;
}

void set_sync_launches(bool on) { g_sync.store(on ? 1 : 0); }

void reduce_doubles(const CudaExec& ex, const double* parts, int parts_n, double* out) {
  M2KD_LAUNCH(1, 1024, 0, ex.stream(), reduce_doubles_kernel)(parts, parts_n, out);
  M2KD_LAUNCHED(ex, "reduce_doubles");
}

double read_double(const CudaExec& ex, const double* dev) {
  double* h = static_cast<double*>(ex.host_scratch(sizeof(double)));
  M2KD_CUDA(cudaMemcpyAsync(h, dev, sizeof(double), cudaMemcpyDeviceToHost, ex.stream()));
  M2KD_CUDA(cudaStreamSynchronize(ex.stream()));
  return *h;
}

}  // namespace cuda
}  // namespace m2kd
