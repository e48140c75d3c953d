// Workbench of the fused masked convolution (kernels/cpu/masked_conv*): validates the fused
// kernel against a plain double-precision reference (K separate masked dense convolutions +
// folded BN + residual + ReLU) at every ISA level, and with --bench times the ResNet-32 layer
// shapes (batch 128 or env WB_BATCH, step masks of repeated magnitude-style pruning at ratio 0.75).
//   kernels/cpu/workbench/build_masked.sh && kernels/cpu/workbench/masked_conv_wb [--bench K [--cpu]]
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "exec_pool.h"
#include "m2kd_kernels.h"

using namespace m2kd;

struct Case {
  int K, N, C, H, W, O, kh, kw, stride, pad;
  bool shared, res, relu;
};

static int fails = 0, passes = 0;

// Reference: K separate masked convolutions in double.
static void reference(const Case& cs, const std::vector<float>& x, const std::vector<float>& w,
                      const std::vector<uint8_t>& m, const std::vector<int32_t>& steps,
                      const std::vector<float>& sc, const std::vector<float>& sh,
                      const std::vector<float>& res, int oh, int ow, std::vector<float>& y) {
  const int ckk = cs.C * cs.kh * cs.kw;
  y.assign(size_t(cs.K) * cs.N * cs.O * oh * ow, 0.f);
  for (int k = 0; k < cs.K; ++k)
    for (int n = 0; n < cs.N; ++n) {
      const float* xn = x.data() + (size_t(cs.shared ? 0 : k) * cs.N + n) * cs.C * cs.H * cs.W;
      for (int o = 0; o < cs.O; ++o)
        for (int r = 0; r < oh; ++r)
          for (int q = 0; q < ow; ++q) {
            double acc = 0;
            for (int c = 0; c < cs.C; ++c)
              for (int i = 0; i < cs.kh; ++i)
                for (int j = 0; j < cs.kw; ++j) {
                  const size_t wi = size_t(o) * ckk + (c * cs.kh + i) * cs.kw + j;
                  if (m[wi] == 0 || m[wi] > steps[k]) continue;
                  const int ih = r * cs.stride + i - cs.pad, iw = q * cs.stride + j - cs.pad;
                  if (ih < 0 || ih >= cs.H || iw < 0 || iw >= cs.W) continue;
                  acc += double(w[wi]) * xn[(c * cs.H + ih) * cs.W + iw];
                }
            const size_t yi = ((size_t(k) * cs.N + n) * cs.O + o) * oh * ow + r * ow + q;
            double v = acc * sc[k * cs.O + o] + sh[k * cs.O + o];
            if (cs.res) v += res[yi];
            if (cs.relu && v < 0) v = 0;
            y[yi] = float(v);
          }
    }
}

static void make_mask(std::mt19937& rng, const std::vector<float>& w, int O, int ckk, int T, float ratio,
                      std::vector<uint8_t>& m) {
  // step s owns the top (1-ratio) by magnitude of the weights still free (per layer)
  m.assign(w.size(), 0);
  std::vector<int> freeIdx(w.size());
  for (size_t i = 0; i < w.size(); ++i) freeIdx[i] = int(i);
  for (int s = 1; s <= T; ++s) {
    std::vector<float> mags;
    for (int i : freeIdx) mags.push_back(std::fabs(w[i]) * (0.5f + float(rng() % 1000) / 1000.f));
    std::vector<int> ord(freeIdx.size());
    for (size_t i = 0; i < ord.size(); ++i) ord[i] = int(i);
    std::sort(ord.begin(), ord.end(), [&](int a, int b) { return mags[a] > mags[b]; });
    const size_t keep = size_t(std::floor((1 - ratio) * freeIdx.size() + 0.5));
    std::vector<int> rest;
    for (size_t r = 0; r < ord.size(); ++r) {
      if (r < keep) m[freeIdx[ord[r]]] = uint8_t(s);
      else rest.push_back(freeIdx[ord[r]]);
    }
    freeIdx = rest;
  }
}

struct Data {
  std::vector<float> x, w, sc, sh, res, y;
  std::vector<uint8_t> m;
  std::vector<int32_t> steps, plan;
  int oh, ow;
};

static Data make(const Case& cs, std::mt19937& rng, int T) {
  Data d;
  std::normal_distribution<float> nd(0.f, 1.f);
  d.oh = (cs.H + 2 * cs.pad - cs.kh) / cs.stride + 1;
  d.ow = (cs.W + 2 * cs.pad - cs.kw) / cs.stride + 1;
  d.x.resize(size_t(cs.shared ? 1 : cs.K) * cs.N * cs.C * cs.H * cs.W);
  for (auto& v : d.x) v = nd(rng);
  d.w.resize(size_t(cs.O) * cs.C * cs.kh * cs.kw);
  for (auto& v : d.w) v = nd(rng) * 0.3f;
  make_mask(rng, d.w, cs.O, cs.C * cs.kh * cs.kw, T, 0.6f, d.m);
  d.steps.resize(cs.K);
  for (int k = 0; k < cs.K; ++k) d.steps[k] = int32_t((k * 7 + 3) % (T + 2));  // includes 0 and > T
  d.sc.resize(size_t(cs.K) * cs.O);
  d.sh.resize(d.sc.size());
  for (auto& v : d.sc) v = 0.5f + std::fabs(nd(rng));
  for (auto& v : d.sh) v = nd(rng) * 0.2f;
  if (cs.res) {
    d.res.resize(size_t(cs.K) * cs.N * cs.O * d.oh * d.ow);
    for (auto& v : d.res) v = nd(rng);
  }
  d.plan.resize(masked_conv_plan_ints(cs.O, cs.C, cs.kh, cs.kw));
  masked_conv_build_plan(cs.O, cs.C, cs.kh, cs.kw, d.w.data(), d.m.data(), d.plan.data());
  return d;
}

static MaskedConvShape shape_of(const Case& cs, const Data& d) {
  return MaskedConvShape{cs.K, cs.N, cs.C, cs.H, cs.W, cs.O, cs.kh, cs.kw, cs.stride, cs.pad, d.oh, d.ow, cs.shared};
}

static void validate(wb::PoolExec& ex) {
  const Case cases[] = {
      {3, 2, 3, 8, 8, 5, 3, 3, 1, 1, true, false, true},
      {3, 2, 4, 8, 8, 6, 3, 3, 1, 1, false, true, true},
      {2, 3, 4, 9, 7, 5, 3, 3, 2, 1, false, false, false},
      {4, 5, 6, 8, 8, 7, 3, 3, 1, 1, false, true, true},
      {2, 4, 5, 16, 16, 8, 3, 3, 2, 1, false, false, true},
      {3, 2, 3, 32, 32, 16, 3, 3, 1, 1, true, false, true},
      {2, 2, 16, 32, 32, 16, 3, 3, 1, 1, false, true, true},
      {2, 2, 16, 32, 32, 32, 3, 3, 2, 1, false, false, true},
      {2, 5, 8, 8, 8, 16, 3, 3, 1, 1, false, true, true},
      {2, 2, 3, 11, 13, 4, 5, 3, 3, 2, true, false, false},
      {2, 3, 5, 6, 6, 3, 1, 1, 1, 0, false, true, false},
      {5, 3, 2, 7, 9, 3, 2, 2, 2, 0, true, true, true},
  };
  const Isa isas[] = {Isa::scalar, Isa::avx2, Isa::avx512};
  const char* names[] = {"scalar", "avx2", "avx512"};
  std::mt19937 rng(7);
  int ci = 0;
  for (const Case& cs : cases) {
    Data d = make(cs, rng, 3);
    std::vector<float> want;
    reference(cs, d.x, d.w, d.m, d.steps, d.sc, d.sh, d.res, d.oh, d.ow, want);
    for (int li = 0; li < 3; ++li) {
      ex.set_isa(isas[li]);
      std::vector<float> y(want.size(), NAN);
      masked_conv_forward(ex, shape_of(cs, d), d.plan.data(), d.steps.data(), d.x.data(), d.sc.data(),
                          d.sh.data(), cs.res ? d.res.data() : nullptr, cs.relu, y.data());
      double worst = 0;
      size_t bad = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        const double err = std::fabs(double(y[i]) - want[i]);
        const double lim = 1e-4 + 1e-4 * std::fabs(want[i]);
        if (!(err <= lim)) bad++;
        if (!(err <= worst)) worst = err;
      }
      if (bad) { fails++; printf("not ok case %d [%s]: %zu bad, worst %g\n", ci, names[li], bad, worst); }
      else { passes++; printf("ok case %d [%s] worst %.2g\n", ci, names[li], worst); }
    }
    ci++;
  }
  ex.set_isa(Isa::avx512);
}

static bool g_cpu_time = false;
static int g_batch = 128;
// wall clock, or (--cpu, one thread) this thread's CPU time: robust on a shared, loaded machine
static double now() {
  if (g_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void bench(wb::PoolExec& ex, int K) {
  struct L { const char* name; int C, H, O, stride; bool shared; bool res; int count; };
  const L layers[] = {
      {"stem 3->16 32x32 shared", 3, 32, 16, 1, true, false, 1},
      {"s1 16->16 32x32", 16, 32, 16, 1, false, true, 10},
      {"s2 16->32 s2", 16, 32, 32, 2, false, false, 1},
      {"s2 32->32 16x16", 32, 16, 32, 1, false, true, 9},
      {"s3 32->64 s2", 32, 16, 64, 2, false, false, 1},
      {"s3 64->64 8x8", 64, 8, 64, 1, false, true, 9},
  };
  std::mt19937 rng(3);
  double total = 0;
  for (const L& l : layers) {
    Case cs{K, g_batch, l.C, l.H, l.H, l.O, 3, 3, l.stride, 1, l.shared, l.res, true};
    Data d = make(cs, rng, K);
    for (int k = 0; k < K; ++k) d.steps[k] = k + 1;
    // ratio 0.75 mask
    make_mask(rng, d.w, cs.O, cs.C * 9, K, 0.75f, d.m);
    masked_conv_build_plan(cs.O, cs.C, 3, 3, d.w.data(), d.m.data(), d.plan.data());
    std::vector<float> y(size_t(K) * cs.N * cs.O * d.oh * d.ow);
    double useful = 0;
    for (int k = 0; k < K; ++k) {
      int64_t nz = 0;
      for (auto v : d.m) nz += (v >= 1 && v <= k + 1);
      useful += 2.0 * nz * d.oh * d.ow * cs.N;
    }
    std::vector<double> ts;
    for (int rep = 0; rep < 7; ++rep) {
      double t0 = now();
      masked_conv_forward(ex, shape_of(cs, d), d.plan.data(), d.steps.data(), d.x.data(), d.sc.data(),
                          d.sh.data(), cs.res ? d.res.data() : nullptr, true, y.data());
      ts.push_back(now() - t0);
    }
    std::sort(ts.begin(), ts.end());
    const double t = ts[ts.size() / 2];
    total += t * l.count;
    printf("%-26s K=%d  %.2f ms  useful %.1f GFLOP/s  (x%d = %.1f ms)\n", l.name, K, t * 1e3, useful / t * 1e-9,
           l.count, t * l.count * 1e3);
  }
  printf("total conv time per batch of %d, K=%d: %.1f ms -> %.0f images*models/s\n", g_batch, K, total * 1e3,
         double(g_batch) * K / total);
}

int main(int argc, char** argv) {
  g_cpu_time = argc > 3 && std::string(argv[3]) == "--cpu";
  if (const char* b = std::getenv("WB_BATCH")) g_batch = std::atoi(b);
  wb::PoolExec ex(Isa::avx512, g_cpu_time ? 1 : 2);
  if (argc > 2 && std::string(argv[1]) == "--bench") {
    bench(ex, std::atoi(argv[2]));
    return 0;
  }
  validate(ex);
  printf("# %d passed, %d failed\n", passes, fails);
  return fails ? 1 : 0;
}
