// Memory-movement kernels: option-A shortcut (strided subsample + channel zero-padding) forward
// and backward, column copy of row-major matrices, per-sample horizontal flip.
// Policy: one thread per destination element, so no two threads write the same address and
// backward accumulation needs no atomics.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

#define M2KD_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// y [n, oc, oh, ow], oc = c + pb + pa; one thread per y element
__global__ void shortcut_fwd_k(int64_t total, int64_t c, int64_t h, int64_t w, int64_t stride, int64_t pb,
                               int64_t oc, int64_t oh, int64_t ow, const float* __restrict__ x,
                               float* __restrict__ y) {
  M2KD_GRID_LOOP(i, total) {
    const int64_t q = i % ow, r = (i / ow) % oh, ch = (i / (ow * oh)) % oc, s = i / (ow * oh * oc);
    const int64_t ic = ch - pb;
    y[i] = (ic >= 0 && ic < c) ? x[((s * c + ic) * h + r * stride) * w + q * stride] : 0.f;
  }
}
// one thread per dx element; only positions on the stride grid receive a gradient
__global__ void shortcut_bwd_k(int64_t total, int64_t c, int64_t h, int64_t w, int64_t stride, int64_t pb,
                               int64_t oc, int64_t oh, int64_t ow, const float* __restrict__ dy, float* dx) {
  M2KD_GRID_LOOP(i, total) {
    const int64_t xx = i % w, yy = (i / w) % h, ch = (i / (w * h)) % c, s = i / (w * h * c);
    if (xx % stride == 0 && yy % stride == 0)
      dx[i] += dy[((s * oc + ch + pb) * oh + yy / stride) * ow + xx / stride];
  }
}
__global__ void copy_columns_k(int64_t rows, int64_t cols, const float* src, int64_t sld, int64_t sc0,
                               float* dst, int64_t dld, int64_t dc0, bool acc) {
  M2KD_GRID_LOOP(i, rows * cols) {
    const int64_t r = i / cols, k = i % cols;
    const float v = src[r * sld + sc0 + k];
    float* d = dst + r * dld + dc0 + k;
    *d = acc ? *d + v : v;
  }
}
__global__ void hflip_k(int64_t total, int64_t chw, int64_t w, const uint8_t* __restrict__ flags,
                        const float* __restrict__ x, float* __restrict__ y) {
  M2KD_GRID_LOOP(i, total) {
    const int64_t s = i / chw, q = i % w;
    const bool f = flags == nullptr || flags[s] != 0;
    y[i] = f ? x[i - q + (w - 1 - q)] : x[i];
  }
}

}  // namespace

void shortcut_a_forward(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                        int64_t pb, int64_t pa, const float* x, float* y) {
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, oc = c + pb + pa;
  const int64_t total = n * oc * oh * ow;
  if (total <= 0) return;
  shortcut_fwd_k<<<grid_for(total), kThreads, 0, ex.stream()>>>(total, c, h, w, stride, pb, oc, oh, ow, x, y);
  M2KD_LAUNCHED(ex, "shortcut_a_forward");
}
void shortcut_a_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                         int64_t pb, int64_t pa, const float* dy, float* dx) {
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, oc = c + pb + pa;
  const int64_t total = n * c * h * w;
  if (total <= 0) return;
  shortcut_bwd_k<<<grid_for(total), kThreads, 0, ex.stream()>>>(total, c, h, w, stride, pb, oc, oh, ow, dy, dx);
  M2KD_LAUNCHED(ex, "shortcut_a_backward");
}
void copy_columns(const CudaExec& ex, int64_t rows, int64_t cols, const float* src, int64_t sld, int64_t sc0,
                  float* dst, int64_t dld, int64_t dc0, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  copy_columns_k<<<grid_for(rows * cols), kThreads, 0, ex.stream()>>>(rows, cols, src, sld, sc0, dst, dld, dc0,
                                                                      accumulate);
  M2KD_LAUNCHED(ex, "copy_columns");
}
void hflip(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, const uint8_t* flags, const float* x,
           float* y) {
  const int64_t total = n * c * h * w;
  if (total <= 0) return;
  hflip_k<<<grid_for(total), kThreads, 0, ex.stream()>>>(total, c * h * w, w, flags, x, y);
  M2KD_LAUNCHED(ex, "hflip");
}

}  // namespace cuda
}  // namespace m2kd
