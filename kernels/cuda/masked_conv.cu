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
#include "conv_problems.cuh"

namespace m2kd {
namespace cuda {

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
