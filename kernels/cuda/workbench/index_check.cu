// Host check of the CUDA kernels' index math (no GPU needed): runs the very index maps the GPU
// kernels use (conv_problems.cuh, gemm_problem.cuh: __host__ __device__) through a host
// emulation of gemm_tile_k (same thread -> element maps, TileMap; k-tiles, bounds, split-K and
// per-model z), for every tile shape, and compares with direct loops in double:
// conv forward / backward-data / backward-weight (split-K + the fixed-order reduce), the fused
// masked convolution (shared and per-model inputs, residual, ReLU, step 0), and sgemm with all
// transposes, alpha and beta. It also checks that every shared-memory cell of a tile is written
// exactly once per k-tile and every output exactly once. Ends with "N passed, N failed".
//   nvcc -std=c++17 -O2 -I kernels/include kernels/cuda/workbench/index_check.cu -o /tmp/ic && /tmp/ic
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../conv_problems.cuh"
#include "../gemm_problem.cuh"

using namespace m2kd;
using namespace m2kd::cuda;

static int g_pass = 0, g_fail = 0;

static void expect_close(const std::vector<float>& got, const std::vector<double>& want, double atol, double rtol,
                         const std::string& what) {
  size_t bad = 0, worst = 0;
  double wex = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double(got[i]) - want[i]), lim = atol + rtol * std::fabs(want[i]);
    if (!(e <= lim)) {
      if (bad == 0 || e / lim > wex) { wex = e / lim; worst = i; }
      ++bad;
    }
  }
  if (bad == 0 && got.size() == want.size()) {
    ++g_pass;
  } else {
    ++g_fail;
    std::printf("FAIL %s: %zu/%zu off, worst [%zu] got %g want %g\n", what.c_str(), bad, got.size(), worst,
                double(got[worst]), want[worst]);
  }
}
static void expect(bool ok, const std::string& what) {
  if (ok) ++g_pass;
  else { ++g_fail; std::printf("FAIL %s\n", what.c_str()); }
}

// gemm_tile_k on the host: grid (N tiles, M tiles, zc), 256 "threads", one k-tile at a time.
template <class P, int BM, int BN, int TM, int TN>
static bool emulate(const P& p, int zc) {
  using Map = TileMap<BM, BN, TM, TN>;
  constexpr int NT = Map::NT, BK = Map::BK;
  const int gx = (p.N + BN - 1) / BN, gy = (p.M + BM - 1) / BM;
  bool ok = true;
  std::vector<float> acc(size_t(NT) * TM * TN);
  std::vector<typename P::ARow> arow(size_t(NT) * Map::A_PER);
  std::vector<typename P::BCol> bcol(NT);
  static float As[BK][BM + 1], Bs[BK][BN];
  static int Aw[BK][BM], Bw[BK][BN];
  for (int z = 0; z < zc; ++z)
    for (int by = 0; by < gy; ++by)
      for (int bx = 0; bx < gx; ++bx) {
        const int m0 = by * BM, n0 = bx * BN;
        int k0, k1;
        p.k_range(z, k0, k1);
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int t = 0; t < NT; ++t) {
          for (int i = 0; i < Map::A_PER; ++i) arow[size_t(t) * Map::A_PER + i] = p.arow(m0 + Map::a_m(t, i), z);
          bcol[t] = p.bcol(n0 + Map::b_n(t), z);
        }
        for (int kt = k0; kt < k1; kt += BK) {
          std::memset(Aw, 0, sizeof Aw);
          std::memset(Bw, 0, sizeof Bw);
          for (int t = 0; t < NT; ++t) {
            for (int i = 0; i < Map::A_PER; ++i) {
              const int k = kt + Map::a_k(t);
              As[Map::a_k(t)][Map::a_m(t, i)] = k < k1 ? p.a(arow[size_t(t) * Map::A_PER + i], k) : 0.f;
              Aw[Map::a_k(t)][Map::a_m(t, i)]++;
            }
            for (int i = 0; i < Map::B_PER; ++i) {
              const int k = kt + Map::b_k(t, i);
              Bs[Map::b_k(t, i)][Map::b_n(t)] = k < k1 ? p.b(bcol[t], k) : 0.f;
              Bw[Map::b_k(t, i)][Map::b_n(t)]++;
            }
          }
          for (int kk = 0; kk < BK; ++kk) {
            for (int mm = 0; mm < BM; ++mm) ok = ok && Aw[kk][mm] == 1;
            for (int nn = 0; nn < BN; ++nn) ok = ok && Bw[kk][nn] == 1;
          }
          for (int t = 0; t < NT; ++t)
            for (int kk = 0; kk < BK; ++kk)
              for (int i = 0; i < TM; ++i)
                for (int j = 0; j < TN; ++j)
                  acc[(size_t(t) * TM + i) * TN + j] += As[kk][Map::out_m(t, i)] * Bs[kk][Map::out_n(t, j)];
        }
        for (int t = 0; t < NT; ++t)
          for (int i = 0; i < TM; ++i) {
            const int m = m0 + Map::out_m(t, i);
            if (m >= p.M) continue;
            for (int j = 0; j < TN; ++j) {
              const int n = n0 + Map::out_n(t, j);
              if (n < p.N) p.store(m, n, acc[(size_t(t) * TM + i) * TN + j], z);
            }
          }
      }
  return ok;
}

// every tile shape launch_gemm_tile may pick
template <class P>
static void emulate_all(const P& p, int zc, const std::function<void()>& reset, const std::function<void(const char*)>& check) {
  reset(); expect(emulate<P, 16, 128, 2, 4>(p, zc), "tile 16x128 writes each smem cell once"); check("16x128");
  reset(); expect(emulate<P, 32, 128, 4, 4>(p, zc), "tile 32x128 writes each smem cell once"); check("32x128");
  reset(); expect(emulate<P, 64, 64, 4, 4>(p, zc), "tile 64x64 writes each smem cell once"); check("64x64");
}

static std::mt19937 rng(7);
static std::vector<float> randv(size_t n, float s = 1.f) {
  std::normal_distribution<float> d(0.f, s);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Shape { int n, c, h, w, o, kh, kw, stride, pad; };

static Conv2dShape to_shape(const Shape& s) {
  Conv2dShape c{s.n, s.c, s.h, s.w, s.o, s.kh, s.kw, s.stride, s.pad, 0, 0};
  c.oh = (c.h + 2 * c.pad - c.kh) / c.stride + 1;
  c.ow = (c.w + 2 * c.pad - c.kw) / c.stride + 1;
  return c;
}

// direct conv in double; wsel(o,ci,r,s) selects weights (masked conv)
template <class Sel>
static std::vector<double> conv_ref(const Conv2dShape& s, const float* x, const float* w, Sel sel) {
  std::vector<double> y(size_t(s.n * s.o * s.oh * s.ow), 0.0);
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t o = 0; o < s.o; ++o)
      for (int64_t oy = 0; oy < s.oh; ++oy)
        for (int64_t ox = 0; ox < s.ow; ++ox) {
          double a = 0;
          for (int64_t ci = 0; ci < s.c; ++ci)
            for (int64_t r = 0; r < s.kh; ++r)
              for (int64_t q = 0; q < s.kw; ++q) {
                const int64_t iy = oy * s.stride - s.pad + r, ix = ox * s.stride - s.pad + q;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                const int64_t wi = ((o * s.c + ci) * s.kh + r) * s.kw + q;
                if (!sel(wi)) continue;
                a += double(w[wi]) * x[((i * s.c + ci) * s.h + iy) * s.w + ix];
              }
          y[((i * s.o + o) * s.oh + oy) * s.ow + ox] = a;
        }
  return y;
}

template <int KS>
static void check_conv(const Shape& sh) {
  const Conv2dShape s = to_shape(sh);
  const ConvDims d = conv_dims(s, "check");
  const std::string name = "conv n" + std::to_string(sh.n) + " c" + std::to_string(sh.c) + " " + std::to_string(sh.h) +
                           "x" + std::to_string(sh.w) + " o" + std::to_string(sh.o) + " k" + std::to_string(sh.kh) + "x" +
                           std::to_string(sh.kw) + " s" + std::to_string(sh.stride) + " p" + std::to_string(sh.pad) +
                           " KS" + std::to_string(KS);
  const auto x = randv(size_t(s.n * s.c * s.h * s.w)), w = randv(size_t(s.o * s.c * s.kh * s.kw)), b = randv(size_t(s.o));
  const auto dy = randv(size_t(s.n * s.o * s.oh * s.ow));
  const double tol = 1e-4 * std::sqrt(double(s.c * s.kh * s.kw));
  // forward (+bias)
  {
    std::vector<double> want = conv_ref(s, x.data(), w.data(), [](int64_t) { return true; });
    for (size_t i = 0; i < want.size(); ++i) want[i] += b[(i / size_t(s.oh * s.ow)) % size_t(s.o)];
    std::vector<float> y;
    ConvFwdP<KS> p{d.o, d.n * d.ohw, d.c * d.khw, d, x.data(), w.data(), b.data(), nullptr};
    emulate_all(p, 1, [&] { y.assign(want.size(), NAN); p.y = y.data(); },
                [&](const char* t) { expect_close(y, want, tol, 1e-5, name + " forward " + t); });
  }
  // backward-data: dx0 + sum
  {
    const auto dx0 = randv(size_t(s.n * s.c * s.h * s.w));
    std::vector<double> want(dx0.begin(), dx0.end());
    for (int64_t i = 0; i < s.n; ++i)
      for (int64_t o = 0; o < s.o; ++o)
        for (int64_t oy = 0; oy < s.oh; ++oy)
          for (int64_t ox = 0; ox < s.ow; ++ox)
            for (int64_t ci = 0; ci < s.c; ++ci)
              for (int64_t r = 0; r < s.kh; ++r)
                for (int64_t q = 0; q < s.kw; ++q) {
                  const int64_t iy = oy * s.stride - s.pad + r, ix = ox * s.stride - s.pad + q;
                  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                  want[size_t(((i * s.c + ci) * s.h + iy) * s.w + ix)] +=
                      double(dy[size_t(((i * s.o + o) * s.oh + oy) * s.ow + ox)]) * w[size_t(((o * s.c + ci) * s.kh + r) * s.kw + q)];
                }
    std::vector<float> dx;
    ConvBwdDataP<KS> p{d.c, d.n * d.hw, d.o * d.khw, d, dy.data(), w.data(), nullptr};
    emulate_all(p, 1, [&] { dx = dx0; p.dx = dx.data(); },
                [&](const char* t) { expect_close(dx, want, tol, 1e-5, name + " backward-data " + t); });
  }
  // backward-weight: dw0 + sum, with 1 and several k-splits (partials + fixed-order reduce)
  {
    const auto dw0 = randv(size_t(s.o * s.c * s.kh * s.kw));
    std::vector<double> want(dw0.begin(), dw0.end());
    for (int64_t i = 0; i < s.n; ++i)
      for (int64_t o = 0; o < s.o; ++o)
        for (int64_t oy = 0; oy < s.oh; ++oy)
          for (int64_t ox = 0; ox < s.ow; ++ox)
            for (int64_t ci = 0; ci < s.c; ++ci)
              for (int64_t r = 0; r < s.kh; ++r)
                for (int64_t q = 0; q < s.kw; ++q) {
                  const int64_t iy = oy * s.stride - s.pad + r, ix = ox * s.stride - s.pad + q;
                  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                  want[size_t(((o * s.c + ci) * s.kh + r) * s.kw + q)] +=
                      double(dy[size_t(((i * s.o + o) * s.oh + oy) * s.ow + ox)]) * x[size_t(((i * s.c + ci) * s.h + iy) * s.w + ix)];
                }
    const int M = d.o, N = d.c * d.khw, K = d.n * d.ohw;
    for (int want_splits : {1, 3, 7}) {
      int chunk = (K + want_splits - 1) / want_splits;
      chunk = (chunk + kTileK - 1) / kTileK * kTileK;
      const int splits = (K + chunk - 1) / chunk;
      std::vector<float> dw, part(size_t(splits) * M * N);
      ConvBwdWeightP p{M, N, K, chunk, d, x.data(), dy.data(), nullptr, part.data(), splits};
      emulate_all(p, splits, [&] { dw = dw0; p.dw = dw.data(); std::fill(part.begin(), part.end(), NAN); },
                  [&](const char* t) {
                    if (splits > 1)  // conv_wgrad_reduce_k
                      for (size_t i = 0; i < dw.size(); ++i) {
                        float acc = 0.f;
                        for (int z = 0; z < splits; ++z) acc += part[size_t(z) * dw.size() + i];
                        dw[i] += acc;
                      }
                    expect_close(dw, want, 1e-4 * std::sqrt(double(K)), 1e-5,
                                 name + " backward-weight splits " + std::to_string(splits) + " " + t);
                  });
    }
  }
}

template <int KS>
static void check_masked(const Shape& sh, int K, bool shared, bool residual, bool relu) {
  const Conv2dShape s = to_shape(sh);
  const ConvDims d = conv_dims(s, "check");
  const size_t per = size_t(s.n * s.c * s.h * s.w), ys = size_t(s.n * s.o * s.oh * s.ow);
  const auto x = randv((shared ? 1 : K) * per), w = randv(size_t(s.o * s.c * s.kh * s.kw));
  std::vector<uint8_t> mask(w.size());
  std::uniform_int_distribution<int> md(0, K + 1);
  for (auto& m : mask) m = uint8_t(md(rng));
  Steps st{};
  for (int k = 0; k < K; ++k) st.v[k] = k;  // model 0 has step 0: no weights
  const auto scale = randv(size_t(K * s.o)), shift = randv(size_t(K * s.o));
  const auto res = randv(K * ys);
  std::vector<double> want(K * ys);
  for (int k = 0; k < K; ++k) {
    const auto yk = conv_ref(s, x.data() + (shared ? 0 : k * per), w.data(),
                             [&](int64_t i) { return mask[size_t(i)] >= 1 && mask[size_t(i)] <= st.v[k]; });
    for (size_t i = 0; i < ys; ++i) {
      const size_t o = (i / size_t(s.oh * s.ow)) % size_t(s.o);
      double v = double(scale[k * s.o + o]) * yk[i] + shift[k * s.o + o];
      if (residual) v += res[k * ys + i];
      want[k * ys + i] = relu ? (v > 0 ? v : 0) : v;
    }
  }
  std::vector<float> y;
  MaskedConvP<KS> p{d.o, d.n * d.ohw, d.c * d.khw, d, x.data(), shared ? 0 : int64_t(per), w.data(), mask.data(), st,
                    scale.data(), shift.data(), residual ? res.data() : nullptr, relu, nullptr};
  const std::string name = "masked conv K" + std::to_string(K) + " c" + std::to_string(sh.c) + " o" +
                           std::to_string(sh.o) + " k" + std::to_string(sh.kh) + " s" + std::to_string(sh.stride) +
                           (shared ? " shared" : "") + (residual ? " +res" : "") + (relu ? " relu" : "");
  emulate_all(p, K, [&] { y.assign(want.size(), NAN); p.y = y.data(); },
              [&](const char* t) { expect_close(y, want, 1e-4 * std::sqrt(double(s.c * s.kh * s.kw)) * 4, 1e-5, name + " " + t); });
}

static void check_gemm(int M, int N, int K, bool ta, bool tb, float alpha, float beta, bool bias) {
  const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
  const auto A = randv(size_t((ta ? K : M) * lda)), B = randv(size_t((tb ? N : K) * ldb)), C0 = randv(size_t(M * ldc));
  const auto bv = randv(size_t(N));
  std::vector<double> want(C0.begin(), C0.end());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double a = 0;
      for (int k = 0; k < K; ++k)
        a += double(ta ? A[size_t(k * lda + m)] : A[size_t(m * lda + k)]) * (tb ? B[size_t(n * ldb + k)] : B[size_t(k * ldb + n)]);
      double v = alpha * a + (bias ? bv[n] : 0.0);
      want[size_t(m * ldc + n)] = beta == 0.f ? v : v + double(beta) * C0[size_t(m * ldc + n)];
    }
  std::vector<float> C;
  GemmP p{M, N, K, A.data(), lda, ta, B.data(), ldb, tb, nullptr, ldc, alpha, beta, bias ? bv.data() : nullptr};
  const std::string name = "gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
                           (ta ? " tA" : "") + (tb ? " tB" : "") + (bias ? " +bias" : "") + " beta " + std::to_string(beta);
  emulate_all(p, 1, [&] { C = C0; p.C = C.data(); },
              [&](const char* t) { expect_close(C, want, 1e-4 * std::sqrt(double(K)), 1e-5, name + " " + t); });
}

// FastDiv against integer division: all small divisors, edges, and random large ones
static void check_fastdiv() {
  std::mt19937 r(3);
  std::uniform_int_distribution<int> big(1, 0x7fffffff);
  long bad = 0, n = 0;
  auto one = [&](int d, int x) {
    ++n;
    if (FastDiv::make(d).div(x) != x / d) {
      if (bad++ < 5) std::printf("FAIL fastdiv %d / %d: %d vs %d\n", x, d, FastDiv::make(d).div(x), x / d);
    }
  };
  for (int d = 1; d <= 5000; ++d) {
    const FastDiv f = FastDiv::make(d);
    for (int x = 0; x < 3 * d + 5; ++x)
      if (f.div(x) != x / d && bad++ < 5) std::printf("FAIL fastdiv %d / %d\n", x, d);
    for (int x : {0x7fffffff, 0x7ffffffe, 0x40000000, (0x7fffffff / d) * d, (0x7fffffff / d) * d - 1}) one(d, x);
    for (int i = 0; i < 50; ++i) one(d, big(r));
  }
  for (int i = 0; i < 200000; ++i) one(big(r), big(r));
  for (int d : {0x7fffffff, 0x40000001, 0x40000000, 0x3fffffff, 65537, 65536}) {
    one(d, 0x7fffffff); one(d, d); one(d, d - 1); one(d, 0);
  }
  expect(bad == 0, "FastDiv equals integer division (" + std::to_string(n) + " random and edge cases + all x < 3d for d <= 5000)");
}

int main() {
  check_fastdiv();
  const Shape s3[] = {{2, 3, 9, 9, 4, 3, 3, 1, 1}, {3, 16, 17, 13, 32, 3, 3, 2, 1}, {1, 5, 7, 7, 70, 3, 3, 1, 0},
                      {2, 16, 8, 8, 16, 3, 3, 1, 1}, {1, 2, 5, 6, 3, 3, 3, 3, 2}};
  for (const Shape& s : s3) check_conv<3>(s);
  for (const Shape& s : s3) check_conv<0>(s);  // the generic path on the same shapes
  const Shape s1[] = {{2, 8, 8, 8, 64, 1, 1, 2, 0}, {3, 7, 5, 9, 20, 1, 1, 1, 0}};
  for (const Shape& s : s1) { check_conv<1>(s); check_conv<0>(s); }
  const Shape sg[] = {{2, 7, 11, 10, 9, 5, 3, 3, 2}, {1, 3, 6, 6, 5, 2, 2, 2, 1}};
  for (const Shape& s : sg) check_conv<0>(s);

  check_masked<3>({2, 3, 8, 8, 16, 3, 3, 1, 1}, 4, true, false, true);
  check_masked<3>({3, 16, 8, 8, 16, 3, 3, 1, 1}, 5, false, true, true);
  check_masked<3>({2, 16, 9, 9, 32, 3, 3, 2, 1}, 3, false, false, false);
  check_masked<0>({2, 6, 7, 7, 70, 3, 3, 1, 1}, 2, false, true, false);
  check_masked<1>({2, 16, 6, 6, 32, 1, 1, 2, 0}, 3, false, true, true);

  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm(37, 70, 45, ta, tb, 0.7f, -0.5f, false);
      check_gemm(5, 130, 17, ta, tb, 1.f, 0.f, true);
      check_gemm(130, 9, 64, ta, tb, 1.f, 1.f, false);
    }
  std::printf("index_check: CUDA index maps and tile mapping on the host\n");
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
