// Bindings of the fused masked convolution (teacher bank): plan building, the forward, and the
// ops of the bank's blocked activation layout (option-A shortcut, max pool, global average pool).
// Checks every shape, dtype and buffer size, then calls the kernels on the CPU exec. The plan is
// an i32 buffer owned by the caller (engine: MaskedConvPlan), so its lifetime is the engine's.
// Tuning (MaskedConvParams) comes as optional trailing numbers; absent = the kernel's defaults.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

bool given(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && !info[i].IsUndefined(); }

// masked_conv_plan_ints(o, c, kh, kw, mask(u8)?, denseAbove?) -> number of int32 a plan needs
// (without a mask: an upper bound valid for any mask)
M2KD_OP(masked_conv_plan_ints) {
  Args a(info, "masked_conv_plan_ints");
  const int64_t o = a.i64(0, "o"), c = a.i64(1, "c"), kh = a.i64(2, "kh"), kw = a.i64(3, "kw");
  a.set_shapes("w" + dims({o, c, kh, kw}));
  a.require(o > 0 && c > 0 && kh > 0 && kw > 0, "all dimensions must be positive");
  a.require(c * kh * kw < (int64_t(1) << 30) / 2, "weight too large");
  MaskedConvParams p;
  if (given(info, 5)) p.dense_above = float(a.f64(5, "denseAbove"));
  const uint8_t* m = given(info, 4) ? a.buf<uint8_t>(4, "mask", DType::u8, o * c * kh * kw) : nullptr;
  const int64_t n = masked_conv_plan_ints(o, c, kh, kw, m, p);
  a.require(n < (int64_t(1) << 31), "plan too large");
  return Napi::Number::New(info.Env(), double(n));
}

// masked_conv_build_plan(w, mask(u8), plan(i32), o, c, kh, kw, denseAbove?)
M2KD_OP(masked_conv_build_plan) {
  Args a(info, "masked_conv_build_plan");
  const int64_t o = a.i64(3, "o"), c = a.i64(4, "c"), kh = a.i64(5, "kh"), kw = a.i64(6, "kw");
  a.set_shapes("w" + dims({o, c, kh, kw}));
  a.require(o > 0 && c > 0 && kh > 0 && kw > 0, "all dimensions must be positive");
  MaskedConvParams p;
  if (given(info, 7)) p.dense_above = float(a.f64(7, "denseAbove"));
  const int64_t n = o * c * kh * kw;
  const float* w = a.f32(0, "w", n);
  const uint8_t* m = a.buf<uint8_t>(1, "mask", DType::u8, n);
  int32_t* plan = a.buf<int32_t>(2, "plan", DType::i32, masked_conv_plan_ints(o, c, kh, kw, m, p));
  masked_conv_build_plan(o, c, kh, kw, w, m, plan, p);
  return info.Env().Undefined();
}

// masked_conv_forward(plan(i32), x, steps(Int32Array), scale, shift, residual|-1, y,
//                     k, n, c, h, w, o, kh, kw, stride, pad, relu, shared,
//                     inBlocked?, outBlocked?, outPad?, posTile?, inPad?)
// Blocked tensors (m2kd_kernels.h): x stored with padding inPad (default = pad; >= pad), y and
// residual with outPad.
M2KD_OP(masked_conv_forward) {
  Args a(info, "masked_conv_forward");
  MaskedConvShape s{};
  s.k = a.i64(7, "k"); s.n = a.i64(8, "n"); s.c = a.i64(9, "c"); s.h = a.i64(10, "h"); s.w = a.i64(11, "w");
  s.o = a.i64(12, "o"); s.kh = a.i64(13, "kh"); s.kw = a.i64(14, "kw");
  s.stride = a.i64(15, "stride"); s.pad = a.i64(16, "pad");
  const bool relu = a.flag(17, "relu");
  s.shared_input = a.flag(18, "shared");
  s.in_blocked = given(info, 19) && a.flag(19, "inBlocked");
  s.out_blocked = given(info, 20) && a.flag(20, "outBlocked");
  s.out_pad = given(info, 21) ? a.i64(21, "outPad") : 0;
  MaskedConvParams prm;
  if (given(info, 22)) prm.pos_tile = int(a.i64(22, "posTile"));
  s.in_pad = given(info, 23) ? a.i64(23, "inPad") : -1;
  a.set_shapes("x" + (s.shared_input ? dims({s.n, s.c, s.h, s.w}) : dims({s.k, s.n, s.c, s.h, s.w})) + " w" +
               dims({s.o, s.c, s.kh, s.kw}) + " K=" + std::to_string(s.k) + " stride " + std::to_string(s.stride) +
               " pad " + std::to_string(s.pad) + (s.in_blocked ? " x blocked" : "") +
               (s.out_blocked ? " y blocked" : ""));
  a.require(s.k > 0 && s.n > 0 && s.c > 0 && s.h > 0 && s.w > 0 && s.o > 0 && s.kh > 0 && s.kw > 0,
            "all dimensions must be positive");
  a.require(s.stride > 0 && s.pad >= 0, "stride must be > 0 and pad >= 0");
  a.require(s.out_pad >= 0 && (s.out_blocked || s.out_pad == 0), "outPad must be >= 0 (and 0 unless y is blocked)");
  a.require(prm.pos_tile >= 0, "posTile must be >= 0");
  a.require(s.in_pad < 0 || (s.in_blocked && s.in_pad >= s.pad), "inPad must be >= pad, and only for a blocked x");
  const int64_t ipad = s.in_blocked && s.in_pad >= 0 ? s.in_pad : s.pad;
  a.require(s.h + 2 * s.pad >= s.kh && s.w + 2 * s.pad >= s.kw, "kernel larger than the padded input");
  s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
  s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
  const Isa isa = cpu().isa();
  const int64_t V = masked_conv_lanes(isa);
  // the kernel's per-block tap offsets are int32
  a.require((s.h + 2 * ipad) * (s.w + 2 * ipad) * s.c * V < (int64_t(1) << 31),
            "input planes too large for the masked convolution");
  const int32_t* plan = a.buf<int32_t>(0, "plan", DType::i32, 8);
  a.require(plan[0] == 0x4D4B4332 && plan[1] == s.o && plan[2] == s.c && plan[3] == s.kh && plan[4] == s.kw,
            "plan was not built for a weight of this shape");
  plan = a.buf<int32_t>(0, "plan", DType::i32, plan[7]);
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
  const int64_t kin = s.shared_input ? 1 : s.k;
  const int64_t xcount = s.in_blocked ? masked_blocked_floats(isa, kin, s.n, s.c, s.h, s.w, ipad)
                                      : kin * s.n * s.c * s.h * s.w;
  const float* x = a.f32(1, "x", xcount);
  const float* scale = a.f32(3, "scale", s.k * s.o);
  const float* shift = a.f32(4, "shift", s.k * s.o);
  const int64_t ycount = s.out_blocked ? masked_blocked_floats(isa, s.k, s.n, s.o, s.oh, s.ow, s.out_pad)
                                       : s.k * s.n * s.o * s.oh * s.ow;
  const float* res = a.f32_opt(5, "residual", ycount);
  float* y = a.f32(6, "y", ycount);
  masked_conv_forward(cpu(), s, plan, steps, x, scale, shift, res, relu, y, prm);
  return info.Env().Undefined();
}

// masked_conv_lanes() -> images per vector of the blocked layout at the current ISA
M2KD_OP(masked_conv_lanes) {
  Args a(info, "masked_conv_lanes");
  return Napi::Number::New(info.Env(), double(masked_conv_lanes(cpu().isa())));
}

// masked_blocked_floats(k, n, c, h, w, pad) -> floats of a blocked tensor at the current ISA
M2KD_OP(masked_blocked_floats) {
  Args a(info, "masked_blocked_floats");
  const int64_t k = a.i64(0, "k"), n = a.i64(1, "n"), c = a.i64(2, "c"), h = a.i64(3, "h"), w = a.i64(4, "w"),
                pad = a.i64(5, "pad");
  a.require(k > 0 && n > 0 && c > 0 && h > 0 && w > 0 && pad >= 0, "dimensions must be positive, pad >= 0");
  return Napi::Number::New(info.Env(), double(masked_blocked_floats(cpu().isa(), k, n, c, h, w, pad)));
}

// masked_blocked_shortcut_a(x, y, k, n, c, h, w, inPad, stride, before, after, outPad)
M2KD_OP(masked_blocked_shortcut_a) {
  Args a(info, "masked_blocked_shortcut_a");
  const int64_t k = a.i64(2, "k"), n = a.i64(3, "n"), c = a.i64(4, "c"), h = a.i64(5, "h"), w = a.i64(6, "w");
  const int64_t ip = a.i64(7, "inPad"), stride = a.i64(8, "stride"), before = a.i64(9, "before"),
                after = a.i64(10, "after"), op = a.i64(11, "outPad");
  a.set_shapes("x blocked" + dims({k, n, c, h, w}));
  a.require(k > 0 && n > 0 && c > 0 && h > 0 && w > 0 && stride > 0 && ip >= 0 && op >= 0 && before >= 0 &&
                after >= 0,
            "dimensions and stride must be positive, paddings >= 0");
  const Isa isa = cpu().isa();
  const float* x = a.f32(0, "x", masked_blocked_floats(isa, k, n, c, h, w, ip));
  float* y = a.f32(1, "y",
                   masked_blocked_floats(isa, k, n, c + before + after, (h + stride - 1) / stride,
                                         (w + stride - 1) / stride, op));
  masked_blocked_shortcut_a(cpu(), k, n, c, h, w, ip, stride, before, after, op, x, y);
  return info.Env().Undefined();
}

// masked_blocked_maxpool(x, y, k, n, c, h, w, inPad, kernel, stride, pad, outPad)
M2KD_OP(masked_blocked_maxpool) {
  Args a(info, "masked_blocked_maxpool");
  const int64_t k = a.i64(2, "k"), n = a.i64(3, "n"), c = a.i64(4, "c"), h = a.i64(5, "h"), w = a.i64(6, "w");
  const int64_t ip = a.i64(7, "inPad"), kernel = a.i64(8, "kernel"), stride = a.i64(9, "stride"), pad = a.i64(10, "pad"),
                op = a.i64(11, "outPad");
  a.set_shapes("x blocked" + dims({k, n, c, h, w}) + " kernel " + std::to_string(kernel) + " stride " +
               std::to_string(stride) + " pad " + std::to_string(pad));
  a.require(k > 0 && n > 0 && c > 0 && h > 0 && w > 0 && kernel > 0 && stride > 0 && ip >= 0 && op >= 0 && pad >= 0,
            "dimensions, kernel and stride must be positive, paddings >= 0");
  a.require(pad < kernel, "pad must be smaller than the kernel");
  a.require(h + 2 * pad >= kernel && w + 2 * pad >= kernel, "kernel larger than the padded input");
  const int64_t ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
  const Isa isa = cpu().isa();
  const float* x = a.f32(0, "x", masked_blocked_floats(isa, k, n, c, h, w, ip));
  float* y = a.f32(1, "y", masked_blocked_floats(isa, k, n, c, ho, wo, op));
  masked_blocked_maxpool(cpu(), k, n, c, h, w, ip, kernel, stride, pad, op, x, y);
  return info.Env().Undefined();
}

// masked_blocked_avgpool(x, y, k, n, c, h, w, pad): y [k*n, c]
M2KD_OP(masked_blocked_avgpool) {
  Args a(info, "masked_blocked_avgpool");
  const int64_t k = a.i64(2, "k"), n = a.i64(3, "n"), c = a.i64(4, "c"), h = a.i64(5, "h"), w = a.i64(6, "w"),
                pad = a.i64(7, "pad");
  a.set_shapes("x blocked" + dims({k, n, c, h, w}));
  a.require(k > 0 && n > 0 && c > 0 && h > 0 && w > 0 && pad >= 0, "dimensions must be positive, pad >= 0");
  const float* x = a.f32(0, "x", masked_blocked_floats(cpu().isa(), k, n, c, h, w, pad));
  float* y = a.f32(1, "y", k * n * c);
  masked_blocked_avgpool(cpu(), k, n, c, h, w, pad, x, y);
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
