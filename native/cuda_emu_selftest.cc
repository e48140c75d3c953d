// Bindings of the emulated device only (npm run build:cuda-emu):
//   cuda_emu_selftest(name) -> Float32Array: runs one deliberately broken kernel (or its
//     corrected twin) of kernels/cuda/emu/selftest/broken.cu; a caught bug throws, naming the
//     kernel, block, thread and address.
//   cuda_emu_stats() -> { launches, blocks, threads, barriers, shuffles, sharedAccesses }
// In other builds these ops do not exist.
#if defined(M2KD_WITH_CUDA) && defined(M2KD_CUDA_EMU)
#include <string>
#include <vector>

#include "../kernels/cuda/emu/emu.h"
#include "addon.h"

namespace m2kd {
namespace cuda {
std::vector<float> emu_selftest(const std::string& name);
}
namespace native {
namespace {

M2KD_OP(cuda_emu_selftest) {
  if (info.Length() < 1 || !info[0].IsString()) throw OpError("cuda_emu_selftest(name): name must be a string");
  const std::vector<float> r = cuda::emu_selftest(info[0].As<Napi::String>().Utf8Value());
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), r.size());
  for (size_t i = 0; i < r.size(); ++i) out[i] = r[i];
  return out;
}

M2KD_OP(cuda_emu_stats) {
  const emu::EmuStats s = emu::stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("launches", double(s.launches));
  o.Set("blocks", double(s.blocks));
  o.Set("threads", double(s.threads));
  o.Set("barriers", double(s.barriers));
  o.Set("shuffles", double(s.shuffles));
  o.Set("sharedAccesses", double(s.shared_accesses));
  return o;
}

}  // namespace
}  // namespace native
}  // namespace m2kd
#endif
