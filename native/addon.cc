// Module entry: exports the storage, runtime and info functions, then every op registered
// with M2KD_OP. Each JS environment (main thread or worker) gets a cleanup hook that frees
// the blocks it still owns; the thread pool stops when the last environment goes away.
#include <atomic>
#include <cstring>
#include <mutex>

#include "addon.h"

namespace m2kd {
namespace native {

std::vector<OpEntry>& op_registry() {
  static std::vector<OpEntry> r;
  return r;
}

std::string dims(std::initializer_list<int64_t> d) {
  std::string s = "[";
  bool first = true;
  for (int64_t v : d) {
    if (!first) s += ",";
    s += std::to_string(v);
    first = false;
  }
  return s + "]";
}

void Args::fail(const std::string& msg) const {
  std::string m = msg;
  if (!shapes_.empty()) m += " (" + shapes_ + ")";
  throw OpError(m);
}

int64_t Args::i64(size_t i, const char* name) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) fail(std::string("argument '") + name + "' must be a number");
  double v = info_[i].As<Napi::Number>().DoubleValue();
  if (!(v == v) || v != double(int64_t(v))) fail(std::string("argument '") + name + "' must be an integer");
  return int64_t(v);
}

double Args::f64(size_t i, const char* name) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) fail(std::string("argument '") + name + "' must be a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

bool Args::flag(size_t i, const char* name) const {
  if (i >= info_.Length()) fail(std::string("argument '") + name + "' is missing");
  return info_[i].ToBoolean().Value();
}

void* Args::buf_raw(size_t i, const char* name, DType dt, int64_t count, bool optional) const {
  if (i >= info_.Length() || info_[i].IsNull() || info_[i].IsUndefined()) {
    if (optional) return nullptr;
    fail(std::string("buffer '") + name + "' is missing");
  }
  int64_t id = i64(i, name);
  if (id < 0 && optional) return nullptr;
  Block b;
  try {
    b = storage_get(id, name);
  } catch (const OpError& e) {
    fail(e.what());
  }
  if (b.dtype != dt)
    fail(std::string("buffer '") + name + "' has dtype " + dtype_name(b.dtype) + ", expected " + dtype_name(dt));
  if (count < 0 || b.count < count)
    fail(std::string("buffer '") + name + "' holds " + std::to_string(b.count) + " elements, needs " +
         std::to_string(count));
  if (b.device != Device::cpu && devices_ == Devices::cpu)
    fail(std::string("buffer '") + name + "' is on " + device_name(b.device) +
         " but this op has no kernel there (move it with .to('cpu'))");
  if (device_from_ == nullptr) {
    device_ = b.device;
    device_from_ = name;
  } else if (b.device != device_) {
    fail(std::string("device mismatch: buffer '") + name + "' is on " + device_name(b.device) + " but '" +
         device_from_ + "' is on " + device_name(device_) + " (no implicit copies: use .to(device))");
  }
  return b.ptr;
}

// One native call at a time across JS threads (worker_threads): kernels share the pool's scratch
// slots and the pool itself, so calls from two environments at once would mix their partials.
std::recursive_mutex g_call_mu;

Napi::Value guarded(const Napi::CallbackInfo& info, const char* op, OpFn fn) {
  Napi::Env env = info.Env();
  std::lock_guard<std::recursive_mutex> serial(g_call_mu);
  // While a worker is terminated or the process exits, its environment can no longer throw: a
  // failed throw must not escape as a C++ exception (std::terminate), it is dropped instead.
  auto throw_js = [&](const std::string& msg) {
    try {
      Napi::Error::New(env, std::string("m2kd.") + op + ": " + msg).ThrowAsJavaScriptException();
    } catch (...) {
    }
  };
  try {
    return fn(info);
  } catch (const Napi::Error& e) {
    std::string m;
    try {
      m = e.Message();
    } catch (...) {
      m = "error while the JS environment shuts down";
    }
    throw_js(m);
  } catch (const std::bad_alloc&) {
    throw_js("out of memory");
  } catch (const std::exception& e) {
    throw_js(e.what());
  } catch (...) {
    throw_js("unknown native error");
  }
  try {
    return env.Undefined();
  } catch (...) {
    return Napi::Value();
  }
}

namespace {

DType parse_dtype(const Args& a, const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "f32") return DType::f32;
  if (s == "i32") return DType::i32;
  if (s == "u8") return DType::u8;
  a.fail("unknown dtype '" + s + "' (expected f32, i32 or u8)");
}

Device parse_device(const Args& a, const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return Device::cpu;
  std::string s = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  a.fail("unknown device '" + s + "' (expected cpu or cuda)");
}

// Copies between two blocks of one dtype; cross-device only when `transfer` (explicit .to()).
void copy_bytes(const Args& a, const Block& d, size_t doff, const Block& s, size_t soff, size_t bytes, bool transfer) {
  if (bytes == 0) return;
  uint8_t* dp = static_cast<uint8_t*>(d.ptr) + doff;
  const uint8_t* sp = static_cast<const uint8_t*>(s.ptr) + soff;
  if (d.device == Device::cpu && s.device == Device::cpu) {
    std::memmove(dp, sp, bytes);
    return;
  }
  if (d.device != s.device && !transfer)
    a.fail(std::string("device mismatch: src is on ") + device_name(s.device) + ", dst on " + device_name(d.device) +
           " (no implicit copies: use .to(device))");
#ifdef M2KD_WITH_CUDA
  const CopyKind k = d.device == s.device ? CopyKind::d2d : d.device == Device::cuda ? CopyKind::h2d : CopyKind::d2h;
  cuda_copy(dp, sp, bytes, k);
#else
  a.fail("device cuda: this addon was built without CUDA");
#endif
}

// alloc(dtype, count, zero, device = 'cpu') -> handle
M2KD_OP(alloc) {
  Args a(info, "alloc");
  DType dt = parse_dtype(a, info[0]);
  int64_t count = a.i64(1, "count");
  a.require(count >= 0, "count must be >= 0");
  bool zero = info.Length() > 2 && info[2].ToBoolean().Value();
  Device dev = parse_device(a, info, 3);
  return Napi::Number::New(info.Env(), double(storage_alloc(info.Env(), dt, count, zero, dev)));
}

// to_device(handle, device) -> new handle holding a copy on `device` (the explicit transfer)
M2KD_OP(to_device) {
  Args a(info, "to_device");
  Block s = storage_get(a.i64(0, "handle"), "to_device");
  Device dev = parse_device(a, info, 1);
  int64_t id = storage_alloc(info.Env(), s.dtype, s.count, false, dev);
  try {
    copy_bytes(a, storage_get(id, "to_device"), 0, s, 0, s.bytes, true);
  } catch (...) {
    storage_free(id);
    throw;
  }
  return Napi::Number::New(info.Env(), double(id));
}

// device_of(handle) -> 'cpu' | 'cuda'
M2KD_OP(device_of) {
  Args a(info, "device_of");
  return Napi::String::New(info.Env(), device_name(storage_get(a.i64(0, "handle"), "device_of").device));
}

// free(handle)
M2KD_OP(free) {
  Args a(info, "free");
  storage_free(a.i64(0, "handle"));
  return info.Env().Undefined();
}

// write(handle, typedArray, elementOffset): copies the typed array's elements in
M2KD_OP(write) {
  Args a(info, "write");
  int64_t id = a.i64(0, "handle");
  if (info.Length() < 2 || !info[1].IsTypedArray()) a.fail("argument 'data' must be a typed array");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  int64_t off = info.Length() > 2 ? a.i64(2, "offset") : 0;
  Block b = storage_get(id, "write");
  DType want = b.dtype;
  napi_typedarray_type t = ta.TypedArrayType();
  bool ok = (want == DType::f32 && t == napi_float32_array) || (want == DType::i32 && t == napi_int32_array) ||
            (want == DType::u8 && (t == napi_uint8_array || t == napi_uint8_clamped_array));
  if (!ok) a.fail(std::string("typed array type does not match buffer dtype ") + dtype_name(want));
  int64_t n = int64_t(ta.ElementLength());
  if (off < 0 || off + n > b.count)
    a.fail("write of " + std::to_string(n) + " elements at " + std::to_string(off) + " overflows a buffer of " +
           std::to_string(b.count));
  uint8_t* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  uint8_t* dst = static_cast<uint8_t*>(b.ptr) + size_t(off) * dtype_size(want);
  if (b.device == Device::cpu) {
    std::memcpy(dst, src, size_t(n) * dtype_size(want));
  } else {
#ifdef M2KD_WITH_CUDA
    cuda_copy(dst, src, size_t(n) * dtype_size(want), CopyKind::h2d);
#endif
  }
  return info.Env().Undefined();
}

// read(handle, elementOffset, count) -> new typed array (copy)
M2KD_OP(read) {
  Args a(info, "read");
  int64_t id = a.i64(0, "handle");
  Block b = storage_get(id, "read");
  int64_t off = info.Length() > 1 ? a.i64(1, "offset") : 0;
  int64_t n = info.Length() > 2 ? a.i64(2, "count") : b.count - off;
  if (off < 0 || n < 0 || off + n > b.count)
    a.fail("read of " + std::to_string(n) + " elements at " + std::to_string(off) + " overflows a buffer of " +
           std::to_string(b.count));
  Napi::Env env = info.Env();
  size_t es = dtype_size(b.dtype);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, size_t(n) * es);
  const uint8_t* src = static_cast<uint8_t*>(b.ptr) + size_t(off) * es;
  if (b.device == Device::cpu) {
    std::memcpy(ab.Data(), src, size_t(n) * es);
  } else {
#ifdef M2KD_WITH_CUDA
    cuda_copy(ab.Data(), src, size_t(n) * es, CopyKind::d2h);  // waits for the queued work
#endif
  }
  switch (b.dtype) {
    case DType::f32: return Napi::Float32Array::New(env, size_t(n), ab, 0);
    case DType::i32: return Napi::Int32Array::New(env, size_t(n), ab, 0);
    default: return Napi::Uint8Array::New(env, size_t(n), ab, 0);
  }
}

// copy(dst, dstOffset, src, srcOffset, count): element copy between buffers of one dtype
M2KD_OP(copy) {
  Args a(info, "copy");
  Block d = storage_get(a.i64(0, "dst"), "copy");
  int64_t doff = a.i64(1, "dstOffset");
  Block s = storage_get(a.i64(2, "src"), "copy");
  int64_t soff = a.i64(3, "srcOffset");
  int64_t n = a.i64(4, "count");
  a.require(d.dtype == s.dtype, std::string("dtype mismatch: dst ") + dtype_name(d.dtype) + ", src " + dtype_name(s.dtype));
  a.require(n >= 0 && doff >= 0 && soff >= 0 && doff + n <= d.count && soff + n <= s.count,
            "copy range out of bounds");
  size_t es = dtype_size(d.dtype);
  copy_bytes(a, d, size_t(doff) * es, s, size_t(soff) * es, size_t(n) * es, false);
  return info.Env().Undefined();
}

// copy_stats(reset = false) -> host <-> device transfers since load (or the last reset)
M2KD_OP(copy_stats) {
  const bool reset = info.Length() > 0 && info[0].ToBoolean().Value();
  Napi::Object o = Napi::Object::New(info.Env());
#ifdef M2KD_WITH_CUDA
  HostCopyStats c = host_copy_stats(reset);
  o.Set("h2d", double(c.h2d));
  o.Set("d2h", double(c.d2h));
  o.Set("h2dBytes", double(c.h2d_bytes));
  o.Set("d2hBytes", double(c.d2h_bytes));
#else
  (void)reset;
  o.Set("h2d", 0.0);
  o.Set("d2h", 0.0);
  o.Set("h2dBytes", 0.0);
  o.Set("d2hBytes", 0.0);
#endif
  return o;
}

M2KD_OP(memory_stats) {
  MemoryStats m = memory_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("liveBytes", double(m.live_bytes));
  o.Set("liveBlocks", double(m.live_blocks));
  o.Set("pooledBytes", double(m.pooled_bytes));
  o.Set("pooledBlocks", double(m.pooled_blocks));
  o.Set("peakLiveBytes", double(m.peak_live_bytes));
  o.Set("osAllocations", double(m.os_allocs));
#ifdef M2KD_WITH_CUDA
  CudaMemoryStats d = cuda_memory_stats();
  o.Set("deviceLiveBytes", double(d.live_bytes));
  o.Set("deviceLiveBlocks", double(d.live_blocks));
  o.Set("devicePooledBytes", double(d.pooled_bytes));
  o.Set("devicePeakLiveBytes", double(d.peak_live_bytes));
  o.Set("deviceAllocations", double(d.device_allocs));
#endif
  return o;
}

M2KD_OP(empty_cache) {
  empty_cache();
#ifdef M2KD_WITH_CUDA
  cuda_empty_cache();
#endif
  return info.Env().Undefined();
}

// cuda_info() -> { compiled, available, reason, driverVersion, runtimeVersion, deviceName, ... }
M2KD_OP(cuda_info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef M2KD_WITH_CUDA
  const CudaInfo& c = cuda_info();
  o.Set("compiled", true);
  o.Set("available", c.available);
  o.Set("reason", c.available ? std::string() : c.reason);
  o.Set("driverVersion", c.driver_version);
  o.Set("runtimeVersion", c.runtime_version);
  o.Set("deviceName", c.name);
  o.Set("computeCapability", std::to_string(c.cc_major) + "." + std::to_string(c.cc_minor));
  o.Set("smCount", c.sm_count);
  o.Set("totalMemory", double(c.total_memory));
#ifdef M2KD_CUDA_ARCHS
  o.Set("archs", M2KD_CUDA_ARCHS);
#endif
#else
  o.Set("compiled", false);
  o.Set("available", false);
  o.Set("reason", "this addon was built without CUDA (npm run build:cuda builds the CUDA variant)");
#endif
  return o;
}

// cuda_synchronize(): waits for all queued device work (no-op without a device)
M2KD_OP(cuda_synchronize) {
#ifdef M2KD_WITH_CUDA
  cuda_synchronize();
#endif
  return info.Env().Undefined();
}

// cuda_set_sync(on): synchronise after every kernel launch (debugging: exact file:line of faults)
M2KD_OP(cuda_set_sync) {
  Args a(info, "cuda_set_sync");
  bool on = a.flag(0, "on");
#ifdef M2KD_WITH_CUDA
  cuda::set_sync_launches(on);
#else
  (void)on;
#endif
  return info.Env().Undefined();
}

M2KD_OP(runtime_info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("isa", isa_name(current_isa()));
  o.Set("bestIsa", isa_name(best_isa()));
  o.Set("threads", thread_count());
#ifdef M2KD_WITH_CUDA
  o.Set("cudaCompiled", true);
#else
  o.Set("cudaCompiled", false);
#endif
#ifdef M2KD_WITH_CUDA
  o.Set("cudaAvailable", cuda_info().available);
#else
  o.Set("cudaAvailable", false);
#endif
  o.Set("ops", double(op_registry().size()));
  return o;
}

M2KD_OP(set_isa) {
  Args a(info, "set_isa");
  std::string s = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (s == "scalar") set_isa(Isa::scalar);
  else if (s == "avx2") set_isa(Isa::avx2);
  else if (s == "avx512") set_isa(Isa::avx512);
  else a.fail("unknown SIMD level '" + s + "' (expected scalar, avx2 or avx512)");
  return info.Env().Undefined();
}

M2KD_OP(set_threads) {
  Args a(info, "set_threads");
  set_thread_count(int(a.i64(0, "threads")));
  return info.Env().Undefined();
}

std::atomic<int> g_envs{0};

void env_cleanup(void* arg) {
  storage_release_env(static_cast<napi_env>(arg));
  if (--g_envs == 0) exec_shutdown();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const OpEntry& e : op_registry()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  g_envs++;
  napi_add_env_cleanup_hook(env, env_cleanup, static_cast<napi_env>(env));
  return exports;
}

}  // namespace native
}  // namespace m2kd

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return m2kd::native::Init(env, exports); }
NODE_API_MODULE(m2kd, InitModule)
