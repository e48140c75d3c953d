// Host storage: a caching allocator of 64-byte-aligned blocks (2 MiB-aligned with
// MADV_HUGEPAGE above 2 MiB), binned by size class and reused, behind integer handles that JS
// holds. Freed blocks go back to the pool, never to the OS, until empty_cache(): first
// touching a fresh 4 KiB page costs ~15 us here, more than the math on it.
// Device blocks (Device::cuda, CUDA builds only) share the handle table; their memory comes
// from the caching device allocator in cuda_runtime.cc and their bytes are counted there.
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "addon.h"

namespace m2kd {
namespace native {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "f32";
    case DType::i32: return "i32";
    case DType::u8: return "u8";
  }
  return "?";
}
size_t dtype_size(DType d) { return d == DType::u8 ? 1 : 4; }
const char* device_name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

namespace {
constexpr size_t kHuge = size_t(2) << 20;

std::mutex g_mu;
std::map<size_t, std::vector<void*>> g_free;  // capacity -> blocks
std::vector<Block> g_blocks(1);               // handle 0 unused
std::vector<int64_t> g_free_ids;
MemoryStats g_stats{};

// Size classes: 64-byte granularity below 4 KiB, then 4 steps per power of two.
size_t size_class(size_t bytes) {
  if (bytes <= 64) return 64;
  if (bytes <= 4096) return (bytes + 63) & ~size_t(63);
  size_t p = 4096;
  while (p * 2 < bytes) p *= 2;  // p < bytes <= 2p
  size_t step = p / 4;
  size_t c = ((bytes + step - 1) / step) * step;
  if (c >= kHuge) c = (c + kHuge - 1) & ~(kHuge - 1);
  return c;
}

void* os_alloc(size_t cap) {
  void* p = nullptr;
  size_t align = cap >= kHuge ? kHuge : 64;
  if (posix_memalign(&p, align, cap) != 0) return nullptr;
  if (cap >= kHuge) madvise(p, cap, MADV_HUGEPAGE);
  g_stats.os_allocs++;
  return p;
}
}  // namespace

void* pool_acquire(size_t bytes, size_t* capacity) {
  size_t cap = size_class(bytes == 0 ? 1 : bytes);
  *capacity = cap;
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_free.find(cap);
    if (it != g_free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      g_stats.pooled_bytes -= cap;
      g_stats.pooled_blocks--;
      return p;
    }
    void* p = os_alloc(cap);
    if (!p) {
      // give the cache back and retry once before failing
      for (auto& kv : g_free)
        for (void* q : kv.second) free(q);
      g_free.clear();
      g_stats.pooled_bytes = g_stats.pooled_blocks = 0;
      p = os_alloc(cap);
    }
    return p;
  }
}

void pool_return(void* p, size_t cap) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(g_mu);
  g_free[cap].push_back(p);
  g_stats.pooled_bytes += cap;
  g_stats.pooled_blocks++;
}

int64_t storage_alloc(napi_env env, DType dtype, int64_t count, bool zero, Device device) {
  if (count < 0) throw OpError("negative element count " + std::to_string(count));
  size_t bytes = size_t(count) * dtype_size(dtype);
  if (bytes > (size_t(1) << 40)) throw OpError("allocation of " + std::to_string(bytes) + " bytes is too large");
  size_t cap = 0;
  void* p = nullptr;
  if (device == Device::cuda) {
#ifdef M2KD_WITH_CUDA
    p = cuda_alloc(bytes, &cap);  // throws when out of device memory or no device
    if (zero) cuda_zero(p, bytes);
#else
    throw OpError("device cuda: this addon was built without CUDA (npm run build:cuda)");
#endif
  } else {
    p = pool_acquire(bytes, &cap);
    if (!p) throw OpError("out of host memory allocating " + std::to_string(bytes) + " bytes");
    if (zero) std::memset(p, 0, bytes);
  }
  std::lock_guard<std::mutex> lk(g_mu);
  int64_t id;
  if (!g_free_ids.empty()) {
    id = g_free_ids.back();
    g_free_ids.pop_back();
  } else {
    id = int64_t(g_blocks.size());
    g_blocks.emplace_back();
  }
  Block& b = g_blocks[size_t(id)];
  b.ptr = p;
  b.dtype = dtype;
  b.count = count;
  b.bytes = bytes;
  b.capacity = cap;
  b.live = true;
  b.owner = env;
  b.device = device;
  if (device != Device::cpu) return id;  // device bytes are counted by the device allocator
  g_stats.live_bytes += bytes;
  g_stats.live_blocks++;
  if (g_stats.live_bytes > g_stats.peak_live_bytes) g_stats.peak_live_bytes = g_stats.live_bytes;
  return id;
}

static void free_locked(int64_t id) {
  Block& b = g_blocks[size_t(id)];
  if (b.device != Device::cpu) {
#ifdef M2KD_WITH_CUDA
    cuda_free(b.ptr, b.capacity);
#endif
    b = Block{};
    g_free_ids.push_back(id);
    return;
  }
  g_free[b.capacity].push_back(b.ptr);
  g_stats.pooled_bytes += b.capacity;
  g_stats.pooled_blocks++;
  g_stats.live_bytes -= b.bytes;
  g_stats.live_blocks--;
  b = Block{};
  g_free_ids.push_back(id);
}

void storage_free(int64_t id) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (id <= 0 || size_t(id) >= g_blocks.size() || !g_blocks[size_t(id)].live)
    throw OpError("storage handle " + std::to_string(id) + " is not live (double free or use after dispose)");
  free_locked(id);
}

Block storage_get(int64_t id, const char* what) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (id <= 0 || size_t(id) >= g_blocks.size() || !g_blocks[size_t(id)].live)
    throw OpError(std::string(what) + ": storage handle " + std::to_string(id) +
                  " is not live (tensor used after dispose?)");
  return g_blocks[size_t(id)];
}

void storage_release_env(napi_env env) {
  std::lock_guard<std::mutex> lk(g_mu);
  for (size_t i = 1; i < g_blocks.size(); i++)
    if (g_blocks[i].live && g_blocks[i].owner == env) free_locked(int64_t(i));
}

MemoryStats memory_stats() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_stats;
}

void empty_cache() {
  std::lock_guard<std::mutex> lk(g_mu);
  for (auto& kv : g_free)
    for (void* q : kv.second) free(q);
  g_free.clear();
  g_stats.pooled_bytes = 0;
  g_stats.pooled_blocks = 0;
}

#ifdef M2KD_WITH_CUDA
namespace {
std::atomic<uint64_t> g_h2d{0}, g_d2h{0}, g_h2d_bytes{0}, g_d2h_bytes{0};
}
void count_host_copy(CopyKind kind, size_t bytes) {
  if (kind == CopyKind::h2d) {
    g_h2d++;
    g_h2d_bytes += bytes;
  } else if (kind == CopyKind::d2h) {
    g_d2h++;
    g_d2h_bytes += bytes;
  }
}
HostCopyStats host_copy_stats(bool reset) {
  HostCopyStats s{g_h2d.load(), g_d2h.load(), g_h2d_bytes.load(), g_d2h_bytes.load()};
  if (reset) g_h2d = g_d2h = g_h2d_bytes = g_d2h_bytes = 0;
  return s;
}
#endif

}  // namespace native
}  // namespace m2kd
