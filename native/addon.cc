// Module entry: exports the storage, runtime and info functions, then every op registered
// with M2KD_OP. Each JS environment (main thread or worker) gets a cleanup hook that frees
// the blocks it still owns; the thread pool stops when the last environment goes away.
#include <atomic>
#include <cstring>

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
  return b.ptr;
}

Napi::Value guarded(const Napi::CallbackInfo& info, const char* op, OpFn fn) {
  Napi::Env env = info.Env();
  try {
    return fn(info);
  } catch (const Napi::Error& e) {
    Napi::Error::New(env, std::string("m2kd.") + op + ": " + e.Message()).ThrowAsJavaScriptException();
  } catch (const std::bad_alloc&) {
    Napi::Error::New(env, std::string("m2kd.") + op + ": out of memory").ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("m2kd.") + op + ": " + e.what()).ThrowAsJavaScriptException();
  } catch (...) {
    Napi::Error::New(env, std::string("m2kd.") + op + ": unknown native error").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

namespace {

DType parse_dtype(const Args& a, const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "f32") return DType::f32;
  if (s == "i32") return DType::i32;
  if (s == "u8") return DType::u8;
  a.fail("unknown dtype '" + s + "' (expected f32, i32 or u8)");
}

// alloc(dtype, count, zero) -> handle
M2KD_OP(alloc) {
  Args a(info, "alloc");
  DType dt = parse_dtype(a, info[0]);
  int64_t count = a.i64(1, "count");
  a.require(count >= 0, "count must be >= 0");
  bool zero = info.Length() > 2 && info[2].ToBoolean().Value();
  return Napi::Number::New(info.Env(), double(storage_alloc(info.Env(), dt, count, zero)));
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
  std::memcpy(static_cast<uint8_t*>(b.ptr) + size_t(off) * dtype_size(want), src, size_t(n) * dtype_size(want));
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
  std::memcpy(ab.Data(), static_cast<uint8_t*>(b.ptr) + size_t(off) * es, size_t(n) * es);
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
  std::memmove(static_cast<uint8_t*>(d.ptr) + doff * es, static_cast<uint8_t*>(s.ptr) + soff * es, size_t(n) * es);
  return info.Env().Undefined();
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
  return o;
}

M2KD_OP(empty_cache) {
  empty_cache();
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
  o.Set("cudaAvailable", false);
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
