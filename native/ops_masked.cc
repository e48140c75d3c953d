// Bindings of the fused masked convolution (teacher bank): plan building and the forward.
// Checks every shape, dtype and buffer size, then calls the kernels on the CPU exec. The plan is
// an i32 buffer owned by the caller (engine: MaskedConvPlan), so its lifetime is the engine's.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// masked_conv_plan_ints(o, c, kh, kw) -> number of int32 a plan needs
M2KD_OP(masked_conv_plan_ints) {
  Args a(info, "masked_conv_plan_ints");
  const int64_t o = a.i64(0, "o"), c = a.i64(1, "c"), kh = a.i64(2, "kh"), kw = a.i64(3, "kw");
  a.set_shapes("w" + dims({o, c, kh, kw}));
  a.require(o > 0 && c > 0 && kh > 0 && kw > 0, "all dimensions must be positive");
  a.require(c * kh * kw < (int64_t(1) << 30) / 2, "weight too large");
  return Napi::Number::New(info.Env(), double(masked_conv_plan_ints(o, c, kh, kw)));
}

// masked_conv_build_plan(w, mask(u8), plan(i32), o, c, kh, kw)
M2KD_OP(masked_conv_build_plan) {
  Args a(info, "masked_conv_build_plan");
  const int64_t o = a.i64(3, "o"), c = a.i64(4, "c"), kh = a.i64(5, "kh"), kw = a.i64(6, "kw");
  a.set_shapes("w" + dims({o, c, kh, kw}));
  a.require(o > 0 && c > 0 && kh > 0 && kw > 0, "all dimensions must be positive");
  const int64_t n = o * c * kh * kw;
  const float* w = a.f32(0, "w", n);
  const uint8_t* m = a.buf<uint8_t>(1, "mask", DType::u8, n);
  int32_t* plan = a.buf<int32_t>(2, "plan", DType::i32, masked_conv_plan_ints(o, c, kh, kw));
  masked_conv_build_plan(o, c, kh, kw, w, m, plan);
  return info.Env().Undefined();
}

// masked_conv_forward(plan(i32), x, steps(Int32Array), scale, shift, residual|-1, y,
//                     k, n, c, h, w, o, kh, kw, stride, pad, relu, shared)
M2KD_OP(masked_conv_forward) {
  Args a(info, "masked_conv_forward");
  MaskedConvShape s{};
  s.k = a.i64(7, "k"); s.n = a.i64(8, "n"); s.c = a.i64(9, "c"); s.h = a.i64(10, "h"); s.w = a.i64(11, "w");
  s.o = a.i64(12, "o"); s.kh = a.i64(13, "kh"); s.kw = a.i64(14, "kw");
  s.stride = a.i64(15, "stride"); s.pad = a.i64(16, "pad");
  const bool relu = a.flag(17, "relu");
  s.shared_input = a.flag(18, "shared");
  a.set_shapes("x" + (s.shared_input ? dims({s.n, s.c, s.h, s.w}) : dims({s.k, s.n, s.c, s.h, s.w})) + " w" +
               dims({s.o, s.c, s.kh, s.kw}) + " K=" + std::to_string(s.k) + " stride " + std::to_string(s.stride) +
               " pad " + std::to_string(s.pad));
  a.require(s.k > 0 && s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.o > 0 && s.kh > 0 && s.kw > 0,
            "all dimensions must be positive");
  a.require(s.stride > 0 && s.pad >= 0, "stride must be > 0 and pad >= 0");
  a.require(s.h + 2 * s.pad >= s.kh && s.w + 2 * s.pad >= s.kw, "kernel larger than the padded input");
  s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
  s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
  // the kernel's per-unit buffer offsets are int32
  a.require(2 * s.c * s.kh * s.kw * (256 + (s.oh + s.kh) * s.ow) < (int64_t(1) << 31),
            "input planes too large for the masked convolution");
  const int32_t* plan = a.buf<int32_t>(0, "plan", DType::i32, masked_conv_plan_ints(s.o, s.c, s.kh, s.kw));
  a.require(plan[0] == 0x4D4B4350 && plan[1] == s.o && plan[2] == s.c && plan[3] == s.kh && plan[4] == s.kw,
            "plan was not built for a weight of this shape");
  if (info.Length() < 3 || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    a.fail("argument 'steps' must be an Int32Array");
  Napi::Int32Array st = info[2].As<Napi::Int32Array>();
  a.require(int64_t(st.ElementLength()) == s.k,
            "steps has " + std::to_string(st.ElementLength()) + " entries, expected K=" + std::to_string(s.k));
  const int32_t* steps = st.Data();
  for (int64_t k = 0; k < s.k; ++k)
    a.require(steps[k] >= 0 && steps[k] <= kMaskedConvMaxStep,
              "steps[" + std::to_string(k) + "] = " + std::to_string(steps[k]) + " is outside [0, 255]");
  const float* x = a.f32(1, "x", (s.shared_input ? 1 : s.k) * s.n * s.c * s.h * s.w);
  const float* scale = a.f32(3, "scale", s.k * s.o);
  const float* shift = a.f32(4, "shift", s.k * s.o);
  const int64_t ycount = s.k * s.n * s.o * s.oh * s.ow;
  const float* res = a.f32_opt(5, "residual", ycount);
  float* y = a.f32(6, "y", ycount);
  masked_conv_forward(cpu(), s, plan, steps, x, scale, shift, res, relu, y);
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
