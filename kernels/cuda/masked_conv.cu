// The fused masked convolution of the teacher bank: K models that share one weight tensor and
// a u8 step mask, with eval-mode BatchNorm folded into a per-model scale/shift, an optional
// residual and ReLU: one launch for all K (blockIdx.z = model).
//   model k: acc = sum over weights with 1 <= mask <= steps[k] (the others are skipped: a
//   masked-out weight loads as 0 into the tile, its value never enters the sum)
//   y[k,n,o,p] = act(scale[k,o] * acc + shift[k,o] + residual[k,n,o,p])
// Policy: the implicit-GEMM forward of conv2d.cu (same tile core, same activation gather),
// with the mask applied while the weight tile is loaded and the whole epilogue fused into the
// store. Inputs are [K,N,C,H,W], or one [N,C,H,W] shared by all K (the first layer).
// Matches kernels/cpu/masked_conv_impl.inc up to float rounding (summation order differs:
// the CPU sums taps in (step, tap) order, this kernel in tap order within 16-wide k-tiles).
#include "conv_index.cuh"

namespace m2kd {
namespace cuda {
namespace {

struct Steps {
  int32_t v[kMaskedConvModelsPerLaunch];
};

template <int KS>
struct MaskedConvP {
  int M, N, Kd;  // M = o, N = n*oh*ow, Kd = c*kh*kw
  ConvDims d;
  const float* x;
  int64_t x_model_stride;  // 0 when the input is shared
  const float* w;
  const uint8_t* mask;
  Steps steps;  // by value (kernel parameter space)
  const float* scale;
  const float* shift;
  const float* residual;
  bool relu;
  float* y;
  struct ARow {
    const float* wp;
    const uint8_t* mp;
    int step;
    bool ok;
  };
  using BCol = FwdCol;
  __device__ void k_range(int, int& k0, int& k1) const { k0 = 0; k1 = Kd; }
  __device__ ARow arow(int m, int z) const {
    const int64_t off = int64_t(m < M ? m : 0) * Kd;
    return {w + off, mask + off, steps.v[z], m < M};
  }
  __device__ BCol bcol(int n, int z) const { return fwd_col(d, x + int64_t(z) * x_model_stride, n, N); }
  __device__ float a(const ARow& r, int k) const {
    if (!r.ok) return 0.f;
    const int m = r.mp[k];
    return (m >= 1 && m <= r.step) ? r.wp[k] : 0.f;
  }
  __device__ float b(const BCol& c, int k) const { return fwd_b<KS>(d, c, k); }
  __device__ void store(int m, int n, float acc, int z) const {
    const int img = n / d.ohw, p = n - img * d.ohw;
    const int64_t idx = ((int64_t(z) * d.n + img) * d.o + m) * d.ohw + p;
    float v = scale[z * d.o + m] * acc + shift[z * d.o + m];
    if (residual) v += residual[idx];
    if (relu) v = v > 0.f ? v : 0.f;
    y[idx] = v;
  }
};

}  // namespace

void masked_conv2d_forward(const CudaExec& ex, int64_t K, const Conv2dShape& s, const float* x, bool shared_input,
                           const float* w, const uint8_t* mask, const int32_t* steps, const float* scale,
                           const float* shift, const float* residual, bool relu, float* y) {
  if (K <= 0) return;
  const ConvDims d = conv_dims(s, "masked_conv2d_forward");
  const int64_t xs = shared_input ? 0 : int64_t(d.n) * d.c * d.hw;
  const int64_t ys = int64_t(d.n) * d.o * d.ohw;
  // model chunks of up to 256 (normally one launch); pointers advance per chunk so that the
  // per-model index math stays within int32
  for (int64_t k0 = 0; k0 < K; k0 += kMaskedConvModelsPerLaunch) {
    const int64_t kc = K - k0 < kMaskedConvModelsPerLaunch ? K - k0 : kMaskedConvModelsPerLaunch;
    require_int32("masked_conv2d_forward", kc * (xs > 0 ? xs : 1));
    require_int32("masked_conv2d_forward", kc * ys);
    Steps st{};
    for (int64_t k = 0; k < kc; ++k) st.v[k] = steps[k0 + k];
    const float* res = residual ? residual + k0 * ys : nullptr;
    const int Kd = d.c * d.khw;
    switch (kernel_size_class(d)) {
      case 3:
        M2KD_GEMM_TILE(ex, (MaskedConvP<3>{d.o, d.n * d.ohw, Kd, d, x + k0 * xs, xs, w, mask, st, scale + k0 * d.o,
                                           shift + k0 * d.o, res, relu, y + k0 * ys}), int(kc), "masked_conv2d_forward");
        break;
      case 1:
        M2KD_GEMM_TILE(ex, (MaskedConvP<1>{d.o, d.n * d.ohw, Kd, d, x + k0 * xs, xs, w, mask, st, scale + k0 * d.o,
                                           shift + k0 * d.o, res, relu, y + k0 * ys}), int(kc), "masked_conv2d_forward");
        break;
      default:
        M2KD_GEMM_TILE(ex, (MaskedConvP<0>{d.o, d.n * d.ohw, Kd, d, x + k0 * xs, xs, w, mask, st, scale + k0 * d.o,
                                           shift + k0 * d.o, res, relu, y + k0 * ys}), int(kc), "masked_conv2d_forward");
    }
  }
}

}  // namespace cuda
}  // namespace m2kd
