// Deliberately broken kernels (and their corrected twins) that prove each check of the emulated
// device catches what it is meant to: compiled into the emulated build only (CMakeLists.txt),
// run by test/cuda/emu-checks.cuda.ts through the cuda_emu_selftest binding.
// Policy: each case allocates its own device buffers, launches through M2KD_LAUNCH like every
// kernel, checks the launch with M2KD_LAUNCHED (so a caught fault is a CudaError naming
// kernel, block, thread and address), frees its buffers, and returns a result the test checks
// (so the corrected twins are checked for their values, not just for not failing).
#include <string>
#include <vector>

#include "../../common.cuh"
#include "emu.h"

namespace m2kd {
namespace cuda {
namespace {

// 1. out-of-bounds global access: one element past the end (reads or writes)
__global__ void oob_write_k(int n, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) y[i] = 1.f;  // BUG: <= n
}
__global__ void oob_read_k(int n, const float* x, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i + 1];  // BUG: reads x[n] in the last thread
}
__global__ void inbounds_k(int n, const float* x, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i] + 1.f;
}

// 2. shared-memory race: a neighbour's value read without a barrier between write and read
template <bool kSync>
__global__ void neighbour_k(float* y) {
  M2KD_SHARED(float, s, [64]);
  const int t = threadIdx.x;
  s[t] = float(t);
  if (kSync) __syncthreads();  // BUG when false
  y[t] = s[t > 0 ? t - 1 : 0];  // thread t-1 wrote it (it ran first under emulation)
}

// 3. initcheck: half of the shared array is never written
template <bool kAll>
__global__ void partial_init_k(float* y) {
  M2KD_SHARED(float, s, [64]);
  const int t = threadIdx.x;
  if (kAll || t < 32) s[t] = float(2 * t);  // BUG when !kAll: s[32..63] never written
  __syncthreads();
  y[t] = s[63 - t];
}

// 4. barrier divergence: a barrier inside a branch only some threads take, and two barriers
__global__ void divergent_exit_k(float* y) {
  const int t = threadIdx.x;
  if (t >= 16) return;  // BUG: the others wait at the barrier below
  __syncthreads();
  y[t] = 1.f;
}
__global__ void divergent_sites_k(float* y) {
  const int t = threadIdx.x;
  if (t < 16) {
    __syncthreads();  // BUG: two different barriers
    y[t] = 1.f;
  } else {
    __syncthreads();
    y[t] = 2.f;
  }
}

// 5. shuffle from an inactive lane: lanes 8..15 read lanes 16..23, which are not in the mask
template <bool kFull>
__global__ void shuffle_k(float* y) {
  const int lane = threadIdx.x & 31;
  float v = float(lane);
  if (kFull) {
    v = warp_sum(v);  // every lane, full mask
  } else if (lane < 16) {
    v += __shfl_down_sync(0x0000ffffu, v, 8);  // BUG: source lanes 16..23 are inactive
  }
  y[threadIdx.x] = v;
}

std::vector<float> readback(const float* d, int n) {
  std::vector<float> h(size_t(n), 0.f);
  check(int(cudaMemcpy(h.data(), d, sizeof(float) * size_t(n), cudaMemcpyDeviceToHost)), __FILE__, __LINE__,
        "readback");
  return h;
}

struct Buf {
  float* p;
  explicit Buf(int n) : p(static_cast<float*>(emu::device_alloc(sizeof(float) * size_t(n)))) {}
  ~Buf() { emu::device_free(p); }
};

}  // namespace

// Runs one self-test case; throws CudaError when the emulator catches the kernel's bug.
std::vector<float> emu_selftest(const std::string& name) {
  CUstream_st* const st = nullptr;
  const auto done = [&](const char* what) { launch_check(st, __FILE__, __LINE__, what); };
  if (name == "oob-write" || name == "oob-write-small" || name == "oob-read" || name == "inbounds") {
    // 1024 floats end exactly at a guard page; 10 floats end in the 16-byte canary slack
    const int n = name == "oob-write-small" ? 10 : 1024;
    Buf x(n), y(n);
    check(int(cudaMemset(x.p, 0, sizeof(float) * size_t(n))), __FILE__, __LINE__, "memset");
    if (name == "oob-read") M2KD_LAUNCH((n + 127) / 128, 128, 0, st, oob_read_k)(n, x.p, y.p);
    else if (name == "inbounds") M2KD_LAUNCH((n + 127) / 128, 128, 0, st, inbounds_k)(n, x.p, y.p);
    else M2KD_LAUNCH((n + 128) / 128, 128, 0, st, oob_write_k)(n, y.p);
    done(name.c_str());
    return readback(y.p, n);
  }
  if (name == "host-pointer") {
    std::vector<float> host(64, 0.f);
    M2KD_LAUNCH(1, 64, 0, st, neighbour_k<true>)(host.data());  // BUG: a host pointer
    done("host-pointer");
    return host;
  }
  Buf y(64);
  if (name == "race") M2KD_LAUNCH(1, 64, 0, st, neighbour_k<false>)(y.p);
  else if (name == "race-fixed") M2KD_LAUNCH(1, 64, 0, st, neighbour_k<true>)(y.p);
  else if (name == "uninit") M2KD_LAUNCH(1, 64, 0, st, partial_init_k<false>)(y.p);
  else if (name == "uninit-fixed") M2KD_LAUNCH(1, 64, 0, st, partial_init_k<true>)(y.p);
  else if (name == "barrier-exit") M2KD_LAUNCH(1, 64, 0, st, divergent_exit_k)(y.p);
  else if (name == "barrier-sites") M2KD_LAUNCH(1, 64, 0, st, divergent_sites_k)(y.p);
  else if (name == "shuffle") M2KD_LAUNCH(1, 64, 0, st, shuffle_k<false>)(y.p);
  else if (name == "shuffle-fixed") M2KD_LAUNCH(1, 64, 0, st, shuffle_k<true>)(y.p);
  else throw CudaError("emu_selftest: unknown case '" + name + "'");
  done(name.c_str());
  return readback(y.p, 64);
}

}  // namespace cuda
}  // namespace m2kd
