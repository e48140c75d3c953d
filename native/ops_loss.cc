// Bindings: sigmoid BCE with logits (soft targets) and softmax cross-entropy.
#include "addon.h"

namespace m2kd {
namespace native {
namespace {

// bce_logits_forward(x, t, count, denom) -> loss
M2KD_OP(bce_logits_forward) {
  Args a(info, "bce_logits_forward", Devices::any);
  int64_t n = a.i64(2, "count");
  double denom = a.f64(3, "denom");
  a.set_shapes("count " + std::to_string(n));
  a.require(n > 0, "count must be > 0");
  a.require(denom > 0, "denominator must be > 0");
  const float* x = a.f32(0, "logits", n);
  const float* t = a.f32(1, "targets", n);
  double l = 0.0;
  M2KD_DISPATCH(a, l = bce_logits_forward(cpu(), n, x, t, denom), l = cuda::bce_logits_forward(gpu(), n, x, t, denom));
  return Napi::Number::New(info.Env(), l);
}

// bce_logits_backward(x, t, dx, count, scale)   dx += scale * (sigmoid(x) - t)
M2KD_OP(bce_logits_backward) {
  Args a(info, "bce_logits_backward", Devices::any);
  int64_t n = a.i64(3, "count");
  a.set_shapes("count " + std::to_string(n));
  a.require(n > 0, "count must be > 0");
  const double sc = a.f64(4, "scale");
  const float* x = a.f32(0, "logits", n);
  const float* t = a.f32(1, "targets", n);
  float* dx = a.f32(2, "dx", n);
  M2KD_DISPATCH(a, bce_logits_backward(cpu(), n, x, t, sc, dx), cuda::bce_logits_backward(gpu(), n, x, t, sc, dx));
  return info.Env().Undefined();
}

// bce_logits_forward_out(x, t, y, count, denom): the loss written to y[0] (f32), where the inputs
// live: on a device nothing is read back (the CPU twin is the kernel above, its value stored).
M2KD_OP(bce_logits_forward_out) {
  Args a(info, "bce_logits_forward_out", Devices::any);
  int64_t n = a.i64(3, "count");
  double denom = a.f64(4, "denom");
  a.set_shapes("count " + std::to_string(n));
  a.require(n > 0, "count must be > 0");
  a.require(denom > 0, "denominator must be > 0");
  const float* x = a.f32(0, "logits", n);
  const float* t = a.f32(1, "targets", n);
  float* y = a.f32(2, "y", 1);
  M2KD_DISPATCH(a, y[0] = float(bce_logits_forward(cpu(), n, x, t, denom)),
                cuda::bce_logits_forward_to(gpu(), n, x, t, denom, y));
  return info.Env().Undefined();
}

// bce_logits_backward_dy(x, t, dy, dx, count, denom)   dx += (dy[0] / denom) * (sigmoid(x) - t),
// dy a one-element buffer beside x (on a device it is read there, not copied back)
M2KD_OP(bce_logits_backward_dy) {
  Args a(info, "bce_logits_backward_dy", Devices::any);
  int64_t n = a.i64(4, "count");
  double denom = a.f64(5, "denom");
  a.set_shapes("count " + std::to_string(n));
  a.require(n > 0, "count must be > 0");
  a.require(denom > 0, "denominator must be > 0");
  const float* x = a.f32(0, "logits", n);
  const float* t = a.f32(1, "targets", n);
  const float* dy = a.f32(2, "dy", 1);
  float* dx = a.f32(3, "dx", n);
  M2KD_DISPATCH(a, bce_logits_backward(cpu(), n, x, t, double(dy[0]) / denom, dx),
                cuda::bce_logits_backward_dy(gpu(), n, x, t, dy, denom, dx));
  return info.Env().Undefined();
}

// Validates every label on the host (device labels are copied back first: n ints).
// Call after reading the other buffers, so that a device mismatch is reported first.
const int32_t* labels_checked(Args& a, size_t i, int64_t n, int64_t m) {
  const int32_t* l = a.buf<int32_t>(i, "labels", DType::i32, n);
  const int32_t* h = l;
#ifdef M2KD_WITH_CUDA
  std::vector<int32_t> host;
  if (a.on_cuda()) {
    host.resize(size_t(n));
    cuda_copy(host.data(), l, sizeof(int32_t) * size_t(n), CopyKind::d2h);
    h = host.data();
  }
#endif
  for (int64_t r = 0; r < n; r++)
    if (h[r] < 0 || h[r] >= m)
      a.fail("label " + std::to_string(h[r]) + " at row " + std::to_string(r) + " is outside 0.." + std::to_string(m - 1));
  return l;
}

// softmax_ce_forward(x, labels(i32), p, n, m) -> mean loss
M2KD_OP(softmax_ce_forward) {
  Args a(info, "softmax_ce_forward", Devices::any);
  int64_t n = a.i64(3, "n"), m = a.i64(4, "m");
  a.set_shapes("logits" + dims({n, m}));
  a.require(n > 0 && m > 0, "dimensions must be positive");
  const float* x = a.f32(0, "logits", n * m);
  float* p = a.f32(2, "p", n * m);
  const int32_t* l = labels_checked(a, 1, n, m);
  double loss = 0.0;
  M2KD_DISPATCH(a, loss = softmax_ce_forward(cpu(), n, m, x, l, p), loss = cuda::softmax_ce_forward(gpu(), n, m, x, l, p));
  return Napi::Number::New(info.Env(), loss);
}

// softmax_ce_backward(p, labels(i32), dx, n, m, scale)   dx += scale * (p - onehot)
M2KD_OP(softmax_ce_backward) {
  Args a(info, "softmax_ce_backward", Devices::any);
  int64_t n = a.i64(3, "n"), m = a.i64(4, "m");
  a.set_shapes("logits" + dims({n, m}));
  a.require(n > 0 && m > 0, "dimensions must be positive");
  const double sc = a.f64(5, "scale");
  const float* p = a.f32(0, "p", n * m);
  float* dx = a.f32(2, "dx", n * m);
  const int32_t* l = labels_checked(a, 1, n, m);
  M2KD_DISPATCH(a, softmax_ce_backward(cpu(), n, m, p, l, sc, dx), cuda::softmax_ce_backward(gpu(), n, m, p, l, sc, dx));
  return info.Env().Undefined();
}

}  // namespace
}  // namespace native
}  // namespace m2kd
