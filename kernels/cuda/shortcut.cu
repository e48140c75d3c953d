// Option-A shortcut (strided subsample + channel zero-padding), forward and backward; the twin
// of kernels/cpu/shortcut*. Policy: one thread per destination element (grid-stride), so no two
// threads write the same address and backward accumulates (dx +=) without atomics.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

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

}  // namespace

void shortcut_a_forward(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                        int64_t pb, int64_t pa, const float* x, float* y) {
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, oc = c + pb + pa;
  const int64_t total = n * oc * oh * ow;
  if (total <= 0) return;
  M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), shortcut_fwd_k)(total, c, h, w, stride, pb, oc, oh, ow, x, y);
  M2KD_LAUNCHED(ex, "shortcut_a_forward");
}
void shortcut_a_backward(const CudaExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                         int64_t pb, int64_t pa, const float* dy, float* dx) {
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, oc = c + pb + pa;
  const int64_t total = n * c * h * w;
  if (total <= 0) return;
  M2KD_LAUNCH(grid_for(total), kThreads, 0, ex.stream(), shortcut_bwd_k)(total, c, h, w, stride, pb, oc, oh, ow, dy, dx);
  M2KD_LAUNCHED(ex, "shortcut_a_backward");
}

}  // namespace cuda
}  // namespace m2kd
