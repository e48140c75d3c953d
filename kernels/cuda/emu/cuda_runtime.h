// The emulated CUDA device: what `#include <cuda_runtime.h>` means when kernels/cuda/*.cu are
// compiled by the host C++ compiler (npm run build:cuda-emu; this folder is first on the include
// path and M2KD_CUDA_EMU is defined). It gives the SAME kernel sources CUDA's execution model on
// the CPU: grids of blocks, blocks of threads in warps of 32, threadIdx/blockIdx/blockDim/gridDim,
// shared memory private to each block (M2KD_SHARED / M2KD_SHARED_DYNAMIC), __syncthreads() as a
// real barrier, warp shuffles as real exchanges between the lanes of a warp, atomics, __ldg and
// the math intrinsics the kernels use. Each thread of a block is a cooperatively scheduled fiber
// (kernels/cuda/emu/emu.cc), so barriers and shuffles keep their meaning.
// Policy: host-side API only as far as kernels/cuda uses it (streams, async copies, memset,
// errors); allocation is native/cuda_emu_runtime.cc's. Every shared-memory access goes through a
// checked reference (racecheck, initcheck, bounds); global memory is checked by guard pages
// around every device allocation. A failed check aborts the launch; the error is returned by the
// next cudaGetLastError() / synchronising call, and cudaGetErrorString() gives the full report
// (kernel, block, thread, address).
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef M2KD_CUDA_EMU
#error "kernels/cuda/emu/cuda_runtime.h is the emulated device: build with -DM2KD_CUDA_EMU (npm run build:cuda-emu)"
#endif

// ------------------------------------------------------------------ qualifiers
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// shared memory is declared with M2KD_SHARED (kernels/cuda/common.cuh); a bare __shared__ fails here
#define __shared__ M2KD_EMU_declare_shared_memory_with_M2KD_SHARED
#define warpSize 32

// ------------------------------------------------------------------ host API types
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
struct CUevent_st;
typedef CUevent_st* cudaEvent_t;

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  // checks the emulator adds (a GPU would run on, or hang)
  cudaErrorEmuSharedRace = 10001,
  cudaErrorEmuSharedUninitialized = 10002,
  cudaErrorEmuBarrierDivergence = 10003,
  cudaErrorEmuShuffleInactiveLane = 10004,
  cudaErrorEmuSharedOutOfBounds = 10005,
};
enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
struct alignas(8) int2 {
  int x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline int2 make_int2(int x, int y) { return {x, y}; }

// host API (kernels/cuda/emu/emu.cc)
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMalloc(void** p, size_t bytes);  // guarded, like every emulated allocation
cudaError_t cudaFree(void* p);
// Streams and events: launches and copies run when issued, so every stream is ordered and an
// event is complete once recorded; elapsed time is host time between the two records.
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// ------------------------------------------------------------------ the device side
namespace m2kd {
namespace emu {

// The running thread's coordinates (one emulated thread runs at a time on the host thread that
// launched; launches are serialised process-wide).
struct ThreadCoords {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};
extern ThreadCoords* g_coords;

// Block-wide barrier at file:line (checked: every live thread of the block must reach the same one).
void syncthreads(const char* file, int line);
// Warp exchange: kind 0 = idx, 1 = up, 2 = down, 3 = xor. Returns the source lane's bits.
uint64_t warp_shuffle(int kind, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line);
unsigned warp_vote(int kind, unsigned mask, bool pred, const char* file, int line);  // 0 ballot, 1 any, 2 all
void syncwarp(unsigned mask, const char* file, int line);
// Shared memory of the current block for one declaration (`key` names it), poisoned on first use.
char* shared_region(const void* key, size_t bytes, size_t align, const char* name);
char* shared_dynamic(size_t* bytes);
// Checks one access of `bytes` at p (racecheck + initcheck); aborts the launch on a hazard.
void shared_access(const void* p, size_t bytes, bool write);
[[noreturn]] void shared_out_of_bounds(const char* name, int64_t index, int64_t extent);

// Kernel bodies and launching
struct KernelBody {
  virtual void run() = 0;

 protected:
  ~KernelBody() = default;
};
void launch(KernelBody& body, const char* kernel, const char* file, int line, dim3 grid, dim3 block, size_t shmem,
            cudaStream_t stream);
// A pointer argument must be null or point into device memory (as on a GPU).
bool pointer_arg_ok(const void* p, const char* kernel, int index, const char* file, int line);

// --- shared memory views: every element access is checked
// The racecheck / initcheck state of one 4-byte word of the block's shared memory: its last
// writer and the readers in the current barrier interval (epoch), and whether it was written.
struct ShadowWord {
  uint32_t wep, rep;
  uint16_t wtid, rtid, rtid2;
  uint8_t init, pad;
};
struct FastState {
  char* shared;
  ShadowWord* shadow;
  uint32_t epoch;
  int running;
  uint64_t accesses;
};
extern FastState g_fast;

// The check of a 4-byte access without a hazard, inline; anything else (wider types, a hazard
// to report) goes to shared_access.
inline void shared_touch(const void* p, size_t bytes, bool write) {
  FastState& f = g_fast;
  if (bytes == 4 && f.running >= 0) {
    ShadowWord& s = f.shadow[size_t(static_cast<const char*>(p) - f.shared) >> 2];
    const uint16_t me = uint16_t(f.running);
    const bool other_wrote = s.wep == f.epoch && s.wtid != me;
    if (!write) {
      if (s.init && !other_wrote) {
        f.accesses++;
        if (s.rep != f.epoch) {
          s.rep = f.epoch;
          s.rtid = me;
          s.rtid2 = me;
        } else if (s.rtid != me) {
          s.rtid2 = me;
        }
        return;
      }
    } else if (!other_wrote && !(s.rep == f.epoch && (s.rtid != me || s.rtid2 != me))) {
      f.accesses++;
      s.wep = f.epoch;
      s.wtid = me;
      s.init = 1;
      return;
    }
  }
  shared_access(p, bytes, write);
}

template <class T>
struct SharedRef {
  T* p;
  operator T() const {
    shared_touch(p, sizeof(T), false);
    return *p;
  }
  SharedRef& operator=(T v) {
    shared_touch(p, sizeof(T), true);
    *p = v;
    return *this;
  }
  SharedRef& operator=(const SharedRef& o) { return *this = T(o); }
  SharedRef& operator+=(T v) { return *this = T(*this) + v; }
  SharedRef& operator-=(T v) { return *this = T(*this) - v; }
  SharedRef& operator*=(T v) { return *this = T(*this) * v; }
};

template <class A>
struct SharedView;
template <class E, size_t N>
struct SharedView<E[N]> {
  char* base;
  const char* name;
  auto operator[](int64_t i) const {
    if (i < 0 || i >= int64_t(N)) shared_out_of_bounds(name, i, int64_t(N));
    if constexpr (std::is_array_v<E>) {
      return SharedView<E>{base + i * int64_t(sizeof(E)), name};
    } else {
      return SharedRef<E>{reinterpret_cast<E*>(base) + i};
    }
  }
};
// dynamic shared memory (extern __shared__ T name[]): the launch's size
template <class E>
struct SharedView<E[]> {
  char* base;
  const char* name;
  int64_t count;
  SharedRef<E> operator[](int64_t i) const {
    if (i < 0 || i >= count) shared_out_of_bounds(name, i, count);
    return SharedRef<E>{reinterpret_cast<E*>(base) + i};
  }
};

template <class A>
SharedView<A> shared_view(const void* key, const char* name) {
  return SharedView<A>{shared_region(key, sizeof(A), alignof(std::remove_all_extents_t<A>), name), name};
}
template <class E>
SharedView<E[]> shared_dynamic_view(const char* name) {
  size_t bytes = 0;
  char* b = shared_dynamic(&bytes);
  return SharedView<E[]>{b, name, int64_t(bytes / sizeof(E))};
}

// Kernel instances: every instance a launch site names registers itself at load time (its full
// name, template arguments included), and every launch records its instance, so a test run can
// say which compiled kernels it never ran (M2KD_EMU_COVERAGE=<file>: emu.cc appends both lists).
std::string kernel_name_from(const char* pretty);
bool register_kernel(const char* name);
template <auto F>
struct KernelId {
  static const char* name() {
    static const std::string n = kernel_name_from(__PRETTY_FUNCTION__);
    return n.c_str();
  }
  static const bool registered;
  static const char* use() {
    (void)registered;
    return name();
  }
};
template <auto F>
const bool KernelId<F>::registered = register_kernel(KernelId<F>::name());

template <class... P>
struct Launch {
  void (*fn)(P...);
  const char* kernel;
  const char* file;
  int line;
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;

  template <class... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    struct Body final : KernelBody {
      void (*fn)(P...);
      std::tuple<std::decay_t<P>...> args;
      Body(void (*f)(P...), A&&... x) : fn(f), args(std::forward<A>(x)...) {}
      void run() override { std::apply(fn, args); }
    } body(fn, std::forward<A>(a)...);
    bool ok = true;
    int index = 0;
    std::apply(
        [&](const auto&... x) {
          ((ok = ok && check_arg(x, index++)), ...);
        },
        body.args);
    if (ok) launch(body, kernel, file, line, grid, block, shmem, stream);
  }

 private:
  template <class T>
  bool check_arg(const T& v, int index) const {
    if constexpr (std::is_pointer_v<T>) return pointer_arg_ok(static_cast<const void*>(v), kernel, index, file, line);
    return true;
  }
};

template <class... P>
Launch<P...> make_launch(void (*fn)(P...), const char* kernel, const char* file, int line, dim3 grid, dim3 block,
                         size_t shmem, cudaStream_t stream) {
  return Launch<P...>{fn, kernel, file, line, grid, block, shmem, stream};
}

template <class T>
T shuffle_as(int kind, unsigned mask, T v, int arg, int width, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_shuffle(kind, mask, bits, arg, width, file, line);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace emu
}  // namespace m2kd

#define threadIdx (::m2kd::emu::g_coords->thread)
#define blockIdx (::m2kd::emu::g_coords->block)
#define blockDim (::m2kd::emu::g_coords->block_dim)
#define gridDim (::m2kd::emu::g_coords->grid_dim)

#define __syncthreads() ::m2kd::emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::m2kd::emu::syncwarp((0xffffffffu, ##__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_sync(mask, v, lane, ...) ::m2kd::emu::shuffle_as(0, (mask), (v), (lane), (32, ##__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d, ...) ::m2kd::emu::shuffle_as(1, (mask), (v), int(d), (32, ##__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...) ::m2kd::emu::shuffle_as(2, (mask), (v), int(d), (32, ##__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, m, ...) ::m2kd::emu::shuffle_as(3, (mask), (v), int(m), (32, ##__VA_ARGS__), __FILE__, __LINE__)
#define __ballot_sync(mask, p) ::m2kd::emu::warp_vote(0, (mask), bool(p), __FILE__, __LINE__)
#define __any_sync(mask, p) (::m2kd::emu::warp_vote(1, (mask), bool(p), __FILE__, __LINE__) != 0)
#define __all_sync(mask, p) (::m2kd::emu::warp_vote(2, (mask), bool(p), __FILE__, __LINE__) != 0)

// one launch macro for both builds (common.cuh defines the nvcc spelling)
#define M2KD_LAUNCH(grid, block, shmem, stream, ...) \
  ::m2kd::emu::make_launch(&__VA_ARGS__, ::m2kd::emu::KernelId<&__VA_ARGS__>::use(), __FILE__, __LINE__, dim3(grid), dim3(block), size_t(shmem), (stream))
#define M2KD_SHARED(T, name, dims)                 \
  static const char name##_m2kd_emu_key = 0;      \
  const auto name = ::m2kd::emu::shared_view<T dims>(&name##_m2kd_emu_key, #name)
#define M2KD_SHARED_DYNAMIC(T, name) const auto name = ::m2kd::emu::shared_dynamic_view<T>(#name)

// ------------------------------------------------------------------ intrinsics
// CUDA's global min/max overloads (integers and floats, mixed types promoted as on the device)
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return C(a) < C(b) ? C(a) : C(b);
}
template <class A, class B, class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return C(a) < C(b) ? C(b) : C(a);
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }

// Atomics: emulated threads never run at the same time (fibers), so a plain read-modify-write
// is atomic. Device-memory pointers are checked by the guard pages like every access.
template <class T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicSub(T* p, T v) {
  const T old = *p;
  *p = old - v;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}
