// Elementwise public entry points: chunked parallel split + ISA dispatch.
// Math in elementwise_impl.inc.
#include "parallel_blocks.h"

#define M2KD_EW_DECL(ns)                                                                       \
  namespace m2kd { namespace cpu { namespace ns {                                              \
  void ew_relu_forward(int64_t n, const float* x, float* y);                                   \
  void ew_relu_backward(int64_t n, const float* y, const float* dy, float* dx);                \
  void ew_add_relu(int64_t n, const float* a, const float* b, float* y);                       \
  void ew_relu_backward2(int64_t n, const float* y, const float* dy, float* da, float* db, bool oa, bool ob); \
  void ew_axpby(int64_t n, float a, const float* x, float b, const float* z, float* y);        \
  void ew_mul(int64_t n, const float* a, const float* b, float* y);                            \
  void ew_affine(int64_t n, const float* x, float a, float b, float* y);                       \
  void ew_fill(int64_t n, float value, float* y);                                              \
  void ew_sigmoid_forward(int64_t n, const float* x, float* y);                                \
  void ew_sigmoid_backward(int64_t n, const float* y, const float* dy, float* dx);             \
  void ew_add_scalar(int64_t n, float g, float* dx);                                           \
  double ew_sum(int64_t n, const float* x);                                                    \
  } } }
M2KD_EW_DECL(scalar)
M2KD_EW_DECL(avx2)
M2KD_EW_DECL(avx512)

namespace m2kd {
namespace {

constexpr int64_t kParallelMin = 1 << 16;    // below this, run on the calling thread

template <class F>
void chunked(const Exec& ex, int64_t count, F&& f) {
  cpu::for_blocks(ex, count, kParallelMin, f);
}

}  // namespace

void relu_forward(const Exec& ex, int64_t count, const float* x, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_relu_forward(k, x + i, y + i)); });
}
void relu_backward(const Exec& ex, int64_t count, const float* y, const float* dy, float* dx) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_relu_backward(k, y + i, dy + i, dx + i)); });
}
void add_relu_forward(const Exec& ex, int64_t count, const float* a, const float* b, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_add_relu(k, a + i, b + i, y + i)); });
}
void add_relu_backward(const Exec& ex, int64_t count, const float* y, const float* dy, float* da, float* db,
                       bool overwrite_a, bool overwrite_b) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) {
    M2KD_ISA_DISPATCH(isa, ew_relu_backward2(k, y + i, dy + i, da ? da + i : nullptr, db ? db + i : nullptr, overwrite_a, overwrite_b));
  });
}
void axpby(const Exec& ex, int64_t count, float a, const float* x, float b, const float* z, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_axpby(k, a, x + i, b, z + i, y + i)); });
}
void mul_forward(const Exec& ex, int64_t count, const float* a, const float* b, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_mul(k, a + i, b + i, y + i)); });
}
void affine_scalar(const Exec& ex, int64_t count, const float* x, float a, float b, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_affine(k, x + i, a, b, y + i)); });
}
void fill(const Exec& ex, int64_t count, float value, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_fill(k, value, y + i)); });
}
void sigmoid_forward(const Exec& ex, int64_t count, const float* x, float* y) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_sigmoid_forward(k, x + i, y + i)); });
}
void sigmoid_backward(const Exec& ex, int64_t count, const float* y, const float* dy, float* dx) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_sigmoid_backward(k, y + i, dy + i, dx + i)); });
}
void add_scalar_inplace(const Exec& ex, int64_t count, float g, float* dx) {
  const Isa isa = ex.isa();
  chunked(ex, count, [&](int64_t i, int64_t k) { M2KD_ISA_DISPATCH(isa, ew_add_scalar(k, g, dx + i)); });
}

double sum_all(const Exec& ex, int64_t count, const float* x) {
  const Isa isa = ex.isa();
  return cpu::sum_blocks(ex, count, kParallelMin, [&](int64_t i, int64_t k) -> double {
    M2KD_ISA_DISPATCH(isa, ew_sum(k, x + i));
  });
}

}  // namespace m2kd
