// The addon's internal API: storage (pooled host memory behind integer handles), the CPU
// execution context (thread pool, scratch, ISA level), the op registry and argument checking.
// Every binding validates its arguments here and turns failures into a JS exception that names
// the op and the shapes. Nothing in native/ does math: that lives in kernels/.
#pragma once
#include <napi.h>

#include <cstdint>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "m2kd_cuda.h"
#include "m2kd_kernels.h"

namespace m2kd {
namespace native {

// ---------------------------------------------------------------- storage
enum class DType : int { f32 = 0, i32 = 1, u8 = 2 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);
// Where a block lives. cuda blocks exist only in a build with M2KD_WITH_CUDA and a device.
enum class Device : int { cpu = 0, cuda = 1 };
const char* device_name(Device d);

struct Block {
  void* ptr = nullptr;
  DType dtype = DType::f32;
  int64_t count = 0;    // elements of dtype
  size_t bytes = 0;     // count * dtype_size
  size_t capacity = 0;  // size class actually held
  bool live = false;
  napi_env owner = nullptr;
  Device device = Device::cpu;
};

// Allocates a zero-filled or uninitialised block of `count` elements and returns its handle (>= 1).
int64_t storage_alloc(napi_env env, DType dtype, int64_t count, bool zero, Device device = Device::cpu);
void storage_free(int64_t id);
// Throws std::runtime_error naming `what` if the handle is not live.
Block storage_get(int64_t id, const char* what);  // a copy: the table may move
void storage_release_env(napi_env env);  // frees every block owned by env (cleanup hook)

struct MemoryStats {
  uint64_t live_bytes, live_blocks, pooled_bytes, pooled_blocks, peak_live_bytes, os_allocs;
};
MemoryStats memory_stats();
void empty_cache();
// pooled aligned allocation used by storage and scratch (huge pages above 2 MiB)
void* pool_acquire(size_t bytes, size_t* capacity);
void pool_return(void* p, size_t capacity);

// ---------------------------------------------------------------- execution
class CpuExec final : public Exec {
 public:
  Isa isa() const override;
  int threads() const override;
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& body) const override;
  void* scratch(int slot, size_t bytes) const override;
};
const CpuExec& cpu();
Isa best_isa();
Isa current_isa();
void set_isa(Isa isa);  // throws if the machine lacks it
int thread_count();
void set_thread_count(int n);
void exec_shutdown();
const char* isa_name(Isa isa);

// ---------------------------------------------------------------- CUDA runtime
// (native/cuda_runtime.cc, compiled with M2KD_WITH_CUDA only: a stream, a caching device
// allocator, scratch, device information). Without CUDA nothing here is defined or called.
#ifdef M2KD_WITH_CUDA
struct CudaInfo {
  bool available = false;
  std::string reason;  // why not available
  int driver_version = 0, runtime_version = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0, sm_count = 0;
  uint64_t total_memory = 0;
};
const CudaInfo& cuda_info();  // probes the driver once
const cuda::CudaExec& gpu();   // throws when no device is available
void* cuda_alloc(size_t bytes, size_t* capacity);  // pooled; throws OpError when out of memory
void cuda_free(void* p, size_t capacity);           // back to the pool (stream-ordered)
void cuda_zero(void* p, size_t bytes);
enum class CopyKind { h2d, d2h, d2d };
void cuda_copy(void* dst, const void* src, size_t bytes, CopyKind kind);  // d2h waits
// Host <-> device transfers, counted since load (or the last reset): every h2d/d2h cuda_copy and
// every value a kernel reads back through host scratch. The runtimes call count_host_copy; JS
// reads the counts with copy_stats() (the test of how many copies a training step makes).
struct HostCopyStats {
  uint64_t h2d, d2h, h2d_bytes, d2h_bytes;
};
void count_host_copy(CopyKind kind, size_t bytes);
HostCopyStats host_copy_stats(bool reset);
void cuda_synchronize();
void cuda_empty_cache();
struct CudaMemoryStats {
  uint64_t live_bytes, live_blocks, pooled_bytes, pooled_blocks, peak_live_bytes, device_allocs;
};
CudaMemoryStats cuda_memory_stats();
#endif

// ---------------------------------------------------------------- op registry
using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);
struct OpEntry { const char* name; OpFn fn; };
std::vector<OpEntry>& op_registry();
struct OpRegistrar {
  OpRegistrar(const char* name, OpFn fn) { op_registry().push_back({name, fn}); }
};

// A binding: `M2KD_OP(conv2d_forward) { Args a(info, "conv2d_forward"); ... }`.
// Exceptions (std::exception or Napi::Error) become JS errors prefixed with the op name.
#define M2KD_OP(name)                                                                  \
  static Napi::Value name##_impl(const Napi::CallbackInfo& info);                     \
  static Napi::Value name##_entry(const Napi::CallbackInfo& info) {                   \
    return ::m2kd::native::guarded(info, #name, name##_impl);                         \
  }                                                                                    \
  static ::m2kd::native::OpRegistrar name##_registrar(#name, name##_entry);           \
  static Napi::Value name##_impl(const Napi::CallbackInfo& info)

Napi::Value guarded(const Napi::CallbackInfo& info, const char* op, OpFn fn);

struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Which devices a binding accepts. Bindings that dispatch to a CUDA kernel say `any`; every
// other binding (the default) refuses device buffers, so a CPU kernel never sees a device
// pointer.
enum class Devices { cpu, any };

// Argument reader with checks. Handles are numbers; -1 (or null/undefined) means "none".
// All buffers of one call must live on one device (no implicit copies): the first buffer read
// fixes it, and device() tells the binding where to run.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op, Devices devices = Devices::cpu)
      : info_(info), op_(op), devices_(devices) {}
  int64_t i64(size_t i, const char* name) const;
  double f64(size_t i, const char* name) const;
  bool flag(size_t i, const char* name) const;
  // Pointer into a live block holding at least `count` elements of `dt`.
  template <typename T>
  T* buf(size_t i, const char* name, DType dt, int64_t count) const {
    return static_cast<T*>(buf_raw(i, name, dt, count, false));
  }
  template <typename T>
  T* opt(size_t i, const char* name, DType dt, int64_t count) const {
    return static_cast<T*>(buf_raw(i, name, dt, count, true));
  }
  float* f32(size_t i, const char* name, int64_t count) const { return buf<float>(i, name, DType::f32, count); }
  float* f32_opt(size_t i, const char* name, int64_t count) const { return opt<float>(i, name, DType::f32, count); }
  // shape text used in every error message of this call, e.g. "x[128,16,32,32] w[16,16,3,3]"
  void set_shapes(std::string s) { shapes_ = std::move(s); }
  [[noreturn]] void fail(const std::string& msg) const;
  void require(bool cond, const std::string& msg) const { if (!cond) fail(msg); }
  Napi::Env env() const { return info_.Env(); }
  // the device of the buffers read so far (cpu when none)
  Device device() const { return device_; }
  bool on_cuda() const { return device_ == Device::cuda; }

 private:
  void* buf_raw(size_t i, const char* name, DType dt, int64_t count, bool optional) const;
  const Napi::CallbackInfo& info_;
  const char* op_;
  std::string shapes_;
  Devices devices_;
  mutable Device device_ = Device::cpu;
  mutable const char* device_from_ = nullptr;  // name of the buffer that fixed device_
};

// Runs cpu_call, or cuda_call when the call's buffers are on the device. In a build without
// CUDA the cuda_call is not compiled at all. Read every buffer (Args::buf/f32/opt) BEFORE this.
#ifdef M2KD_WITH_CUDA
#define M2KD_DISPATCH(a, cpu_call, cuda_call) \
  do {                                        \
    if ((a).on_cuda()) {                      \
      cuda_call;                              \
    } else {                                  \
      cpu_call;                               \
    }                                         \
  } while (0)
#else
#define M2KD_DISPATCH(a, cpu_call, cuda_call) \
  do {                                        \
    cpu_call;                                 \
  } while (0)
#endif

// "[a,b,c]"
std::string dims(std::initializer_list<int64_t> d);

// The one check of a convolution's geometry, for every binding that takes one (conv2d, and the
// masked convolution on CPU and CUDA): all dimensions positive, stride > 0, pad >= 0, the kernel
// within the padded input. Sets s.oh and s.ow. S is Conv2dShape or any struct with its fields.
template <typename S>
void check_conv_shape(const Args& a, S& s) {
  a.require(s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.o > 0 && s.kh > 0 && s.kw > 0,
            "all dimensions must be positive");
  a.require(s.stride > 0 && s.pad >= 0, "stride must be > 0 and pad >= 0");
  a.require(s.h + 2 * s.pad >= s.kh && s.w + 2 * s.pad >= s.kw, "kernel larger than the padded input");
  s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
  s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
}

}  // namespace native
}  // namespace m2kd
