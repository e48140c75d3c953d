// Binding of the CUDA fused masked convolution (the teacher bank on the device):
//   masked_conv_forward_cuda(w, mask(u8), x, steps(Int32Array), scale, shift, residual|-1, y,
//                            k, n, c, h, w, o, kh, kw, stride, pad, relu, shared)
// The argument order is the CPU binding's (native/ops_masked_conv.cc, masked_conv_forward) with its
// host-built plan replaced by the weight and its step mask, which live on the device: the GPU
// kernel applies the mask while loading weight tiles, it needs no plan. Every buffer must be on
// the device; in a build without CUDA the op exists and says so.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

M2KD_OP(masked_conv_forward_cuda) {
  Args a(info, "masked_conv_forward_cuda", Devices::any);
#ifndef M2KD_WITH_CUDA
  a.fail("this addon was built without CUDA (npm run build:cuda); the CPU kernel is masked_conv_forward");
#else
  Conv2dShape s{};
  const int64_t k = a.i64(8, "k");
  s.n = a.i64(9, "n"); s.c = a.i64(10, "c"); s.h = a.i64(11, "h"); s.w = a.i64(12, "w");
  s.o = a.i64(13, "o"); s.kh = a.i64(14, "kh"); s.kw = a.i64(15, "kw");
  s.stride = a.i64(16, "stride"); s.pad = a.i64(17, "pad");
  const bool relu = a.flag(18, "relu");
  const bool shared = a.flag(19, "shared");
  a.set_shapes("x" + (shared ? dims({s.n, s.c, s.h, s.w}) : dims({k, s.n, s.c, s.h, s.w})) + " w" +
               dims({s.o, s.c, s.kh, s.kw}) + " K=" + std::to_string(k) + " stride " + std::to_string(s.stride) +
               " pad " + std::to_string(s.pad));
  a.require(k > 0 && s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.o > 0 && s.kh > 0 && s.kw > 0,
            "all dimensions must be positive");
  a.require(s.stride > 0 && s.pad >= 0, "stride must be > 0 and pad >= 0");
  a.require(s.h + 2 * s.pad >= s.kh && s.w + 2 * s.pad >= s.kw, "kernel larger than the padded input");
  s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
  s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
  if (info.Length() < 4 || !info[3].IsTypedArray() ||
      info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    a.fail("argument 'steps' must be an Int32Array");
  Napi::Int32Array st = info[3].As<Napi::Int32Array>();
  a.require(int64_t(st.ElementLength()) == k,
            "steps has " + std::to_string(st.ElementLength()) + " entries, expected K=" + std::to_string(k));
  const int32_t* steps = st.Data();
  for (int64_t i = 0; i < k; ++i)
    a.require(steps[i] >= 0 && steps[i] <= 255,
              "steps[" + std::to_string(i) + "] = " + std::to_string(steps[i]) + " is outside [0, 255]");
  const int64_t wn = s.o * s.c * s.kh * s.kw;
  const float* w = a.f32(0, "w", wn);
  const uint8_t* mask = a.buf<uint8_t>(1, "mask", DType::u8, wn);
  const float* x = a.f32(2, "x", (shared ? 1 : k) * s.n * s.c * s.h * s.w);
  const float* scale = a.f32(4, "scale", k * s.o);
  const float* shift = a.f32(5, "shift", k * s.o);
  const int64_t ycount = k * s.n * s.o * s.oh * s.ow;
  const float* res = a.f32_opt(6, "residual", ycount);
  float* y = a.f32(7, "y", ycount);
  if (!a.on_cuda()) a.fail("every buffer must be on cuda (the CPU kernel is masked_conv_forward, with a plan)");
  cuda::masked_conv2d_forward(gpu(), k, s, x, shared, w, mask, steps, scale, shift, res, relu, y);
  return info.Env().Undefined();
#endif
}

}  // namespace
}  // namespace native
}  // namespace m2kd
