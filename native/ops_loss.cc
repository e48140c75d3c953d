// Bindings: sigmoid BCE with logits (soft targets) and softmax cross-entropy.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// bce_logits_forward(x, t, count, denom) -> loss
M2KD_OP(bce_logits_forward) {
  Args a(info, "bce_logits_forward");
  int64_t n = a.i64(2, "count");
  double denom = a.f64(3, "denom");
  a.set_shapes("count " + std::to_string(n));
  a.require(n > 0, "count must be > 0");
  a.require(denom > 0, "denominator must be > 0");
  return Napi::Number::New(info.Env(), bce_logits_forward(cpu(), n, a.f32(0, "logits", n), a.f32(1, "targets", n), denom));
}

// bce_logits_backward(x, t, dx, count, scale)   dx += scale * (sigmoid(x) - t)
M2KD_OP(bce_logits_backward) {
  Args a(info, "bce_logits_backward");
  int64_t n = a.i64(3, "count");
  a.set_shapes("count " + std::to_string(n));
  a.require(n > 0, "count must be > 0");
  bce_logits_backward(cpu(), n, a.f32(0, "logits", n), a.f32(1, "targets", n), a.f64(4, "scale"), a.f32(2, "dx", n));
  return info.Env().Undefined();
}

const int32_t* labels_checked(Args& a, size_t i, int64_t n, int64_t m) {
  const int32_t* l = a.buf<int32_t>(i, "labels", DType::i32, n);
  for (int64_t r = 0; r < n; r++)
    if (l[r] < 0 || l[r] >= m)
      a.fail("label " + std::to_string(l[r]) + " at row " + std::to_string(r) + " is outside 0.." + std::to_string(m - 1));
  return l;
}

// softmax_ce_forward(x, labels(i32), p, n, m) -> mean loss
M2KD_OP(softmax_ce_forward) {
  Args a(info, "softmax_ce_forward");
  int64_t n = a.i64(3, "n"), m = a.i64(4, "m");
  a.set_shapes("logits" + dims({n, m}));
  a.require(n > 0 && m > 0, "dimensions must be positive");
  const int32_t* l = labels_checked(a, 1, n, m);
  return Napi::Number::New(info.Env(), softmax_ce_forward(cpu(), n, m, a.f32(0, "logits", n * m), l, a.f32(2, "p", n * m)));
}

// softmax_ce_backward(p, labels(i32), dx, n, m, scale)   dx += scale * (p - onehot)
M2KD_OP(softmax_ce_backward) {
  Args a(info, "softmax_ce_backward");
  int64_t n = a.i64(3, "n"), m = a.i64(4, "m");
  a.set_shapes("logits" + dims({n, m}));
  a.require(n > 0 && m > 0, "dimensions must be positive");
  const int32_t* l = labels_checked(a, 1, n, m);
  softmax_ce_backward(cpu(), n, m, a.f32(0, "p", n * m), l, a.f64(5, "scale"), a.f32(2, "dx", n * m));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
