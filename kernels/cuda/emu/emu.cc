// The emulated CUDA device's engine (npm run build:cuda-emu only; see cuda_runtime.h here):
//  - launches: blocks run one after another on the launching host thread; the threads of a
//    block are fibers (own stacks, a small x86-64 context switch, no syscalls) scheduled
//    cooperatively: a thread runs until it reaches a barrier, a warp operation or its end;
//  - __syncthreads: released when every live thread waits at the same barrier; threads that
//    wait at different barriers, or exit while others wait, are a barrier-divergence error;
//  - warp operations: complete when every lane of the mask has arrived; a lane of the mask that
//    exited or waits elsewhere, or a shuffle that reads a lane outside the mask, is an error;
//  - shared memory: one region per block, poisoned (0xff) at first use, with a shadow word per
//    4 bytes: last writer and readers in the current barrier interval (racecheck: two threads
//    touch the same address between two barriers, one writing) and a written bit (initcheck);
//  - global memory: device allocations come from one reserved arena, each followed by a guard
//    page, freed ones made inaccessible; a fault inside a kernel is caught (SIGSEGV, the faulting
//    thread is resumed in a trampoline that ends the launch) and reported with the address
//    relative to the nearest allocation; canaries catch small overruns after each launch.
// Policy: a failed check ends the launch at once (the other threads of the grid do not run)
// and becomes the pending error; nothing here throws across a fiber or exits the process.
// Launches are serialised by one mutex (the addon is used from one JS thread at a time).
#if defined(M2KD_CUDA_EMU)
#include "emu.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__) || !defined(__linux__)
#error "the emulated CUDA device needs x86-64 Linux (fiber switch and fault recovery)"
#endif

// void m2kd_emu_switch(void** save_sp, void* to_sp): saves the callee-saved registers, MXCSR and
// the x87 control word on the current stack, stores the stack pointer in *save_sp, and resumes
// the context whose stack pointer is to_sp.
asm(R"(
  .text
  .globl m2kd_emu_switch
  .hidden m2kd_emu_switch
  .type m2kd_emu_switch,@function
m2kd_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size m2kd_emu_switch, .-m2kd_emu_switch
)");
extern "C" void m2kd_emu_switch(void** save_sp, void* to_sp);

namespace m2kd {
namespace emu {

ThreadCoords* g_coords = nullptr;

namespace {
constexpr size_t kMaxSharedBytes = size_t(227) << 10;
alignas(64) char g_shared_mem[kMaxSharedBytes];
ShadowWord g_shadow_mem[kMaxSharedBytes / 4];
}  // namespace
FastState g_fast{g_shared_mem, g_shadow_mem, 0, -1, 0};

namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStack = size_t(128) << 10;  // per emulated thread
constexpr size_t kMaxShared = kMaxSharedBytes;
constexpr size_t kArenaBytes = size_t(64) << 30;
constexpr size_t kCanaryBefore = 64;
constexpr unsigned char kCanary = 0xfd;

std::recursive_mutex g_mu;  // launches and the arena
size_t g_page = 4096;

// ------------------------------------------------------------------ errors
int g_pending = 0;
int g_detail_code = 0;
std::string g_detail;

// ------------------------------------------------------------------ arena
struct Alloc {
  char* block;
  size_t pages;  // data pages (a guard page follows)
  size_t bytes;  // requested
  char* start;
};
char* g_arena = nullptr;
size_t g_bump_pages = 0;
std::map<uintptr_t, Alloc> g_live;          // by start
std::map<uintptr_t, Alloc> g_freed;         // by block (for use-after-free reports)
std::map<size_t, std::vector<char*>> g_pool;  // data pages -> free blocks

void arena_init() {
  if (g_arena) return;
  g_page = size_t(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  g_arena = static_cast<char*>(p);
}

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

const Alloc* find_live(uintptr_t a) {  // the live allocation whose [block, end + guard) holds a
  auto it = g_live.upper_bound(a);
  // the next allocation's block may start before its `start`
  if (it != g_live.end() && uintptr_t(it->second.block) <= a) return &it->second;
  if (it == g_live.begin()) return nullptr;
  --it;
  const Alloc& al = it->second;
  if (a < uintptr_t(al.block) + (al.pages + 1) * g_page) return &al;
  return nullptr;
}

std::string hex(const void* p) {
  char b[32];
  std::snprintf(b, sizeof b, "%p", p);
  return b;
}

// Where `addr` is, relative to device memory.
std::string describe_address(const void* addr) {
  const uintptr_t a = uintptr_t(addr);
  if (g_arena && a >= uintptr_t(g_arena) && a < uintptr_t(g_arena) + kArenaBytes) {
    if (const Alloc* al = find_live(a)) {
      const uintptr_t s = uintptr_t(al->start), e = s + al->bytes;
      if (a >= e) return "byte " + std::to_string(a - s) + " of the " + std::to_string(al->bytes) +
                         "-byte device allocation at " + hex(al->start) + " (" + std::to_string(a - e) +
                         " bytes past its end)";
      if (a < s) return std::to_string(s - a) + " bytes before the start of the " + std::to_string(al->bytes) +
                        "-byte device allocation at " + hex(al->start);
      return "inside the " + std::to_string(al->bytes) + "-byte device allocation at " + hex(al->start);
    }
    auto it = g_freed.upper_bound(a);
    if (it != g_freed.begin()) {
      --it;
      const Alloc& al = it->second;
      if (a < uintptr_t(al.block) + (al.pages + 1) * g_page)
        return "in the freed " + std::to_string(al.bytes) + "-byte device allocation at " + hex(al.start) +
               " (use after free)";
    }
    return "unallocated device memory";
  }
  if (a < 4096) return "a null pointer dereference";
  return "not device memory (a host pointer, or garbage)";
}

// ------------------------------------------------------------------ fibers and blocks
enum class St : uint8_t { ready, barrier, warp, exited };

struct Thr {
  void* sp;
  bool started;
  St st;
  ThreadCoords coords;
  const char* file;
  int line;
  // warp operation
  int wkind;  // 0..3 shuffles, 10 ballot, 11 any, 12 all, 20 syncwarp
  unsigned wmask;
  uint64_t wval, wres;
  int warg, wwidth;
};

struct Decl {
  const void* key;
  size_t off, bytes;
  const char* name;
};

using Shadow = ShadowWord;

char* g_stacks = nullptr;
std::vector<Thr> g_thr;
void* g_sched_sp = nullptr;
int& g_running = g_fast.running;  // the running thread (linear id in its block), -1 outside kernels
int g_nthreads = 0;
KernelBody* g_body = nullptr;

// the launch
const char* g_kernel = "";
const char* g_kfile = "";
int g_kline = 0;
size_t g_dyn_bytes = 0;
bool g_failed = false;
int g_fail_code = 0;
std::string g_fail_msg;

// shared memory of the running block
char* const g_shared = g_shared_mem;
Shadow* const g_shadow = g_shadow_mem;
std::vector<Decl> g_decls;
size_t g_shared_used = 0;
uint32_t& g_epoch = g_fast.epoch;
const char g_dyn_key = 0;

EmuStats g_stats{};

const char* base_name(const char* f) {
  const char* s = std::strrchr(f, '/');
  return s ? s + 1 : f;
}

std::string coords3(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}
std::string thread_name(int t) {
  const uint3& c = g_thr[t].coords.thread;
  return "thread " + coords3(c.x, c.y, c.z);
}
std::string where(int t) {
  const ThreadCoords& c = g_thr[t >= 0 ? t : 0].coords;
  std::string s = "kernel " + std::string(g_kernel) + " (launched at " + base_name(g_kfile) + ":" +
                  std::to_string(g_kline) + "), block " + coords3(c.block.x, c.block.y, c.block.z);
  if (t >= 0) s += ", " + thread_name(t);
  return s;
}
std::string site(const char* f, int l) { return std::string(base_name(f)) + ":" + std::to_string(l); }

// Ends the launch with an error. From a fiber: never returns (back to the scheduler).
void fail(int code, const std::string& msg) {
  if (!g_failed) {
    g_failed = true;
    g_fail_code = code;
    g_fail_msg = msg;
  }
  if (g_running >= 0) {
    Thr& t = g_thr[g_running];
    m2kd_emu_switch(&t.sp, g_sched_sp);
    __builtin_trap();  // a failed fiber is never resumed
  }
}

void fiber_main() {
  g_body->run();
  Thr& t = g_thr[g_running];
  t.st = St::exited;
  m2kd_emu_switch(&t.sp, g_sched_sp);
  __builtin_trap();
}

// ---- faults in kernels
void* g_fault_addr = nullptr;
pthread_t g_launch_thread;
bool g_fault_write = false;
struct sigaction g_old_segv;
bool g_have_old = false;

[[noreturn]] void fault_entry() {
  const void* a = g_fault_addr;
  fail(cudaErrorIllegalAddress, "out-of-bounds global " + std::string(g_fault_write ? "write" : "read") + " in " +
                                    where(g_running) + ": address " + hex(a) + " is " + describe_address(a));
  __builtin_trap();
}

void segv_handler(int sig, siginfo_t* si, void* ctx) {
  // ours only when an emulated thread runs on this host thread (not a fault of another thread)
  if (g_running >= 0 && g_body && pthread_equal(pthread_self(), g_launch_thread)) {
    ucontext_t* uc = static_cast<ucontext_t*>(ctx);
    g_fault_addr = si->si_addr;
    g_fault_write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    greg_t sp = uc->uc_mcontext.gregs[REG_RSP];
    sp = ((sp - 512) & ~greg_t(15)) - 8;  // below the red zone, aligned as after a call
    uc->uc_mcontext.gregs[REG_RSP] = sp;
    uc->uc_mcontext.gregs[REG_RIP] = greg_t(reinterpret_cast<uintptr_t>(&fault_entry));
    return;
  }
  // not ours: the previous handler (Node's, or the default action)
  if (g_have_old && (g_old_segv.sa_flags & SA_SIGINFO) && g_old_segv.sa_sigaction) {
    g_old_segv.sa_sigaction(sig, si, ctx);
    return;
  }
  if (g_have_old && g_old_segv.sa_handler != SIG_DFL && g_old_segv.sa_handler != SIG_IGN) {
    g_old_segv.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // re-executing the access ends the process as it would have
}

void install_handler() {
  struct sigaction cur;
  sigaction(SIGSEGV, nullptr, &cur);
  if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == &segv_handler) return;
  g_old_segv = cur;
  g_have_old = true;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &segv_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
}

void stacks_init() {
  if (g_stacks) return;
  const size_t span = kStack + g_page;  // guard page below each stack
  void* p = mmap(nullptr, span * kMaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  g_stacks = static_cast<char*>(p);
  for (int i = 0; i < kMaxThreads; ++i) mprotect(g_stacks + i * span, g_page, PROT_NONE);
  g_thr.resize(kMaxThreads);
}

void run_thread(int i) {
  Thr& t = g_thr[i];
  if (!t.started) {
    t.started = true;
    char* top = g_stacks + size_t(i + 1) * (kStack + g_page);
    uint64_t* sp = reinterpret_cast<uint64_t*>(top - 72);
    uint32_t csr;
    uint16_t cw;
    asm volatile("stmxcsr %0" : "=m"(csr));
    asm volatile("fnstcw %0" : "=m"(cw));
    std::memset(sp, 0, 72);
    std::memcpy(sp, &csr, 4);
    std::memcpy(reinterpret_cast<char*>(sp) + 4, &cw, 2);
    sp[7] = uint64_t(reinterpret_cast<uintptr_t>(&fiber_main));
    t.sp = sp;
  }
  g_running = i;
  g_coords = &t.coords;
  m2kd_emu_switch(&g_sched_sp, t.sp);
  g_running = -1;
}

// Blocks the running fiber until the scheduler resumes it.
void block_here() {
  Thr& t = g_thr[g_running];
  m2kd_emu_switch(&t.sp, g_sched_sp);
}

const char* op_name(int kind) {
  switch (kind) {
    case 0: return "__shfl_sync";
    case 1: return "__shfl_up_sync";
    case 2: return "__shfl_down_sync";
    case 3: return "__shfl_xor_sync";
    case 10: return "__ballot_sync";
    case 11: return "__any_sync";
    case 12: return "__all_sync";
    default: return "__syncwarp";
  }
}

std::string state_of(int j) {
  const Thr& t = g_thr[j];
  switch (t.st) {
    case St::exited: return "has exited";
    case St::barrier: return "waits at __syncthreads at " + site(t.file, t.line);
    case St::warp: return "waits at " + std::string(op_name(t.wkind)) + " at " + site(t.file, t.line);
    default: return "is running";
  }
}

// Completes the warp operation of warp w when every lane of its mask has arrived.
void resolve_warp(int w) {
  const int first = w * 32, lanes = std::min(32, g_nthreads - first);
  int lead = -1;
  for (int l = 0; l < lanes; ++l)
    if (g_thr[first + l].st == St::warp) {
      lead = first + l;
      break;
    }
  if (lead < 0) return;
  const unsigned mask = g_thr[lead].wmask;
  for (int l = 0; l < lanes; ++l) {
    const Thr& t = g_thr[first + l];
    if (t.st != St::warp) continue;
    if (!((t.wmask >> l) & 1u))
      return fail(cudaErrorEmuShuffleInactiveLane,
                  std::string(op_name(t.wkind)) + " at " + site(t.file, t.line) + " in " + where(first + l) +
                      ": the mask " + hex(reinterpret_cast<void*>(uintptr_t(t.wmask))) +
                      " does not include the calling lane " + std::to_string(l));
    if (t.wmask != mask)
      return fail(cudaErrorEmuBarrierDivergence,
                  "warp divergence in " + where(first + l) + ": lane " + std::to_string(l) + " calls " +
                      op_name(t.wkind) + " at " + site(t.file, t.line) + " with mask " +
                      hex(reinterpret_cast<void*>(uintptr_t(t.wmask))) + " while lane " + std::to_string(lead - first) +
                      " uses mask " + hex(reinterpret_cast<void*>(uintptr_t(mask))));
  }
  for (int l = 0; l < 32; ++l) {
    if (!((mask >> l) & 1u)) continue;
    if (l >= lanes)
      return fail(cudaErrorEmuShuffleInactiveLane,
                  std::string(op_name(g_thr[lead].wkind)) + " at " + site(g_thr[lead].file, g_thr[lead].line) +
                      " in " + where(lead) + ": the mask names lane " + std::to_string(l) +
                      ", which was not launched (" + std::to_string(g_nthreads) + " threads in the block)");
    const Thr& t = g_thr[first + l];
    if (t.st == St::ready) return;  // not arrived yet
    if (t.st != St::warp)
      return fail(cudaErrorEmuBarrierDivergence,
                  std::string(op_name(g_thr[lead].wkind)) + " at " + site(g_thr[lead].file, g_thr[lead].line) +
                      " in " + where(lead) + " waits for lane " + std::to_string(l) + " of its mask, which " +
                      state_of(first + l));
    if (t.wkind != g_thr[lead].wkind)
      return fail(cudaErrorEmuBarrierDivergence,
                  "warp divergence in " + where(first + l) + ": lane " + std::to_string(l) + " " + state_of(first + l) +
                      " while lane " + std::to_string(lead - first) + " " + state_of(lead));
  }
  // every lane of the mask is here
  const int kind = g_thr[lead].wkind;
  if (kind >= 10 && kind < 20) {
    unsigned ballot = 0;
    for (int l = 0; l < lanes; ++l)
      if (((mask >> l) & 1u) && g_thr[first + l].wval) ballot |= 1u << l;
    const unsigned res = kind == 10 ? ballot : kind == 11 ? unsigned(ballot != 0) : unsigned(ballot == mask);
    for (int l = 0; l < lanes; ++l)
      if ((mask >> l) & 1u) g_thr[first + l].wres = res;
  } else if (kind < 10) {
    for (int l = 0; l < lanes; ++l) {
      if (!((mask >> l) & 1u)) continue;
      Thr& t = g_thr[first + l];
      const int width = t.wwidth;
      if (width <= 0 || width > 32 || (width & (width - 1)))
        return fail(cudaErrorInvalidValue, std::string(op_name(kind)) + " at " + site(t.file, t.line) + " in " +
                                               where(first + l) + ": width " + std::to_string(width) +
                                               " is not a power of two <= 32");
      const int seg = l & ~(width - 1), pos = l - seg;
      int src = l;
      switch (kind) {
        case 0: src = seg + (t.warg & (width - 1)); break;
        case 1: src = pos - t.warg >= 0 ? l - t.warg : l; break;
        case 2: src = pos + t.warg < width ? l + t.warg : l; break;
        default: {
          // CUDA: a group may read earlier groups, but a later group returns the caller's value
          const int x = l ^ (t.warg & 31);
          src = x < seg + width ? x : l;
        }
      }
      if (src != l && (src >= lanes || !((mask >> src) & 1u)))
        return fail(cudaErrorEmuShuffleInactiveLane,
                    std::string(op_name(kind)) + " at " + site(t.file, t.line) + " in " + where(first + l) +
                        " (lane " + std::to_string(l) + ") reads lane " + std::to_string(src) +
                        (src >= lanes ? ", which was not launched" : ", which is inactive (not in the mask " +
                                                                          hex(reinterpret_cast<void*>(uintptr_t(mask))) +
                                                                          ")") + ": its value is undefined");
      t.wres = g_thr[first + src].wval;
    }
  }
  for (int l = 0; l < lanes; ++l)
    if ((mask >> l) & 1u) g_thr[first + l].st = St::ready;
  g_stats.shuffles++;
}

void reset_shadow(size_t off, size_t bytes) {
  std::memset(&g_shadow[off / 4], 0, sizeof(Shadow) * ((bytes + 3) / 4));
}

// Runs one block to completion (or failure).
void run_block(dim3 grid, dim3 block, unsigned bx, unsigned by, unsigned bz) {
  const int n = g_nthreads;
  for (int i = 0; i < n; ++i) {
    Thr& t = g_thr[i];
    t.started = false;
    t.st = St::ready;
    t.coords.thread = uint3{unsigned(i % block.x), unsigned((i / block.x) % block.y), unsigned(i / (block.x * block.y))};
    t.coords.block = uint3{bx, by, bz};
    t.coords.block_dim = block;
    t.coords.grid_dim = grid;
  }
  g_decls.clear();
  g_shared_used = 0;
  ++g_epoch;
  g_stats.blocks++;
  g_stats.threads += uint64_t(n);
  for (;;) {
    bool ran = false;
    for (int i = 0; i < n && !g_failed; ++i) {
      if (g_thr[i].st != St::ready) continue;
      ran = true;
      run_thread(i);
      if (!g_failed && g_thr[i].st == St::warp) resolve_warp(i / 32);
    }
    if (g_failed) return;
    // warps waiting on lanes that went elsewhere
    for (int w = 0; w * 32 < n && !g_failed; ++w) resolve_warp(w);
    if (g_failed) return;
    int exited = 0, waiting = 0, ready = 0, first_wait = -1, first_exit = -1;
    for (int i = 0; i < n; ++i) {
      const St s = g_thr[i].st;
      if (s == St::exited) {
        ++exited;
        if (first_exit < 0) first_exit = i;
      } else if (s == St::barrier) {
        ++waiting;
        if (first_wait < 0) first_wait = i;
      } else if (s == St::ready) {
        ++ready;
      }
    }
    if (exited == n) return;
    if (ready > 0) continue;
    if (waiting > 0 && waiting + exited == n) {
      const Thr& a = g_thr[first_wait];
      if (exited > 0)
        return fail(cudaErrorEmuBarrierDivergence,
                    "barrier divergence in " + where(first_exit) + ": it exited while " + std::to_string(waiting) +
                        " threads of its block wait at __syncthreads at " + site(a.file, a.line));
      for (int i = 0; i < n; ++i) {
        const Thr& b = g_thr[i];
        if (b.line != a.line || std::strcmp(b.file, a.file) != 0)
          return fail(cudaErrorEmuBarrierDivergence,
                      "barrier divergence in " + where(i) + ": it waits at __syncthreads at " + site(b.file, b.line) +
                          " while " + thread_name(first_wait) + " waits at " + site(a.file, a.line));
      }
      for (int i = 0; i < n; ++i) g_thr[i].st = St::ready;
      ++g_epoch;
      g_stats.barriers++;
      continue;
    }
    if (!ran || ready == 0) {
      // nothing can move: describe the first thread stuck on a warp operation
      for (int i = 0; i < n; ++i)
        if (g_thr[i].st == St::warp)
          return fail(cudaErrorEmuBarrierDivergence, "deadlock in " + where(i) + ": it " + state_of(i) +
                                                         (first_wait >= 0 ? " while " + thread_name(first_wait) +
                                                                                " " + state_of(first_wait)
                                                                          : std::string()));
      return fail(cudaErrorEmuBarrierDivergence, "deadlock in " + where(0));
    }
  }
}

void check_canaries(std::string& out) {
  for (auto& kv : g_live) {
    const Alloc& al = kv.second;
    const size_t b16 = round_up(al.bytes == 0 ? 1 : al.bytes, 16);
    for (size_t i = al.bytes; i < b16; ++i)
      if (static_cast<unsigned char>(al.start[i]) != kCanary) {
        out = "out-of-bounds global write in kernel " + std::string(g_kernel) + " (launched at " + base_name(g_kfile) +
              ":" + std::to_string(g_kline) + "): address " + hex(al.start + i) + " is byte " + std::to_string(i) +
              " of the " + std::to_string(al.bytes) + "-byte device allocation at " + hex(al.start) + " (" +
              std::to_string(i - al.bytes) + " bytes past its end; found by its canary after the launch: the " +
              "thread is not known)";
        for (size_t j = al.bytes; j < b16; ++j) al.start[j] = char(kCanary);
        return;
      }
    const size_t before = std::min(kCanaryBefore, size_t(al.start - al.block));
    for (size_t i = 1; i <= before; ++i)
      if (static_cast<unsigned char>(al.start[-int64_t(i)]) != kCanary) {
        out = "out-of-bounds global write in kernel " + std::string(g_kernel) + " (launched at " + base_name(g_kfile) +
              ":" + std::to_string(g_kline) + "): address " + hex(al.start - i) + " is " + std::to_string(i) +
              " bytes before the start of the " + std::to_string(al.bytes) + "-byte device allocation at " +
              hex(al.start) + " (found after the launch: the thread is not known)";
        std::memset(al.start - before, kCanary, before);
        return;
      }
  }
}

// ---- kernel coverage
std::set<std::string>& registered_kernels() {
  static std::set<std::string> s;
  return s;
}
std::set<std::string> g_launched;
bool g_coverage_header = false;

void coverage_note(const char* kernel) {
  if (!g_launched.insert(kernel).second) return;
  const char* file = std::getenv("M2KD_EMU_COVERAGE");
  if (!file || !*file) return;
  FILE* f = std::fopen(file, "a");
  if (!f) return;
  if (!g_coverage_header) {
    g_coverage_header = true;
    for (const std::string& k : registered_kernels()) std::fprintf(f, "compiled %s\n", k.c_str());
  }
  std::fprintf(f, "launched %s\n", kernel);
  std::fclose(f);
}

}  // namespace

std::string kernel_name_from(const char* pretty) {
  std::string s(pretty);
  const size_t a = s.find("F = ");
  if (a == std::string::npos) return s;
  s = s.substr(a + 4);
  if (!s.empty() && s.back() == ']') s.pop_back();
  for (const char* strip : {"m2kd::cuda::", "{anonymous}::", "(anonymous namespace)::"}) {
    for (size_t p; (p = s.find(strip)) != std::string::npos;) s.erase(p, std::strlen(strip));
  }
  if (!s.empty() && s[0] == '&') s.erase(0, 1);
  return s;
}

bool register_kernel(const char* name) {  // at load time (static initialisation: one thread)
  registered_kernels().insert(name);
  return true;
}

// ------------------------------------------------------------------ device-side API
void syncthreads(const char* file, int line) {
  if (g_running < 0) return;
  Thr& t = g_thr[g_running];
  t.st = St::barrier;
  t.file = file;
  t.line = line;
  block_here();
}

uint64_t warp_shuffle(int kind, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line) {
  if (g_running < 0) return bits;
  Thr& t = g_thr[g_running];
  t.st = St::warp;
  t.wkind = kind;
  t.wmask = mask;
  t.wval = bits;
  t.warg = arg;
  t.wwidth = width;
  t.file = file;
  t.line = line;
  block_here();
  return g_thr[g_running].wres;
}

unsigned warp_vote(int kind, unsigned mask, bool pred, const char* file, int line) {
  return unsigned(warp_shuffle(10 + kind, mask, pred ? 1 : 0, 0, 32, file, line));
}

void syncwarp(unsigned mask, const char* file, int line) { (void)warp_shuffle(20, mask, 0, 0, 32, file, line); }

char* shared_region(const void* key, size_t bytes, size_t align, const char* name) {
  for (const Decl& d : g_decls)
    if (d.key == key) return g_shared + d.off;
  const size_t off = round_up(g_shared_used, std::max<size_t>(align, 16));
  if (off + bytes > kMaxShared) {
    fail(cudaErrorInvalidConfiguration, "shared memory of " + where(g_running) + " exceeds " +
                                            std::to_string(kMaxShared) + " bytes at '" + name + "'");
    return g_shared;  // not reached from a fiber
  }
  g_decls.push_back(Decl{key, off, bytes, name});
  g_shared_used = off + bytes;
  std::memset(g_shared + off, 0xff, bytes);  // poison: a NaN for floats and doubles
  reset_shadow(off, bytes);
  return g_shared + off;
}

char* shared_dynamic(size_t* bytes) {
  *bytes = g_dyn_bytes;
  return shared_region(&g_dyn_key, g_dyn_bytes, 16, "dynamic shared memory");
}

void shared_access(const void* p, size_t bytes, bool write) {
  if (g_running < 0) return;
  g_fast.accesses++;
  const size_t off = size_t(static_cast<const char*>(p) - g_shared);
  const uint16_t me = uint16_t(g_running);
  for (size_t w = off / 4, e = (off + bytes - 1) / 4; w <= e; ++w) {
    Shadow& s = g_shadow[w];
    int other = -1;
    const char* what = nullptr;
    if (!write) {
      if (!s.init) {
        const Decl* d = nullptr;
        for (const Decl& x : g_decls)
          if (off >= x.off && off < x.off + x.bytes) d = &x;
        fail(cudaErrorEmuSharedUninitialized,
             "uninitialized shared-memory read in " + where(g_running) + ": address " + hex(p) + " (byte " +
                 std::to_string(d ? off - d->off : off) + " of '" + (d ? d->name : "?") +
                 "') was never written in this block");
        return;
      }
      if (s.wep == g_epoch && s.wtid != me) {
        other = s.wtid;
        what = "reads an address that %s wrote since the last barrier (read-after-write race)";
      } else if (s.rep != g_epoch) {
        s.rep = g_epoch;
        s.rtid = me;
        s.rtid2 = me;
      } else if (s.rtid != me) {
        s.rtid2 = me;
      }
    } else {
      if (s.wep == g_epoch && s.wtid != me) {
        other = s.wtid;
        what = "writes an address that %s wrote since the last barrier (write-after-write race)";
      } else if (s.rep == g_epoch && (s.rtid != me || s.rtid2 != me)) {
        other = s.rtid != me ? s.rtid : s.rtid2;
        what = "writes an address that %s read since the last barrier (write-after-read race)";
      } else {
        s.wep = g_epoch;
        s.wtid = me;
        s.init = 1;
      }
    }
    if (what) {
      const Decl* d = nullptr;
      for (const Decl& x : g_decls)
        if (off >= x.off && off < x.off + x.bytes) d = &x;
      char buf[200];
      std::snprintf(buf, sizeof buf, what, thread_name(other).c_str());
      fail(cudaErrorEmuSharedRace, "shared-memory race in " + where(g_running) + ": it " + buf + ": address " +
                                       hex(p) + " (byte " + std::to_string(d ? off - d->off : off) + " of '" +
                                       (d ? d->name : "?") + "')");
      return;
    }
  }
}

void shared_out_of_bounds(const char* name, int64_t index, int64_t extent) {
  fail(cudaErrorEmuSharedOutOfBounds, "out-of-bounds shared-memory index in " + where(g_running) + ": index " +
                                          std::to_string(index) + " of a dimension of '" + name + "' with extent " +
                                          std::to_string(extent));
  __builtin_trap();
}

bool pointer_arg_ok(const void* p, const char* kernel, int index, const char* file, int line) {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  if (p == nullptr || is_device_pointer(p)) return true;
  set_error(cudaErrorInvalidDevicePointer, "kernel " + std::string(kernel) + " (launched at " + site(file, line) +
                                               "): argument " + std::to_string(index) + " is " + hex(p) + ", " +
                                               describe_address(p));
  return false;
}

void launch(KernelBody& body, const char* kernel, const char* file, int line, dim3 grid, dim3 block, size_t shmem,
            cudaStream_t) {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  const uint64_t nt = uint64_t(block.x) * block.y * block.z;
  if (nt == 0 || nt > kMaxThreads || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || shmem > kMaxShared) {
    set_error(cudaErrorInvalidConfiguration,
              "kernel " + std::string(kernel) + " (launched at " + site(file, line) + "): invalid configuration grid " +
                  coords3(grid.x, grid.y, grid.z) + " block " + coords3(block.x, block.y, block.z) + " shared " +
                  std::to_string(shmem) + " bytes");
    return;
  }
  stacks_init();
  g_launch_thread = pthread_self();
  install_handler();
  coverage_note(kernel);
  g_kernel = kernel;
  g_kfile = file;
  g_kline = line;
  g_dyn_bytes = shmem;
  g_body = &body;
  g_nthreads = int(nt);
  g_failed = false;
  g_fail_msg.clear();
  g_stats.launches++;
  for (unsigned bz = 0; bz < grid.z && !g_failed; ++bz)
    for (unsigned by = 0; by < grid.y && !g_failed; ++by)
      for (unsigned bx = 0; bx < grid.x && !g_failed; ++bx) run_block(grid, block, bx, by, bz);
  g_body = nullptr;
  g_coords = nullptr;
  if (g_failed) {
    set_error(g_fail_code, g_fail_msg);
    return;
  }
  std::string canary;
  check_canaries(canary);
  if (!canary.empty()) set_error(cudaErrorIllegalAddress, canary);
}

// ------------------------------------------------------------------ memory
void* device_alloc(size_t bytes) {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  arena_init();
  const size_t b16 = round_up(bytes == 0 ? 1 : bytes, 16);
  const size_t pages = (b16 + g_page - 1) / g_page;
  char* block = nullptr;
  auto it = g_pool.find(pages);
  if (it != g_pool.end() && !it->second.empty()) {
    block = it->second.back();
    it->second.pop_back();
    g_freed.erase(uintptr_t(block));
  } else {
    if ((g_bump_pages + pages + 1) * g_page > kArenaBytes) throw std::bad_alloc();
    block = g_arena + g_bump_pages * g_page;
    g_bump_pages += pages + 1;
  }
  if (mprotect(block, pages * g_page, PROT_READ | PROT_WRITE) != 0) throw std::bad_alloc();
  char* start = block + pages * g_page - b16;
  const size_t before = std::min(kCanaryBefore, size_t(start - block));
  std::memset(start - before, kCanary, before);
  std::memset(start, 0xff, bytes);  // uninitialised device memory reads as NaN
  std::memset(start + bytes, kCanary, b16 - bytes);
  g_live[uintptr_t(start)] = Alloc{block, pages, bytes, start};
  return start;
}

void device_free(void* p) {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  auto it = g_live.find(uintptr_t(p));
  if (it == g_live.end()) throw std::invalid_argument("emulated cudaFree of " + hex(p) + ": not a device allocation");
  const Alloc al = it->second;
  g_live.erase(it);
  madvise(al.block, al.pages * g_page, MADV_DONTNEED);
  mprotect(al.block, al.pages * g_page, PROT_NONE);
  g_freed[uintptr_t(al.block)] = al;
  g_pool[al.pages].push_back(al.block);
}

bool device_range(const void* p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  const uintptr_t a = uintptr_t(p);
  auto it = g_live.upper_bound(a);
  if (it == g_live.begin()) return false;
  --it;
  const Alloc& al = it->second;
  return a >= uintptr_t(al.start) && a + bytes <= uintptr_t(al.start) + al.bytes && a <= uintptr_t(al.start) + al.bytes;
}

bool is_device_pointer(const void* p) { return device_range(p, 0); }

uint64_t arena_bytes() { return kArenaBytes; }

void set_error(int code, const std::string& detail) {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  if (g_pending == 0) g_pending = code;
  g_detail_code = code;
  g_detail = detail;
}

EmuStats stats() {
  std::lock_guard<std::recursive_mutex> lk(g_mu);
  g_stats.shared_accesses = g_fast.accesses;
  return g_stats;
}

}  // namespace emu
}  // namespace m2kd

// ------------------------------------------------------------------ host API
using m2kd::emu::g_detail;
using m2kd::emu::g_detail_code;
using m2kd::emu::g_pending;

cudaError_t cudaGetLastError() {
  std::lock_guard<std::recursive_mutex> lk(m2kd::emu::g_mu);
  const int e = g_pending;
  g_pending = 0;
  return cudaError_t(e);
}
cudaError_t cudaPeekAtLastError() { return cudaError_t(g_pending); }

const char* cudaGetErrorName(cudaError_t e) {
  switch (int(e)) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorEmuSharedRace: return "emuSharedMemoryRace";
    case cudaErrorEmuSharedUninitialized: return "emuSharedMemoryUninitialized";
    case cudaErrorEmuBarrierDivergence: return "emuBarrierDivergence";
    case cudaErrorEmuShuffleInactiveLane: return "emuShuffleInactiveLane";
    case cudaErrorEmuSharedOutOfBounds: return "emuSharedMemoryOutOfBounds";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  if (int(e) == g_detail_code && !g_detail.empty()) return g_detail.c_str();
  return e == cudaSuccess ? "no error" : "emulated device error";
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaGetLastError(); }
cudaError_t cudaDeviceSynchronize() { return cudaGetLastError(); }

namespace {
cudaError_t bad_copy(const char* what, const void* p, size_t bytes) {
  m2kd::emu::set_error(cudaErrorInvalidValue, std::string(what) + ": " + std::to_string(bytes) + " bytes at " +
                                                  m2kd::emu::hex(p) + " are not inside one device allocation (" +
                                                  m2kd::emu::describe_address(p) + ")");
  return cudaErrorInvalidValue;
}
}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  using m2kd::emu::device_range;
  using m2kd::emu::is_device_pointer;
  if (bytes == 0) return cudaSuccess;
  const bool dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dd && !device_range(dst, bytes)) return bad_copy("cudaMemcpy destination", dst, bytes);
  if (sd && !device_range(src, bytes)) return bad_copy("cudaMemcpy source", src, bytes);
  if (!dd && is_device_pointer(dst)) return bad_copy("cudaMemcpy host destination is device memory;", dst, bytes);
  if (!sd && is_device_pointer(src)) return bad_copy("cudaMemcpy host source is device memory;", src, bytes);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (!m2kd::emu::device_range(p, bytes)) return bad_copy("cudaMemset", p, bytes);
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }

cudaError_t cudaMalloc(void** p, size_t bytes) {
  try {
    *p = m2kd::emu::device_alloc(bytes);
    return cudaSuccess;
  } catch (const std::bad_alloc&) {
    *p = nullptr;
    m2kd::emu::set_error(cudaErrorMemoryAllocation, "emulated cudaMalloc of " + std::to_string(bytes) + " bytes");
    return cudaErrorMemoryAllocation;
  }
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  try {
    m2kd::emu::device_free(p);
    return cudaSuccess;
  } catch (const std::exception& e) {
    m2kd::emu::set_error(cudaErrorInvalidDevicePointer, e.what());
    return cudaErrorInvalidDevicePointer;
  }
}

struct CUstream_st {
  int id;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
  bool recorded;
};
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st{1};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st{std::chrono::steady_clock::now(), false};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return cudaErrorInvalidValue;
  e->t = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return e ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned) { return e ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a || !b || !a->recorded || !b->recorded) return cudaErrorInvalidValue;
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}

#endif  // M2KD_CUDA_EMU
