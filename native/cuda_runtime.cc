// The CUDA runtime of the addon (compiled only with M2KD_WITH_CUDA, i.e. by CMakeLists.txt):
// device probe (driver / runtime versions, name), one non-blocking stream on which every
// kernel and copy is enqueued, a caching device allocator, per-slot device scratch and a small
// pinned host buffer for values read back.
// Policy: one stream, so every use of a block is ordered after the previous one: a block freed
// by JS goes straight back to the pool and may be handed out again at once, without a sync.
// Device memory goes back to the driver only in cuda_empty_cache() (after a sync) or when an
// allocation fails (the pool is emptied and the allocation retried once). A machine without a
// GPU or driver loads this build fine: cuda_info().available is false and says why.
#if defined(M2KD_WITH_CUDA) && !defined(M2KD_CUDA_EMU)  // the emulated device: cuda_emu_runtime.cc
#include <cuda_runtime.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "addon.h"

namespace m2kd {
namespace native {

#define M2KD_RT_CHECK(call) ::m2kd::cuda::check(int(call), __FILE__, __LINE__, #call)

namespace {

std::mutex g_cmu;
CudaInfo g_info;
bool g_probed = false;
int g_dev = 0;
cudaStream_t g_stream = nullptr;
std::map<size_t, std::vector<void*>> g_dfree;  // capacity -> device blocks
CudaMemoryStats g_dstats{};

// Size classes: 512-byte granularity below 1 MiB, then 8 steps per power of two.
size_t dsize_class(size_t bytes) {
  if (bytes <= 512) return 512;
  if (bytes <= (size_t(1) << 20)) return (bytes + 511) & ~size_t(511);
  size_t p = size_t(1) << 20;
  while (p * 2 < bytes) p *= 2;
  const size_t step = p / 8;
  return (bytes + step - 1) / step * step;
}

void probe_locked() {
  if (g_probed) return;
  g_probed = true;
  CudaInfo& in = g_info;
  cudaRuntimeGetVersion(&in.runtime_version);
  cudaError_t e = cudaDriverGetVersion(&in.driver_version);
  if (e != cudaSuccess || in.driver_version == 0) {
    in.reason = "no CUDA driver found (libcuda.so not loadable)";
    (void)cudaGetLastError();
    return;
  }
  int count = 0;
  e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    in.reason = e != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" +
                                       cudaGetErrorString(e) + ")"
                                 : "the driver reports no CUDA device";
    (void)cudaGetLastError();
    return;
  }
  int dev = 0;
  if (const char* s = std::getenv("M2KD_CUDA_DEVICE")) dev = std::atoi(s);
  if (dev < 0 || dev >= count) {
    in.reason = "M2KD_CUDA_DEVICE=" + std::to_string(dev) + " but there are " + std::to_string(count) + " devices";
    return;
  }
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, dev);
  if (e == cudaSuccess) e = cudaSetDevice(dev);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    in.reason = std::string("device ") + std::to_string(dev) + ": " + cudaGetErrorName(e) + " (" +
                cudaGetErrorString(e) + ")";
    (void)cudaGetLastError();
    return;
  }
  g_dev = dev;
  in.name = prop.name;
  in.cc_major = prop.major;
  in.cc_minor = prop.minor;
  in.sm_count = prop.multiProcessorCount;
  in.total_memory = uint64_t(prop.totalGlobalMem);
  in.available = true;
}

// The current device is per host thread in the CUDA runtime: set it on every entry (cheap when
// it is already current), so a Node worker thread uses the same device as the main thread.
// The backend is not reentrant (one JS thread at a time), like the CPU exec.
void require_device() {
  const CudaInfo& in = cuda_info();
  if (!in.available) throw OpError("device cuda is not available: " + in.reason);
  M2KD_RT_CHECK(cudaSetDevice(g_dev));
}

void empty_cache_locked() {
  for (auto& kv : g_dfree)
    for (void* q : kv.second) cudaFree(q);
  g_dfree.clear();
  g_dstats.pooled_bytes = 0;
  g_dstats.pooled_blocks = 0;
}

class GpuExec final : public cuda::CudaExec {
 public:
  CUstream_st* stream() const override { return g_stream; }
  void* scratch(int slot, size_t bytes) const override {
    if (slot < 0 || slot >= 8) throw OpError("CUDA scratch slot out of range");
    std::lock_guard<std::mutex> lk(mu_);
    Slot& s = slots_[slot];
    if (s.cap < bytes) {
      // the old buffer may still be read by queued work: it goes back to the (stream-ordered) pool
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
    if (host_cap_ < bytes) {
      if (host_) cudaFreeHost(host_);
      host_ = nullptr;
      host_cap_ = 0;
      const size_t cap = bytes < 4096 ? 4096 : bytes;
      M2KD_RT_CHECK(cudaMallocHost(&host_, cap));
      host_cap_ = cap;
    }
    return host_;
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
  mutable void* host_ = nullptr;
  mutable size_t host_cap_ = 0;
};

GpuExec g_gpu;

}  // namespace

const CudaInfo& cuda_info() {
  std::lock_guard<std::mutex> lk(g_cmu);
  probe_locked();
  return g_info;
}

const cuda::CudaExec& gpu() {
  require_device();
  return g_gpu;
}

void* cuda_alloc(size_t bytes, size_t* capacity) {
  require_device();
  const size_t cap = dsize_class(bytes == 0 ? 1 : bytes);
  *capacity = cap;
  std::lock_guard<std::mutex> lk(g_cmu);
  void* p = nullptr;
  auto it = g_dfree.find(cap);
  if (it != g_dfree.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    g_dstats.pooled_bytes -= cap;
    g_dstats.pooled_blocks--;
  } else {
    cudaError_t e = cudaMalloc(&p, cap);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      cudaStreamSynchronize(g_stream);
      empty_cache_locked();
      e = cudaMalloc(&p, cap);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw OpError("out of device memory allocating " + std::to_string(bytes) + " bytes (" +
                    std::to_string(g_dstats.live_bytes) + " bytes live on the device): " + cudaGetErrorString(e));
    }
    g_dstats.device_allocs++;
  }
  g_dstats.live_bytes += cap;
  g_dstats.live_blocks++;
  if (g_dstats.live_bytes > g_dstats.peak_live_bytes) g_dstats.peak_live_bytes = g_dstats.live_bytes;
  return p;
}

void cuda_free(void* p, size_t capacity) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(g_cmu);
  g_dfree[capacity].push_back(p);
  g_dstats.live_bytes -= capacity;
  g_dstats.live_blocks--;
  g_dstats.pooled_bytes += capacity;
  g_dstats.pooled_blocks++;
}

void cuda_zero(void* p, size_t bytes) {
  if (bytes == 0) return;
  M2KD_RT_CHECK(cudaMemsetAsync(p, 0, bytes, g_stream));
}

void cuda_copy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  require_device();
  if (bytes == 0) return;
  const cudaMemcpyKind k = kind == CopyKind::h2d   ? cudaMemcpyHostToDevice
                           : kind == CopyKind::d2h ? cudaMemcpyDeviceToHost
                                                   : cudaMemcpyDeviceToDevice;
  M2KD_RT_CHECK(cudaMemcpyAsync(dst, src, bytes, k, g_stream));
  if (kind != CopyKind::d2d) count_host_copy(kind, bytes);
  // host memory given by JS is pageable and may be reused at once: wait for both directions
  if (kind != CopyKind::d2d) M2KD_RT_CHECK(cudaStreamSynchronize(g_stream));
}

void cuda_synchronize() {
  if (!cuda_info().available) return;
  M2KD_RT_CHECK(cudaStreamSynchronize(g_stream));
}

void cuda_empty_cache() {
  if (!cuda_info().available) return;
  g_gpu.release();
  M2KD_RT_CHECK(cudaStreamSynchronize(g_stream));
  std::lock_guard<std::mutex> lk(g_cmu);
  empty_cache_locked();
}

CudaMemoryStats cuda_memory_stats() {
  std::lock_guard<std::mutex> lk(g_cmu);
  return g_dstats;
}

}  // namespace native
}  // namespace m2kd
#endif  // M2KD_WITH_CUDA && !M2KD_CUDA_EMU
