// Bindings: the option-A shortcut (strided subsample + zero channel padding), forward and backward.
// CPU or CUDA, by the device of the buffers.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

struct ShortcutDims { int64_t n, c, h, w, stride, pb, pa, oh, ow; };
ShortcutDims shortcut_dims(Args& a, size_t k) {
  ShortcutDims d{};
  d.n = a.i64(k, "n"); d.c = a.i64(k + 1, "c"); d.h = a.i64(k + 2, "h"); d.w = a.i64(k + 3, "w");
  d.stride = a.i64(k + 4, "stride"); d.pb = a.i64(k + 5, "pad_before"); d.pa = a.i64(k + 6, "pad_after");
  a.set_shapes("x" + dims({d.n, d.c, d.h, d.w}) + " stride " + std::to_string(d.stride) + " channel pad " +
               std::to_string(d.pb) + "+" + std::to_string(d.pa));
  a.require(d.n > 0 && d.c > 0 && d.h > 0 && d.w > 0 && d.stride > 0 && d.pb >= 0 && d.pa >= 0,
            "dimensions must be positive and pads non-negative");
  d.oh = (d.h + d.stride - 1) / d.stride;
  d.ow = (d.w + d.stride - 1) / d.stride;
  return d;
}

// shortcut_a_forward(x, y, n,c,h,w, stride, pad_before, pad_after)
M2KD_OP(shortcut_a_forward) {
  Args a(info, "shortcut_a_forward", Devices::any);
  ShortcutDims d = shortcut_dims(a, 2);
  const float* x = a.f32(0, "x", d.n * d.c * d.h * d.w);
  float* y = a.f32(1, "y", d.n * (d.c + d.pb + d.pa) * d.oh * d.ow);
  M2KD_DISPATCH(a, shortcut_a_forward(cpu(), d.n, d.c, d.h, d.w, d.stride, d.pb, d.pa, x, y),
                cuda::shortcut_a_forward(gpu(), d.n, d.c, d.h, d.w, d.stride, d.pb, d.pa, x, y));
  return info.Env().Undefined();
}

// shortcut_a_backward(dy, dx, n,c,h,w, stride, pad_before, pad_after)   dx +=
M2KD_OP(shortcut_a_backward) {
  Args a(info, "shortcut_a_backward", Devices::any);
  ShortcutDims d = shortcut_dims(a, 2);
  const float* dy = a.f32(0, "dy", d.n * (d.c + d.pb + d.pa) * d.oh * d.ow);
  float* dx = a.f32(1, "dx", d.n * d.c * d.h * d.w);
  M2KD_DISPATCH(a, shortcut_a_backward(cpu(), d.n, d.c, d.h, d.w, d.stride, d.pb, d.pa, dy, dx),
                cuda::shortcut_a_backward(gpu(), d.n, d.c, d.h, d.w, d.stride, d.pb, d.pa, dy, dx));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
