// The CUDA runtime of the emulated-device build (npm run build:cuda-emu: M2KD_WITH_CUDA and
// M2KD_CUDA_EMU): the interface of native/cuda_runtime.cc over the emulated device of
// kernels/cuda/emu. Device memory comes from the emulator's guarded arena (emu.h), one exact-size
// allocation per block with no size classes and no caching, so that an access past a tensor's
// end reaches a guard page or a canary; per-slot scratch and host scratch as on a GPU; kernels
// run at launch, on the calling thread, so the one stream is trivially ordered.
// Policy: always available (no driver needed); reports itself as "emulated" (device name and
// architecture), so tests and `m2kd doctor` can say which device ran. M2KD_EMU_SM_COUNT sets
// the multiprocessor count the kernels size their grids by (default 16).
#if defined(M2KD_WITH_CUDA) && defined(M2KD_CUDA_EMU)
#include <cuda_runtime.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "../kernels/cuda/emu/emu.h"
#include "addon.h"

namespace m2kd {
namespace native {

#define M2KD_RT_CHECK(call) ::m2kd::cuda::check(int(call), __FILE__, __LINE__, #call)

namespace {

std::mutex g_cmu;
CudaInfo g_info;
bool g_probed = false;
CudaMemoryStats g_dstats{};
// a stream handle for the kernels (never dereferenced: launches run at once)
CUstream_st* const g_stream = reinterpret_cast<CUstream_st*>(uintptr_t(0x5eed));

class EmuExec final : public cuda::CudaExec {
 public:
  CUstream_st* stream() const override { return g_stream; }
  void* scratch(int slot, size_t bytes) const override {
    if (slot < 0 || slot >= 8) throw OpError("CUDA scratch slot out of range");
    std::lock_guard<std::mutex> lk(mu_);
    Slot& s = slots_[slot];
    if (s.cap < bytes || s.ptr == nullptr) {
      if (s.ptr) cuda_free(s.ptr, s.cap);
      s.ptr = nullptr;
      s.cap = 0;
      size_t cap = 0;
      s.ptr = cuda_alloc(bytes, &cap);
      s.cap = cap;
    }
    return s.ptr;
  }
  void* host_scratch(size_t bytes) const override {
    count_host_copy(CopyKind::d2h, bytes);  // its one use: a value read back by a kernel's caller
    std::lock_guard<std::mutex> lk(mu_);
    if (host_.size() < bytes) host_.assign(bytes < 4096 ? 4096 : bytes, 0);
    return host_.data();
  }
  int sm_count() const override { return cuda_info().sm_count; }
  void release() {
    std::lock_guard<std::mutex> lk(mu_);
    for (Slot& s : slots_) {
      if (s.ptr) cuda_free(s.ptr, s.cap);
      s = Slot{};
    }
  }

 private:
  struct Slot {
    void* ptr = nullptr;
    size_t cap = 0;
  };
  mutable std::mutex mu_;
  mutable Slot slots_[8];
  mutable std::vector<char> host_;
};

EmuExec g_emu;

}  // namespace

const CudaInfo& cuda_info() {
  std::lock_guard<std::mutex> lk(g_cmu);
  if (!g_probed) {
    g_probed = true;
    g_info.available = true;
    g_info.name = "emulated CUDA device (the CUDA kernels run on the CPU)";
    g_info.cc_major = 8;
    g_info.cc_minor = 0;
    int sms = 16;
    if (const char* s = std::getenv("M2KD_EMU_SM_COUNT")) sms = std::atoi(s);
    g_info.sm_count = sms > 0 ? sms : 16;
    g_info.total_memory = emu::arena_bytes();
  }
  return g_info;
}

const cuda::CudaExec& gpu() { return g_emu; }

void* cuda_alloc(size_t bytes, size_t* capacity) {
  void* p = nullptr;
  try {
    p = emu::device_alloc(bytes);
  } catch (const std::bad_alloc&) {
    throw OpError("out of emulated device memory allocating " + std::to_string(bytes) + " bytes");
  }
  *capacity = bytes;
  std::lock_guard<std::mutex> lk(g_cmu);
  g_dstats.device_allocs++;
  g_dstats.live_bytes += bytes;
  g_dstats.live_blocks++;
  if (g_dstats.live_bytes > g_dstats.peak_live_bytes) g_dstats.peak_live_bytes = g_dstats.live_bytes;
  return p;
}

void cuda_free(void* p, size_t capacity) {
  if (!p) return;
  emu::device_free(p);
  std::lock_guard<std::mutex> lk(g_cmu);
  g_dstats.live_bytes -= capacity;
  g_dstats.live_blocks--;
}

void cuda_zero(void* p, size_t bytes) {
  if (bytes == 0) return;
  M2KD_RT_CHECK(cudaMemsetAsync(p, 0, bytes, g_stream));
}

void cuda_copy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  if (bytes == 0) return;
  const cudaMemcpyKind k = kind == CopyKind::h2d   ? cudaMemcpyHostToDevice
                           : kind == CopyKind::d2h ? cudaMemcpyDeviceToHost
                                                   : cudaMemcpyDeviceToDevice;
  M2KD_RT_CHECK(cudaMemcpyAsync(dst, src, bytes, k, g_stream));
  if (kind != CopyKind::d2d) count_host_copy(kind, bytes);
}

void cuda_synchronize() { M2KD_RT_CHECK(cudaStreamSynchronize(g_stream)); }

void cuda_empty_cache() {
  g_emu.release();
  M2KD_RT_CHECK(cudaStreamSynchronize(g_stream));
}

CudaMemoryStats cuda_memory_stats() {
  std::lock_guard<std::mutex> lk(g_cmu);
  return g_dstats;
}

}  // namespace native
}  // namespace m2kd
#endif  // M2KD_WITH_CUDA && M2KD_CUDA_EMU
