// Elementwise kernels (relu, add+relu, axpby, mul, scalar affine, fill, sigmoid, scalar add)
// and the full sum. Policy: one grid-stride loop per op over contiguous f32, 64-bit indices;
// backward kernels accumulate unless an overwrite flag says the buffer is fresh. sum_all
// accumulates in double per thread, then per block (shuffle tree), then over blocks in a fixed
// order: deterministic for a given count.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {


__global__ void relu_fwd_k(int64_t n, const float* __restrict__ x, float* __restrict__ y) {
  M2KD_GRID_LOOP(i, n) { float v = x[i]; y[i] = v > 0.f ? v : 0.f; }
}
__global__ void relu_bwd_k(int64_t n, const float* __restrict__ y, const float* __restrict__ dy, float* dx) {
  M2KD_GRID_LOOP(i, n) if (y[i] > 0.f) dx[i] += dy[i];
}
__global__ void add_relu_fwd_k(int64_t n, const float* a, const float* b, float* y) {
  M2KD_GRID_LOOP(i, n) { float v = a[i] + b[i]; y[i] = v > 0.f ? v : 0.f; }
}
__global__ void add_relu_bwd_k(int64_t n, const float* __restrict__ y, const float* __restrict__ dy, float* da,
                               float* db, bool oa, bool ob) {
  M2KD_GRID_LOOP(i, n) {
    const float g = y[i] > 0.f ? dy[i] : 0.f;
    if (da) da[i] = oa ? g : da[i] + g;
    if (db) db[i] = ob ? g : db[i] + g;
  }
}
// x, z and y may alias: each element is read before it is written by the same thread
__global__ void axpby_k(int64_t n, float a, const float* x, float b, const float* z, float* y) {
  M2KD_GRID_LOOP(i, n) y[i] = a * x[i] + b * z[i];
}
__global__ void mul_k(int64_t n, const float* a, const float* b, float* y) {
  M2KD_GRID_LOOP(i, n) y[i] = a[i] * b[i];
}
__global__ void affine_k(int64_t n, const float* x, float a, float b, float* y) {
  M2KD_GRID_LOOP(i, n) y[i] = a * x[i] + b;
}
__global__ void fill_k(int64_t n, float v, float* __restrict__ y) {
  M2KD_GRID_LOOP(i, n) y[i] = v;
}
__global__ void sigmoid_fwd_k(int64_t n, const float* __restrict__ x, float* __restrict__ y) {
  M2KD_GRID_LOOP(i, n) {
    const float v = x[i];
    // stable for large |v|: exp of a non-positive number only
    if (v >= 0.f) y[i] = 1.f / (1.f + expf(-v));
    else { const float e = expf(v); y[i] = e / (1.f + e); }
  }
}
__global__ void sigmoid_bwd_k(int64_t n, const float* __restrict__ y, const float* __restrict__ dy, float* dx) {
  M2KD_GRID_LOOP(i, n) { const float s = y[i]; dx[i] += dy[i] * s * (1.f - s); }
}
__global__ void add_scalar_k(int64_t n, float g, float* dx) {
  M2KD_GRID_LOOP(i, n) dx[i] += g;
}
__global__ void sum_partial_k(int64_t n, const float* __restrict__ x, double* __restrict__ parts) {
  M2KD_SHARED(double, sh, [32]);
  double s = 0.0;
  M2KD_GRID_LOOP(i, n) s += double(x[i]);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

}  // namespace

void relu_forward(const CudaExec& ex, int64_t n, const float* x, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), relu_fwd_k)(n, x, y);
  M2KD_LAUNCHED(ex, "relu_forward");
}
void relu_backward(const CudaExec& ex, int64_t n, const float* y, const float* dy, float* dx) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), relu_bwd_k)(n, y, dy, dx);
  M2KD_LAUNCHED(ex, "relu_backward");
}
void add_relu_forward(const CudaExec& ex, int64_t n, const float* a, const float* b, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), add_relu_fwd_k)(n, a, b, y);
  M2KD_LAUNCHED(ex, "add_relu_forward");
}
void add_relu_backward(const CudaExec& ex, int64_t n, const float* y, const float* dy, float* da, float* db,
                       bool oa, bool ob) {
  if (n <= 0 || (!da && !db)) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), add_relu_bwd_k)(n, y, dy, da, db, oa, ob);
  M2KD_LAUNCHED(ex, "add_relu_backward");
}
void axpby(const CudaExec& ex, int64_t n, float a, const float* x, float b, const float* z, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), axpby_k)(n, a, x, b, z, y);
  M2KD_LAUNCHED(ex, "axpby");
}
void mul_forward(const CudaExec& ex, int64_t n, const float* a, const float* b, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), mul_k)(n, a, b, y);
  M2KD_LAUNCHED(ex, "mul_forward");
}
void affine_scalar(const CudaExec& ex, int64_t n, const float* x, float a, float b, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), affine_k)(n, x, a, b, y);
  M2KD_LAUNCHED(ex, "affine_scalar");
}
void fill(const CudaExec& ex, int64_t n, float value, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), fill_k)(n, value, y);
  M2KD_LAUNCHED(ex, "fill");
}
void sigmoid_forward(const CudaExec& ex, int64_t n, const float* x, float* y) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), sigmoid_fwd_k)(n, x, y);
  M2KD_LAUNCHED(ex, "sigmoid_forward");
}
void sigmoid_backward(const CudaExec& ex, int64_t n, const float* y, const float* dy, float* dx) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), sigmoid_bwd_k)(n, y, dy, dx);
  M2KD_LAUNCHED(ex, "sigmoid_backward");
}
void add_scalar_inplace(const CudaExec& ex, int64_t n, float g, float* dx) {
  if (n <= 0) return;
  M2KD_LAUNCH(grid_for(n), kThreads, 0, ex.stream(), add_scalar_k)(n, g, dx);
  M2KD_LAUNCHED(ex, "add_scalar_inplace");
}
double sum_all(const CudaExec& ex, int64_t n, const float* x) {
  if (n <= 0) return 0.0;
  unsigned blocks = grid_for(n);
  if (blocks > 1024) blocks = 1024;
  double* parts = static_cast<double*>(ex.scratch(0, sizeof(double) * (blocks + 1)));
  M2KD_LAUNCH(blocks, kThreads, 0, ex.stream(), sum_partial_k)(n, x, parts);
  M2KD_LAUNCHED(ex, "sum_all");
  reduce_doubles(ex, parts, int(blocks), parts + blocks);
  return read_double(ex, parts + blocks);
}

}  // namespace cuda
}  // namespace m2kd
