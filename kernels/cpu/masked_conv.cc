// Fused masked convolution: the plan builder (ISA-independent) and the public entry point,
// dispatched to masked_conv_{scalar,avx2,avx512}.cc. Plan format: m2kd_kernels.h; semantics and
// the kernel's design: masked_conv_impl.inc.
#include "cpu_common.h"

namespace m2kd {
namespace cpu {
#define M2KD_MASKED_DECLS                                                                       \
  void masked_conv_forward(const Exec& ex, const MaskedConvShape& s, const int32_t* plan,       \
                           const int32_t* steps, const float* x, const float* scale,            \
                           const float* shift, const float* residual, bool relu, float* y,      \
                           const MaskedConvParams& p);
namespace scalar { M2KD_MASKED_DECLS }
namespace avx2 { M2KD_MASKED_DECLS }
namespace avx512 { M2KD_MASKED_DECLS }
#undef M2KD_MASKED_DECLS
}  // namespace cpu

namespace {
constexpr int32_t kPlanMagic = 0x4D4B4332;
constexpr int kPanel = 4;  // output channels per panel (4-bit column patterns)

// Distinct mask values >= 1, ascending; returns their count.
int64_t distinct_steps(const uint8_t* m, int64_t n, int32_t* vals) {
  bool seen[256] = {};
  for (int64_t i = 0; i < n; ++i) seen[m[i]] = true;
  int64_t d = 0;
  for (int v = 1; v < 256; ++v)
    if (seen[v]) vals[d++] = v;
  return d;
}

// Pattern of active channels of panel p at column t for step v (bit b = channel 4p+b).
inline int pattern(const uint8_t* m, int64_t o, int64_t ckk, int64_t p, int64_t t, int32_t v) {
  int pat = 0;
  for (int b = 0; b < kPanel; ++b) {
    const int64_t oc = p * kPanel + b;
    if (oc >= o) break;
    const uint8_t mv = m[oc * ckk + t];
    if (mv >= 1 && mv <= v) pat |= 1 << b;
  }
  return pat;
}

// Builds (plan != null) or sizes (plan == null) the plan; returns its total ints.
int64_t build(int64_t o, int64_t c, int64_t kh, int64_t kw, const float* w, const uint8_t* mask, int32_t* plan,
              const MaskedConvParams& prm) {
  const int64_t ckk = c * kh * kw, panels = (o + kPanel - 1) / kPanel;
  int32_t vals[255];
  const int64_t nsec = distinct_steps(mask, o * ckk, vals);
  int64_t at = 8 + 2 * nsec;
  if (plan) {
    plan[0] = kPlanMagic;
    plan[1] = int32_t(o); plan[2] = int32_t(c); plan[3] = int32_t(kh); plan[4] = int32_t(kw);
    plan[5] = int32_t(nsec); plan[6] = int32_t(panels);
  }
  for (int64_t si = 0; si < nsec; ++si) {
    const int32_t v = vals[si];
    if (plan) {
      plan[8 + si] = v;
      plan[8 + nsec + si] = int32_t(at);
    }
    int32_t* bounds = plan ? plan + at : nullptr;
    at += panels * 16;
    int32_t* recs = plan ? plan + at : nullptr;
    int64_t nrec = 0;
    for (int64_t p = 0; p < panels; ++p) {
      int64_t hist[16] = {}, active = 0;
      for (int64_t t = 0; t < ckk; ++t) {
        const int pat = pattern(mask, o, ckk, p, t, v);
        hist[pat]++;
        active += __builtin_popcount(unsigned(pat));
      }
      const bool dense = double(active) >= double(prm.dense_above) * double(kPanel * ckk);
      if (dense) {  // every non-empty column as pattern 15
        for (int g = 1; g < 15; ++g) {
          hist[15] += hist[g];
          hist[g] = 0;
        }
      }
      int64_t pos[16];
      pos[0] = nrec;
      for (int g = 1; g < 16; ++g) pos[g] = pos[g - 1] + hist[g];
      // pos[g] = end of group g; start of group g = pos[g-1] (pos[0] = panel start)
      if (plan) {
        for (int g = 0; g < 16; ++g) bounds[p * 16 + g] = int32_t(pos[g]);
        int64_t fill[16];
        for (int g = 1; g < 16; ++g) fill[g] = pos[g - 1];
        for (int64_t t = 0; t < ckk; ++t) {
          int pat = pattern(mask, o, ckk, p, t, v);
          if (pat == 0) continue;
          if (dense) pat = 15;
          int32_t* r = recs + 5 * fill[pat]++;
          r[0] = int32_t(t);
          float* wr = reinterpret_cast<float*>(r + 1);
          for (int b = 0; b < kPanel; ++b) {
            const int64_t oc = p * kPanel + b;
            const bool on = oc < o && mask[oc * ckk + t] >= 1 && mask[oc * ckk + t] <= v;
            wr[b] = on ? w[oc * ckk + t] : 0.f;
          }
        }
      }
      nrec = pos[15];
    }
    at += 5 * nrec;
  }
  if (plan) plan[7] = int32_t(at);
  return at;
}
}  // namespace

int64_t masked_conv_plan_ints(int64_t o, int64_t c, int64_t kh, int64_t kw, const uint8_t* mask,
                              const MaskedConvParams& p) {
  if (mask) return build(o, c, kh, kw, nullptr, mask, nullptr, p);
  const int64_t ckk = c * kh * kw, panels = (o + kPanel - 1) / kPanel;
  const int64_t nsec = std::min<int64_t>(255, o * ckk);
  return 8 + 2 * nsec + nsec * (panels * 16 + 5 * panels * ckk);
}

void masked_conv_build_plan(int64_t o, int64_t c, int64_t kh, int64_t kw, const float* w,
                            const uint8_t* mask, int32_t* plan, const MaskedConvParams& p) {
  build(o, c, kh, kw, w, mask, plan, p);
}

int64_t masked_conv_lanes(Isa isa) { return isa == Isa::avx512 ? 16 : isa == Isa::avx2 ? 8 : 4; }

int64_t masked_blocked_floats(Isa isa, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t pad) {
  const int64_t V = masked_conv_lanes(isa);
  return k * ((n + V - 1) / V) * c * (h + 2 * pad) * (w + 2 * pad) * V;
}

// The two layout ops are memory-bound copies and sums over whole vectors of V images: plain
// loops over V lanes (the compiler vectorises them), not ISA-dispatched.
void masked_blocked_shortcut_a(const Exec& ex, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t in_pad,
                               int64_t stride, int64_t before, int64_t after, int64_t out_pad, const float* x,
                               float* y) {
  const int64_t V = masked_conv_lanes(ex.isa()), nb = (n + V - 1) / V, co = c + before + after;
  const int64_t ho = (h + stride - 1) / stride, wo = (w + stride - 1) / stride;
  const int64_t Hi = h + 2 * in_pad, Wi = w + 2 * in_pad, Ho = ho + 2 * out_pad, Wo = wo + 2 * out_pad;
  auto body = [&](int64_t u0, int64_t u1, int) {
    for (int64_t u = u0; u < u1; ++u) {  // u = (model, block)
      float* yb = y + u * Ho * Wo * co * V;
      const float* xb = x + u * Hi * Wi * c * V;
      std::memset(yb, 0, sizeof(float) * Ho * Wo * co * V);
      for (int64_t r = 0; r < ho; ++r)
        for (int64_t q = 0; q < wo; ++q) {
          const float* src = xb + ((r * stride + in_pad) * Wi + q * stride + in_pad) * c * V;
          float* dst = yb + (((r + out_pad) * Wo + q + out_pad) * co + before) * V;
          for (int64_t e = 0; e < c * V; ++e) dst[e] = src[e];
        }
    }
  };
  if (ex.threads() == 1 || k * nb == 1) body(0, k * nb, 0);
  else ex.parallel_for(k * nb, body);
}

void masked_blocked_maxpool(const Exec& ex, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t in_pad,
                            int64_t kernel, int64_t stride, int64_t pad, int64_t out_pad, const float* x, float* y) {
  const int64_t V = masked_conv_lanes(ex.isa()), nb = (n + V - 1) / V, CV = c * V;
  const int64_t ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
  const int64_t Hi = h + 2 * in_pad, Wi = w + 2 * in_pad, Ho = ho + 2 * out_pad, Wo = wo + 2 * out_pad;
  auto body = [&](int64_t u0, int64_t u1, int) {
    for (int64_t u = u0; u < u1; ++u) {  // u = (model, block)
      float* yb = y + u * Ho * Wo * CV;
      const float* xb = x + u * Hi * Wi * CV;
      std::memset(yb, 0, sizeof(float) * Ho * Wo * CV);
      for (int64_t r = 0; r < ho; ++r) {
        const int64_t i0 = std::max<int64_t>(0, r * stride - pad), i1 = std::min(h, r * stride - pad + kernel);
        for (int64_t q = 0; q < wo; ++q) {
          const int64_t j0 = std::max<int64_t>(0, q * stride - pad), j1 = std::min(w, q * stride - pad + kernel);
          float* dst = yb + ((r + out_pad) * Wo + q + out_pad) * CV;
          // pad < kernel: every window holds at least one pixel of the image
          const float* first = xb + ((i0 + in_pad) * Wi + j0 + in_pad) * CV;
          for (int64_t e = 0; e < CV; ++e) dst[e] = first[e];
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = j0; j < j1; ++j) {
              const float* src = xb + ((i + in_pad) * Wi + j + in_pad) * CV;
              for (int64_t e = 0; e < CV; ++e) dst[e] = src[e] > dst[e] ? src[e] : dst[e];
            }
        }
      }
      if (n % V != 0 && (u % nb) == nb - 1)  // lanes of missing images hold 0 (the layout's promise)
        for (int64_t e = 0; e < Ho * Wo * CV; e += V)
          for (int64_t v = n % V; v < V; ++v) yb[e + v] = 0.f;
    }
  };
  if (ex.threads() == 1 || k * nb == 1) body(0, k * nb, 0);
  else ex.parallel_for(k * nb, body);
}

void masked_blocked_avgpool(const Exec& ex, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t pad,
                            const float* x, float* y) {
  const int64_t V = masked_conv_lanes(ex.isa()), nb = (n + V - 1) / V;
  const int64_t Hp = h + 2 * pad, Wp = w + 2 * pad, block = Hp * Wp * c * V;
  const float inv = 1.f / float(h * w);
  float* acc = static_cast<float*>(ex.scratch(0, sizeof(float) * c * V));
  for (int64_t m = 0; m < k; ++m)
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + (m * nb + b) * block;
      std::fill(acc, acc + c * V, 0.f);
      for (int64_t r = 0; r < h; ++r)
        for (int64_t q = 0; q < w; ++q) {
          const float* src = xb + ((r + pad) * Wp + q + pad) * c * V;
          for (int64_t e = 0; e < c * V; ++e) acc[e] += src[e];
        }
      for (int64_t v = 0; v < V && b * V + v < n; ++v)
        for (int64_t ci = 0; ci < c; ++ci) y[(m * n + b * V + v) * c + ci] = acc[ci * V + v] * inv;
    }
}

void masked_conv_forward(const Exec& ex, const MaskedConvShape& s, const int32_t* plan,
                         const int32_t* steps, const float* x, const float* scale,
                         const float* shift, const float* residual, bool relu, float* y,
                         const MaskedConvParams& p) {
  M2KD_ISA_DISPATCH(ex.isa(), masked_conv_forward(ex, s, plan, steps, x, scale, shift, residual, relu, y, p));
}

}  // namespace m2kd
