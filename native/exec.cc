// The CPU execution context: a persistent thread pool (M2KD_THREADS overrides its size),
// per-slot scratch buffers reused across calls, and the ISA level (best the machine has,
// M2KD_SIMD=avx2|scalar forces a lower one). Calls from several JS threads are serialised.
// Slots are few (8) but not per thread: a kernel that needs one buffer per worker takes ONE slot
// sized workers x part (cpu::per_thread_scratch), so no kernel's worker count is capped by them.
// exec_stats() reports the widest parallel_for split since the last reset (tests check that a
// kernel really uses every worker it is given).
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "addon.h"

namespace m2kd {
namespace native {

namespace {

Isa detect_isa() {
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::scalar;
}

Isa initial_isa() {
  Isa best = detect_isa();
  const char* env = std::getenv("M2KD_SIMD");
  if (!env || !*env) return best;
  Isa want = best;
  if (!std::strcmp(env, "scalar")) want = Isa::scalar;
  else if (!std::strcmp(env, "avx2")) want = Isa::avx2;
  else if (!std::strcmp(env, "avx512")) want = Isa::avx512;
  return int(want) < int(best) ? want : best;
}

int default_threads() {
  const char* env = std::getenv("M2KD_THREADS");
  if (env && *env) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 256) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : int(hc);
}

class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    stop();
    nthreads_ = n < 1 ? 1 : n;
    uint64_t start_gen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = false;
      body_ = nullptr;
      parts_ = 1;
      start_gen = generation_.load();
    }
    // new workers wait for the NEXT generation: never a stale job from before the resize
    for (int t = 1; t < nthreads_; t++) workers_.emplace_back([this, t, start_gen] { worker(t, start_gen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
      generation_++;
    }
    cv_.notify_all();
    for (auto& th : workers_) th.join();
    workers_.clear();
    nthreads_ = 1;
  }

  int max_parts(bool reset) {
    int m = max_parts_.load();
    if (reset) max_parts_.store(0);
    return m;
  }

  void run(int64_t n, const std::function<void(int64_t, int64_t, int)>& body) {
    if (n <= 0) return;
    int parts = int(std::min<int64_t>(n, nthreads_));
    for (int m = max_parts_.load(std::memory_order_relaxed); m < parts &&
         !max_parts_.compare_exchange_weak(m, parts, std::memory_order_relaxed);) {
    }
    if (parts <= 1) {
      body(0, n, 0);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    {
      std::lock_guard<std::mutex> lk(mu_);
      body_ = &body;
      n_ = n;
      parts_ = parts;
      pending_.store(parts - 1);
      generation_++;
    }
    cv_.notify_all();
    run_part(Job{&body, n, parts}, 0);
    // wait for the workers: spin briefly (kernels are short), then sleep
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; spin++) {
      if (spin > 20000) {
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [this] { return pending_.load() == 0; });
        break;
      }
      __builtin_ia32_pause();
    }
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

 private:
  struct Job {
    const std::function<void(int64_t, int64_t, int)>* body;
    int64_t n;
    int parts;
  };

  void run_part(const Job& job, int t) {
    int64_t begin = job.n * t / job.parts, end = job.n * (t + 1) / job.parts;
    try {
      (*job.body)(begin, end, t);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void worker(int t, uint64_t seen) {
    for (;;) {
      // spin a little on the generation counter before sleeping
      for (int spin = 0; spin < 20000 && gen_snapshot() == seen; spin++) __builtin_ia32_pause();
      Job job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        if (quit_) return;
        job = Job{body_, n_, parts_};
      }
      if (t < job.parts) {
        run_part(job, t);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lk(mu_);
          done_cv_.notify_all();
        }
      }
    }
  }

  uint64_t gen_snapshot() const { return generation_.load(std::memory_order_acquire); }

  std::vector<std::thread> workers_;
  int nthreads_ = 1;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};
  bool quit_ = false;
  const std::function<void(int64_t, int64_t, int)>* body_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 1;
  std::atomic<int> pending_{0};
  std::atomic<int> max_parts_{0};
  std::exception_ptr error_;
};

std::mutex g_exec_mu;
ThreadPool* g_pool = nullptr;
Isa g_best = detect_isa();
std::atomic<int> g_isa{int(initial_isa())};

struct Scratch {
  void* ptr = nullptr;
  size_t cap = 0;
};
Scratch g_scratch[8];

ThreadPool& pool() {
  std::lock_guard<std::mutex> lk(g_exec_mu);
  if (!g_pool) g_pool = new ThreadPool(default_threads());
  return *g_pool;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

Isa best_isa() { return g_best; }
Isa current_isa() { return Isa(g_isa.load()); }
void set_isa(Isa isa) {
  if (int(isa) > int(g_best))
    throw OpError(std::string("SIMD level ") + isa_name(isa) + " is not supported by this CPU (best: " +
                  isa_name(g_best) + ")");
  g_isa.store(int(isa));
}
int thread_count() { return pool().size(); }
void set_thread_count(int n) {
  if (n < 1 || n > 256) throw OpError("thread count must be in 1..256, got " + std::to_string(n));
  pool().resize(n);
}
void exec_shutdown() {
  std::lock_guard<std::mutex> lk(g_exec_mu);
  delete g_pool;
  g_pool = nullptr;
  for (auto& s : g_scratch) {
    pool_return(s.ptr, s.cap);
    s = Scratch{};
  }
}

Isa CpuExec::isa() const { return current_isa(); }
int CpuExec::threads() const { return const_cast<ThreadPool&>(pool()).size(); }
void CpuExec::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& body) const {
  pool().run(n, body);
}
void* CpuExec::scratch(int slot, size_t bytes) const {
  if (slot < 0 || slot >= 8) return nullptr;
  Scratch& s = g_scratch[slot];
  if (s.cap < bytes) {
    pool_return(s.ptr, s.cap);
    s.ptr = pool_acquire(bytes, &s.cap);
    if (!s.ptr) {
      s.cap = 0;
      throw OpError("out of host memory for " + std::to_string(bytes) + " bytes of kernel scratch");
    }
  }
  return s.ptr;
}

// {threads, maxParts}: the pool size and the widest split any parallel_for ran since the last
// reset (exec_stats(true) reads and resets).
M2KD_OP(exec_stats) {
  const bool reset = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  ThreadPool& p = pool();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("threads", double(p.size()));
  o.Set("maxParts", double(p.max_parts(reset)));
  return o;
}

const CpuExec& cpu() {
  static CpuExec e;
  return e;
}

}  // namespace native
}  // namespace m2kd
