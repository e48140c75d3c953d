// Workbench of the fused masked convolution (kernels/cpu/masked_conv*): validates the fused
// kernel against a plain double-precision reference (K separate masked dense convolutions +
// folded BN + residual + ReLU) at every ISA level, and with --bench times the ResNet-32 layer
// shapes (batch 128 or env WB_BATCH, step masks of repeated magnitude-style pruning at ratio 0.75).
//   kernels/cpu/workbench/build_masked.sh && kernels/cpu/workbench/masked_conv_wb [--bench K [--cpu]]
// Validation covers unstructured and block masks (B = 4, 8, 16) and the tuning variants of
// MaskedConvParams (grouped only, dense only, 1-position tiles) and the NCHW / blocked layouts.
// Bench env: WB_BATCH, WB_BLOCK (block masks), WB_BLOCKED (1 input, 2 output, 3 both in the
// blocked layout), WB_DENSE_ABOVE, WB_POS_TILE (tuning, passed to the kernel as MaskedConvParams).
// The bench prints each shape's useful GFLOP/s and the same kernel's rate at full density.
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
  return d;
}

static MaskedConvShape shape_of(const Case& cs, const Data& d) {
  return MaskedConvShape{cs.K, cs.N, cs.C, cs.H, cs.W, cs.O, cs.kh, cs.kw, cs.stride, cs.pad, d.oh, d.ow, cs.shared};
}

// Block masks (--prune-block B): one value per block of B output channels at each (c, tap).
static void blockify(std::vector<uint8_t>& m, int O, int ckk, int B) {
  for (int o0 = 0; o0 < O; o0 += B)
    for (int t = 0; t < ckk; ++t) {
      const uint8_t v = m[size_t(o0) * ckk + t];
      for (int o = o0; o < std::min(O, o0 + B); ++o) m[size_t(o) * ckk + t] = v;
    }
}

// NCHW [k][n][c][h][w] <-> blocked [k][nb][h+2p][w+2p][c][V] (m2kd_kernels.h)
static std::vector<float> to_blocked(const std::vector<float>& a, int k, int n, int c, int h, int w, int p, int V) {
  const int nb = (n + V - 1) / V, Hp = h + 2 * p, Wp = w + 2 * p;
  std::vector<float> b(size_t(k) * nb * c * Hp * Wp * V, 0.f);
  for (int m = 0; m < k; ++m)
    for (int i = 0; i < n; ++i)
      for (int ci = 0; ci < c; ++ci)
        for (int r = 0; r < h; ++r)
          for (int q = 0; q < w; ++q)
            b[((((size_t(m) * nb + i / V) * Hp + r + p) * Wp + q + p) * c + ci) * V + i % V] =
                a[(((size_t(m) * n + i) * c + ci) * h + r) * w + q];
  return b;
}
// back to NCHW; returns false if a padding or unused lane is not 0
static bool from_blocked(const std::vector<float>& b, int k, int n, int c, int h, int w, int p, int V,
                         std::vector<float>& a) {
  const int nb = (n + V - 1) / V, Hp = h + 2 * p, Wp = w + 2 * p;
  a.assign(size_t(k) * n * c * h * w, 0.f);
  bool clean = true;
  for (int m = 0; m < k; ++m)
    for (int bi = 0; bi < nb; ++bi)
      for (int ci = 0; ci < c; ++ci)
        for (int r = 0; r < Hp; ++r)
          for (int q = 0; q < Wp; ++q)
            for (int v = 0; v < V; ++v) {
              const float val = b[((((size_t(m) * nb + bi) * Hp + r) * Wp + q) * c + ci) * V + v];
              const int i = bi * V + v;
              const bool inside = i < n && r >= p && r < p + h && q >= p && q < p + w;
              if (inside) a[(((size_t(m) * n + i) * c + ci) * h + r - p) * w + q - p] = val;
              else if (val != 0.f) clean = false;
            }
  return clean;
}

static void plan_for(Data& d, const Case& cs, const MaskedConvParams& prm) {
  d.plan.assign(masked_conv_plan_ints(cs.O, cs.C, cs.kh, cs.kw, d.m.data(), prm), 0);
  masked_conv_build_plan(cs.O, cs.C, cs.kh, cs.kw, d.w.data(), d.m.data(), d.plan.data(), prm);
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
  // tuning variants: default; grouped only; dense only; narrow position tiles
  MaskedConvParams variants[4];
  variants[1].dense_above = 2.f;
  variants[2].dense_above = 0.f;
  variants[3].pos_tile = 1;
  const char* vnames[] = {"default", "grouped", "dense", "tile1"};
  std::mt19937 rng(7);
  int ci = 0;
  for (const Case& cs : cases)
    for (int B : {1, 4, 8, 16}) {
      Data d = make(cs, rng, 3);
      if (B > 1) blockify(d.m, cs.O, cs.C * cs.kh * cs.kw, B);
      std::vector<float> want;
      reference(cs, d.x, d.w, d.m, d.steps, d.sc, d.sh, d.res, d.oh, d.ow, want);
      for (int vi = 0; vi < 4; ++vi) {
        plan_for(d, cs, variants[vi]);
        for (int li = 0; li < 3; ++li) {
          ex.set_isa(isas[li]);
          std::vector<float> y(want.size(), NAN);
          masked_conv_forward(ex, shape_of(cs, d), d.plan.data(), d.steps.data(), d.x.data(), d.sc.data(),
                              d.sh.data(), cs.res ? d.res.data() : nullptr, cs.relu, y.data(), variants[vi]);
          double worst = 0;
          size_t bad = 0;
          for (size_t i = 0; i < y.size(); ++i) {
            const double err = std::fabs(double(y[i]) - want[i]);
            const double lim = 1e-4 + 1e-4 * std::fabs(want[i]);
            if (!(err <= lim)) bad++;
            if (!(err <= worst)) worst = err;
          }
          if (bad) { fails++; printf("not ok case %d B=%d %s [%s]: %zu bad, worst %g\n", ci, B, vnames[vi], names[li], bad, worst); }
          else { passes++; }
        }
      }
      // blocked layouts: input blocked (stored with the conv's padding) and/or output blocked
      // (stored with padding 1, residual in that layout too), at every ISA, default tuning
      plan_for(d, cs, MaskedConvParams());
      for (int li = 0; li < 3; ++li)
        for (int mode = 1; mode < 4; ++mode) {
          ex.set_isa(isas[li]);
          const int V = int(masked_conv_lanes(isas[li]));
          MaskedConvShape sh = shape_of(cs, d);
          sh.in_blocked = mode & 1;
          sh.out_blocked = mode & 2;
          sh.out_pad = sh.out_blocked ? 1 : 0;
          const int kin = cs.shared ? 1 : cs.K;
          std::vector<float> xb = sh.in_blocked ? to_blocked(d.x, kin, cs.N, cs.C, cs.H, cs.W, cs.pad, V) : d.x;
          std::vector<float> rb;
          if (cs.res) rb = sh.out_blocked ? to_blocked(d.res, cs.K, cs.N, cs.O, d.oh, d.ow, 1, V) : d.res;
          const size_t yn = sh.out_blocked ? size_t(masked_blocked_floats(isas[li], cs.K, cs.N, cs.O, d.oh, d.ow, 1))
                                           : want.size();
          std::vector<float> yb(yn, NAN), y;
          masked_conv_forward(ex, sh, d.plan.data(), d.steps.data(), xb.data(), d.sc.data(), d.sh.data(),
                              cs.res ? rb.data() : nullptr, cs.relu, yb.data());
          bool clean = true;
          if (sh.out_blocked) clean = from_blocked(yb, cs.K, cs.N, cs.O, d.oh, d.ow, 1, V, y);
          else y = yb;
          size_t bad = 0;
          for (size_t i = 0; i < y.size(); ++i)
            if (!(std::fabs(double(y[i]) - want[i]) <= 1e-4 + 1e-4 * std::fabs(want[i]))) bad++;
          if (bad || !clean) { fails++; printf("not ok case %d B=%d blocked mode %d [%s]: %zu bad%s\n", ci, B, mode, names[li], bad, clean ? "" : ", dirty padding"); }
          else passes++;
        }
      ci++;
    }
  ex.set_isa(Isa::avx512);
}

static bool g_cpu_time = false;
static int g_batch = 128;
static int g_block = 1;
static int g_blocked = 0;
static MaskedConvParams g_params;
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
    // ratio 0.75 mask (env WB_BLOCK = B: block masks of B output channels)
    make_mask(rng, d.w, cs.O, cs.C * 9, K, 0.75f, d.m);
    if (g_block > 1) blockify(d.m, cs.O, cs.C * 9, g_block);
    // WB_BLOCKED=1: the bank's layout (input blocked except the stem's, output blocked, pad 1)
    MaskedConvShape bs = shape_of(cs, d);
    bs.in_blocked = (g_blocked & 1) && !cs.shared;
    bs.out_blocked = (g_blocked & 2) != 0;
    bs.out_pad = bs.out_blocked ? 1 : 0;
    const Isa isa = ex.isa();
    if (bs.in_blocked) d.x.assign(masked_blocked_floats(isa, K, cs.N, cs.C, cs.H, cs.W, 1), 0.5f);
    if (bs.out_blocked && cs.res) d.res.assign(masked_blocked_floats(isa, K, cs.N, cs.O, d.oh, d.ow, 1), 0.25f);
    std::vector<float> y(bs.out_blocked ? size_t(masked_blocked_floats(isa, K, cs.N, cs.O, d.oh, d.ow, 1))
                                        : size_t(K) * cs.N * cs.O * d.oh * d.ow);
    auto timed = [&](const std::vector<int32_t>& steps, double& useful) {
      plan_for(d, cs, g_params);
      useful = 0;
      for (int k = 0; k < K; ++k) {
        int64_t nz = 0;
        for (auto v : d.m) nz += (v >= 1 && v <= steps[k]);
        useful += 2.0 * nz * d.oh * d.ow * cs.N;
      }
      std::vector<double> ts;
      for (int rep = 0; rep < 7; ++rep) {
        double t0 = now();
        masked_conv_forward(ex, bs, d.plan.data(), steps.data(), d.x.data(), d.sc.data(),
                            d.sh.data(), cs.res ? d.res.data() : nullptr, true, y.data(), g_params);
        ts.push_back(now() - t0);
      }
      std::sort(ts.begin(), ts.end());
      return ts[ts.size() / 2];
    };
    double useful = 0, dense_useful = 0;
    const double t = timed(d.steps, useful);
    // the same kernel at full density (every weight owned by step 1): its dense rate on this layout
    const std::vector<uint8_t> keep = d.m;
    std::fill(d.m.begin(), d.m.end(), uint8_t(1));
    const double td = timed(d.steps, dense_useful);
    d.m = keep;
    total += t * l.count;
    printf("%-26s K=%d  %.2f ms  useful %.1f GFLOP/s  (dense mask: %.1f GFLOP/s)  (x%d = %.1f ms)\n", l.name, K,
           t * 1e3, useful / t * 1e-9, dense_useful / td * 1e-9, l.count, t * l.count * 1e3);
  }
  printf("total conv time per batch of %d, K=%d: %.1f ms -> %.0f images*models/s\n", g_batch, K, total * 1e3,
         double(g_batch) * K / total);
}

int main(int argc, char** argv) {
  g_cpu_time = argc > 3 && std::string(argv[3]) == "--cpu";
  if (const char* b = std::getenv("WB_BATCH")) g_batch = std::atoi(b);
  if (const char* b = std::getenv("WB_BLOCK")) g_block = std::atoi(b);  // bench only: block masks
  if (const char* b = std::getenv("WB_BLOCKED")) g_blocked = std::atoi(b);
  // bench only: tuning (the kernel itself reads no environment)
  if (const char* b = std::getenv("WB_DENSE_ABOVE")) g_params.dense_above = float(std::atof(b));
  if (const char* b = std::getenv("WB_POS_TILE")) g_params.pos_tile = std::atoi(b);
  wb::PoolExec ex(Isa::avx512, g_cpu_time ? 1 : 2);
  if (argc > 2 && std::string(argv[1]) == "--bench") {
    bench(ex, std::atoi(argv[2]));
    return 0;
  }
  validate(ex);
  printf("# %d passed, %d failed\n", passes, fails);
  return fails ? 1 : 0;
}
