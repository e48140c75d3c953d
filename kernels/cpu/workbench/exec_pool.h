// Minimal m2kd::Exec for the workbench: persistent std::thread pool + grow-only scratch slots.
#pragma once
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "m2kd_kernels.h"

namespace wb {

class PoolExec : public m2kd::Exec {
 public:
  PoolExec(m2kd::Isa isa, int threads) : isa_(isa), nthreads_(threads < 1 ? 1 : threads) {
    for (int t = 1; t < nthreads_; t++) workers_.emplace_back([this, t] { worker(t); });
  }
  ~PoolExec() override {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
      gen_++;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    for (auto& s : slots_) std::free(s.p);
  }
  m2kd::Isa isa() const override { return isa_; }
  void set_isa(m2kd::Isa i) { isa_ = i; }
  int threads() const override { return nthreads_; }
  void parallel_for(int64_t n,
                    const std::function<void(int64_t, int64_t, int)>& body) const override {
    if (n <= 0) return;
    if (nthreads_ == 1 || n == 1) {
      body(0, n, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      body_ = &body;
      n_ = n;
      pending_ = nthreads_ - 1;
      gen_++;
    }
    cv_.notify_all();
    run_chunk(0);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    body_ = nullptr;
  }
  void* scratch(int slot, size_t bytes) const override {
    Slot& s = slots_[slot];
    if (bytes > s.size) {
      std::free(s.p);
      size_t b = (bytes + 63) / 64 * 64;
      s.p = std::aligned_alloc(64, b);
      s.size = b;
    }
    return s.p;
  }

 private:
  struct Slot {
    void* p = nullptr;
    size_t size = 0;
  };
  void run_chunk(int t) const {
    const int64_t b = n_ * t / nthreads_, e = n_ * (t + 1) / nthreads_;
    if (b < e) (*body_)(b, e, t);
  }
  void worker(int t) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return gen_ != seen; });
        seen = gen_;
        if (stop_) return;
      }
      run_chunk(t);
      {
        std::lock_guard<std::mutex> g(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }
  m2kd::Isa isa_;
  int nthreads_;
  std::vector<std::thread> workers_;
  mutable Slot slots_[8];
  mutable std::mutex mu_;
  mutable std::condition_variable cv_, done_cv_;
  mutable const std::function<void(int64_t, int64_t, int)>* body_ = nullptr;
  mutable int64_t n_ = 0;
  mutable int pending_ = 0;
  mutable uint64_t gen_ = 0;
  bool stop_ = false;
};

}  // namespace wb
