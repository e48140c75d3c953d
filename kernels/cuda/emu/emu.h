// The emulated device's memory and error interface, between the kernel-side emulator
// (kernels/cuda/emu/emu.cc) and the addon's emulated runtime (native/cuda_emu_runtime.cc).
// Policy: plain C++ (no N-API). Device memory lives in one reserved address range (the arena):
// every allocation ends on a page boundary followed by an inaccessible guard page, so an access
// past its end faults and is reported naming the kernel, block, thread and address; freed blocks
// are made inaccessible (use after free faults too). The few bytes between the requested size
// and the 16-byte aligned end, and 64 bytes before the start, hold a canary checked after
// every launch (out-of-bounds writes too small to reach a guard page).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace m2kd {
namespace emu {

// Device allocation (16-byte aligned start, guard page after). Throws std::bad_alloc when the
// arena is exhausted.
void* device_alloc(size_t bytes);
void device_free(void* p);
// true when [p, p+bytes) lies inside one live device allocation (bytes 0: p inside or at its end)
bool device_range(const void* p, size_t bytes);
bool is_device_pointer(const void* p);
uint64_t arena_bytes();

// Records an API error (returned by the next cudaGetLastError); `detail` is the full report.
void set_error(int code, const std::string& detail);

// Statistics of the emulator since load (kernels launched, blocks, threads, barriers).
struct EmuStats {
  uint64_t launches, blocks, threads, barriers, shuffles, shared_accesses;
};
EmuStats stats();

}  // namespace emu
}  // namespace m2kd
