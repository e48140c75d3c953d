// m2kd conv/gemm/linear workbench (llm.c dev/ style).
//   ./wb                 validate every entry point at every ISA level vs double references
//   ./wb --bench [--isa scalar|avx2|avx512] [--threads N] [--runs R]
//                        JSON GFLOP/s for the ResNet-32 (batch 128) conv shapes
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "exec_pool.h"
#include "m2kd_kernels.h"

using m2kd::Conv2dShape;
using m2kd::Isa;
using std::vector;

// counts operator new calls, to check that warmed-up kernel calls do not heap-allocate
static std::atomic<long> g_news{0};
void* operator new(size_t n) {
  g_news++;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

static std::mt19937 rng(1234);
static vector<float> randv(size_t n) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
static const char* isa_name(Isa i) {
  return i == Isa::avx512 ? "avx512" : i == Isa::avx2 ? "avx2" : "scalar";
}
static int failures = 0, checks = 0;

// |got - ref| <= rtol * scale + atol, elementwise; scale = same computation on |inputs|.
static bool report(const std::string& name, const float* got, const vector<double>& ref,
                   const vector<double>& scale, double rtol = 2e-5) {
  double worst = 0;
  size_t bad = (size_t)-1;
  for (size_t i = 0; i < ref.size(); i++) {
    const double err = std::fabs((double)got[i] - ref[i]);
    const double lim = rtol * scale[i] + 1e-6;
    if (!(err <= lim)) {
      if (bad == (size_t)-1) bad = i;
    }
    if (scale[i] > 0) worst = std::max(worst, err / (scale[i] + 1e-30));
    if (std::isnan(got[i])) worst = INFINITY;
  }
  checks++;
  if (bad != (size_t)-1) {
    failures++;
    std::printf("not ok %s (first bad idx %zu: got %.7g want %.7g; worst rel %.3g)\n", name.c_str(),
                bad, got[bad], ref[bad], worst);
    return false;
  }
  std::printf("ok %s (worst rel %.2g)\n", name.c_str(), worst);
  return true;
}

// ---------------------------------------------------------------- references (double)
static void ref_gemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, double alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, double beta,
                     const float* C0, int64_t ldc, vector<double>& out, vector<double>& scale) {
  out.assign(M * ldc, 0);
  scale.assign(M * ldc, 0);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      if (j >= N) {  // untouched padding columns must be preserved
        out[i * ldc + j] = C0[i * ldc + j];
        continue;
      }
      double s = 0, sa = 0;
      for (int64_t k = 0; k < K; k++) {
        const double a = tA ? A[k * lda + i] : A[i * lda + k];
        const double b = tB ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
        sa += std::fabs(a * b);
      }
      const double c = beta == 0 ? 0 : beta * C0[i * ldc + j];
      out[i * ldc + j] = alpha * s + c;
      scale[i * ldc + j] = std::fabs(alpha) * sa + std::fabs(c);
    }
}

static void ref_conv_fwd(const Conv2dShape& s, const float* x, const float* w, const float* b,
                         vector<double>& y, vector<double>& sc) {
  y.assign(s.n * s.o * s.oh * s.ow, 0);
  sc.assign(y.size(), 0);
  for (int64_t n = 0; n < s.n; n++)
    for (int64_t o = 0; o < s.o; o++)
      for (int64_t oh = 0; oh < s.oh; oh++)
        for (int64_t ow = 0; ow < s.ow; ow++) {
          double acc = b ? b[o] : 0, aa = b ? std::fabs(b[o]) : 0;
          for (int64_t c = 0; c < s.c; c++)
            for (int64_t ki = 0; ki < s.kh; ki++)
              for (int64_t kj = 0; kj < s.kw; kj++) {
                const int64_t ih = oh * s.stride - s.pad + ki, iw = ow * s.stride - s.pad + kj;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                const double p = (double)x[((n * s.c + c) * s.h + ih) * s.w + iw] *
                                 w[((o * s.c + c) * s.kh + ki) * s.kw + kj];
                acc += p;
                aa += std::fabs(p);
              }
          const size_t idx = ((n * s.o + o) * s.oh + oh) * s.ow + ow;
          y[idx] = acc;
          sc[idx] = aa;
        }
}
// dx0 + conv^T(dy, w), dw0 + dy (x) x, db0 + sum dy
static void ref_conv_bwd(const Conv2dShape& s, const float* x, const float* w, const float* dy,
                         const float* dx0, const float* dw0, const float* db0, vector<double>& dx,
                         vector<double>& dxs, vector<double>& dw, vector<double>& dws,
                         vector<double>& db, vector<double>& dbs) {
  const size_t nx = s.n * s.c * s.h * s.w, nw = s.o * s.c * s.kh * s.kw;
  dx.assign(nx, 0);
  dxs.assign(nx, 0);
  dw.assign(nw, 0);
  dws.assign(nw, 0);
  db.assign(s.o, 0);
  dbs.assign(s.o, 0);
  for (int64_t n = 0; n < s.n; n++)
    for (int64_t o = 0; o < s.o; o++)
      for (int64_t oh = 0; oh < s.oh; oh++)
        for (int64_t ow = 0; ow < s.ow; ow++) {
          const double g = dy[((n * s.o + o) * s.oh + oh) * s.ow + ow];
          db[o] += g;
          dbs[o] += std::fabs(g);
          for (int64_t c = 0; c < s.c; c++)
            for (int64_t ki = 0; ki < s.kh; ki++)
              for (int64_t kj = 0; kj < s.kw; kj++) {
                const int64_t ih = oh * s.stride - s.pad + ki, iw = ow * s.stride - s.pad + kj;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                const size_t xi = ((n * s.c + c) * s.h + ih) * s.w + iw;
                const size_t wi = ((o * s.c + c) * s.kh + ki) * s.kw + kj;
                dx[xi] += g * w[wi];
                dxs[xi] += std::fabs(g * w[wi]);
                dw[wi] += g * x[xi];
                dws[wi] += std::fabs(g * x[xi]);
              }
        }
  for (size_t i = 0; i < nx; i++) dx[i] += dx0[i], dxs[i] += std::fabs(dx0[i]);
  for (size_t i = 0; i < nw; i++) dw[i] += dw0[i], dws[i] += std::fabs(dw0[i]);
  for (int64_t i = 0; i < s.o; i++) db[i] += db0[i], dbs[i] += std::fabs(db0[i]);
}

static Conv2dShape mk(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k,
                      int64_t stride, int64_t pad) {
  Conv2dShape s{n, c, h, w, o, k, k, stride, pad, 0, 0};
  s.oh = (h + 2 * pad - k) / stride + 1;
  s.ow = (w + 2 * pad - k) / stride + 1;
  return s;
}

// ---------------------------------------------------------------- validation
static void check_gemm(wb::PoolExec& ex, bool tA, bool tB, int64_t M, int64_t N, int64_t K,
                       float alpha, float beta, bool serial) {
  const int64_t lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
  auto A = randv((tA ? K : M) * lda + 1), B = randv((tB ? N : K) * ldb + 1), C = randv(M * ldc);
  vector<float> C0 = C;
  if (beta == 0.f)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = C0[i * ldc + j] = NAN;
  vector<double> ref, sc;
  ref_gemm(tA, tB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C0.data(), ldc, ref, sc);
  for (size_t i = 0; i < sc.size(); i++)
    if ((int64_t)(i % ldc) >= N) sc[i] = 0;
  if (serial) {
    float* pack = (float*)ex.scratch(7, sizeof(float) * m2kd::sgemm_pack_floats(M, N, K));
    m2kd::sgemm_serial(ex.isa(), tA, tB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta,
                       C.data(), ldc, pack);
  } else {
    m2kd::sgemm(ex, tA, tB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  }
  char name[200];
  std::snprintf(name, sizeof name, "%s %s t%d tA=%d tB=%d M=%lld N=%lld K=%lld alpha=%g beta=%g",
                serial ? "sgemm_serial" : "sgemm", isa_name(ex.isa()), ex.threads(), tA, tB,
                (long long)M, (long long)N, (long long)K, alpha, beta);
  report(name, C.data(), ref, sc);
}

static void check_conv(wb::PoolExec& ex, const Conv2dShape& s, bool with_bias) {
  const size_t nx = s.n * s.c * s.h * s.w, nw = s.o * s.c * s.kh * s.kw,
               ny = s.n * s.o * s.oh * s.ow;
  auto x = randv(nx), w = randv(nw), b = randv(s.o), dy = randv(ny);
  auto dx0 = randv(nx), dw0 = randv(nw), db0 = randv(s.o);
  char tag[200];
  std::snprintf(tag, sizeof tag, "%s t%d n=%lld c=%lld h=%lld w=%lld o=%lld k=%lld s=%lld p=%lld%s",
                isa_name(ex.isa()), ex.threads(), (long long)s.n, (long long)s.c, (long long)s.h,
                (long long)s.w, (long long)s.o, (long long)s.kh, (long long)s.stride,
                (long long)s.pad, with_bias ? " bias" : "");
  vector<double> ry, rys;
  ref_conv_fwd(s, x.data(), w.data(), with_bias ? b.data() : nullptr, ry, rys);
  vector<float> y(ny, NAN);
  m2kd::conv2d_forward(ex, s, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data());
  report(std::string("conv2d_forward ") + tag, y.data(), ry, rys);

  vector<double> rdx, rdxs, rdw, rdws, rdb, rdbs;
  ref_conv_bwd(s, x.data(), w.data(), dy.data(), dx0.data(), dw0.data(), db0.data(), rdx, rdxs,
               rdw, rdws, rdb, rdbs);
  vector<float> dx = dx0, dw = dw0, db = db0;
  m2kd::conv2d_backward_data(ex, s, dy.data(), w.data(), dx.data());
  report(std::string("conv2d_backward_data ") + tag, dx.data(), rdx, rdxs);
  m2kd::conv2d_backward_weight(ex, s, x.data(), dy.data(), dw.data(),
                               with_bias ? db.data() : nullptr);
  report(std::string("conv2d_backward_weight dw ") + tag, dw.data(), rdw, rdws);
  if (with_bias) {
    report(std::string("conv2d_backward_weight db ") + tag, db.data(), rdb, rdbs);
  } else {
    bool same = std::memcmp(db.data(), db0.data(), sizeof(float) * s.o) == 0;
    checks++;
    if (!same) failures++;
    std::printf("%s conv2d_backward_weight db=null untouched %s\n", same ? "ok" : "not ok", tag);
  }
}

static void check_linear(wb::PoolExec& ex, int64_t n, int64_t in, int64_t out, bool bias,
                         int mask) {
  auto x = randv(n * in), w = randv(out * in), b = randv(out), dy = randv(n * out);
  auto dx0 = randv(n * in), dw0 = randv(out * in), db0 = randv(out);
  char tag[160];
  std::snprintf(tag, sizeof tag, "%s t%d n=%lld in=%lld out=%lld%s mask=%d", isa_name(ex.isa()),
                ex.threads(), (long long)n, (long long)in, (long long)out, bias ? " bias" : "", mask);
  vector<double> ry(n * out), rys(n * out), rdx(n * in), rdxs(n * in), rdw(out * in),
      rdws(out * in), rdb(out), rdbs(out);
  for (int64_t i = 0; i < n; i++)
    for (int64_t o = 0; o < out; o++) {
      double s = bias ? b[o] : 0, sa = bias ? std::fabs(b[o]) : 0;
      for (int64_t k = 0; k < in; k++) {
        s += (double)x[i * in + k] * w[o * in + k];
        sa += std::fabs((double)x[i * in + k] * w[o * in + k]);
      }
      ry[i * out + o] = s;
      rys[i * out + o] = sa;
    }
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < in; k++) {
      double s = dx0[i * in + k], sa = std::fabs(dx0[i * in + k]);
      for (int64_t o = 0; o < out; o++) {
        s += (double)dy[i * out + o] * w[o * in + k];
        sa += std::fabs((double)dy[i * out + o] * w[o * in + k]);
      }
      rdx[i * in + k] = s;
      rdxs[i * in + k] = sa;
    }
  for (int64_t o = 0; o < out; o++) {
    for (int64_t k = 0; k < in; k++) {
      double s = dw0[o * in + k], sa = std::fabs(dw0[o * in + k]);
      for (int64_t i = 0; i < n; i++) {
        s += (double)dy[i * out + o] * x[i * in + k];
        sa += std::fabs((double)dy[i * out + o] * x[i * in + k]);
      }
      rdw[o * in + k] = s;
      rdws[o * in + k] = sa;
    }
    double s = db0[o], sa = std::fabs(db0[o]);
    for (int64_t i = 0; i < n; i++) s += dy[i * out + o], sa += std::fabs(dy[i * out + o]);
    rdb[o] = s;
    rdbs[o] = sa;
  }
  vector<float> y(n * out, NAN), dx = dx0, dw = dw0, db = db0;
  m2kd::linear_forward(ex, n, in, out, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
  report(std::string("linear_forward ") + tag, y.data(), ry, rys);
  m2kd::linear_backward(ex, n, in, out, x.data(), w.data(), dy.data(), (mask & 1) ? dx.data() : nullptr,
                        (mask & 2) ? dw.data() : nullptr, (mask & 4) ? db.data() : nullptr);
  auto check_or_same = [&](const char* what, bool on, vector<float>& got, vector<float>& init,
                           vector<double>& r, vector<double>& rs) {
    if (on) {
      report(std::string("linear_backward ") + what + " " + tag, got.data(), r, rs);
    } else {
      const bool same = got == init;
      checks++;
      if (!same) failures++;
      std::printf("%s linear_backward %s=null untouched %s\n", same ? "ok" : "not ok", what, tag);
    }
  };
  check_or_same("dx", mask & 1, dx, dx0, rdx, rdxs);
  check_or_same("dw", mask & 2, dw, dw0, rdw, rdws);
  check_or_same("db", mask & 4, db, db0, rdb, rdbs);
}

static int validate() {
  const Isa isas[] = {Isa::scalar, Isa::avx2, Isa::avx512};
  struct G { bool tA, tB; int64_t M, N, K; float alpha, beta; };
  const G gs[] = {
      {false, false, 1, 1, 1, 1.f, 0.f},     {false, false, 7, 5, 3, 1.f, 0.f},
      {true, false, 13, 33, 17, 0.5f, 1.f},  {false, true, 9, 70, 31, -1.f, 0.25f},
      {true, true, 17, 19, 300, 1.f, 0.f},   {false, false, 129, 65, 257, 1.f, 1.f},
      {true, false, 200, 1100, 20, 2.f, 0.f}, {false, true, 3, 1, 600, 1.f, -1.f},
      {false, false, 64, 64, 64, 1.f, 0.f},  {false, false, 5, 6, 0, 1.f, 0.5f},
      {true, true, 1, 40, 5, 0.f, 2.f},      {false, false, 1000, 7, 9, 1.f, 0.f},
  };
  const Conv2dShape cs[] = {
      mk(1, 1, 5, 5, 1, 3, 1, 1),   mk(2, 3, 7, 9, 5, 3, 2, 1),   mk(3, 2, 8, 8, 4, 1, 2, 0),
      mk(1, 3, 11, 11, 4, 7, 2, 3), mk(2, 16, 9, 7, 17, 3, 1, 1), mk(2, 5, 6, 6, 3, 1, 1, 0),
      mk(1, 4, 1, 1, 3, 3, 1, 1),   mk(3, 1, 5, 1, 2, 3, 1, 1),   mk(2, 8, 13, 13, 9, 3, 2, 1),
      mk(2, 3, 6, 7, 2, 3, 1, 0),   mk(2, 64, 5, 5, 40, 3, 1, 1), mk(1, 4, 6, 6, 150, 3, 1, 1),
      mk(1, 2, 40, 40, 3, 3, 1, 1), mk(2, 130, 4, 4, 3, 3, 1, 1), mk(3, 3, 32, 32, 16, 3, 1, 1),
      mk(5, 32, 8, 8, 64, 3, 2, 1), mk(1, 1, 2, 2, 1, 1, 1, 0),   mk(4, 6, 9, 9, 8, 1, 2, 0),
      mk(2, 5, 16, 16, 7, 3, 1, 1), mk(2, 9, 3, 16, 5, 1, 1, 0),  mk(1, 3, 5, 32, 4, 7, 1, 3),
      mk(2, 4, 6, 18, 3, 3, 1, 0),  mk(3, 17, 4, 48, 9, 3, 1, 1), mk(1, 8, 3, 24, 8, 5, 1, 2),
      mk(2, 3, 9, 70, 5, 3, 2, 1),  mk(1, 2, 5, 67, 3, 5, 2, 2),  mk(2, 3, 7, 45, 4, 1, 3, 0),
      mk(2, 3, 11, 12, 4, 3, 5, 1), mk(1, 2, 9, 9, 3, 2, 1, 0),   mk(2, 4, 8, 8, 5, 2, 2, 0),
      mk(2, 64, 7, 9, 8, 3, 1, 1),  mk(1, 64, 5, 6, 64, 3, 1, 1), mk(2, 32, 6, 7, 32, 3, 1, 1),
      mk(3, 64, 8, 8, 64, 3, 1, 1), mk(2, 16, 9, 13, 128, 3, 2, 1),
      // direct strided backward-data (by input phase): odd sizes, pads 0..3, k 1/3/5/7, S 2..4,
      // channel-vectorised narrow phases, empty column phase (w=1)
      mk(1, 1, 9, 9, 3, 3, 2, 1),     mk(2, 16, 33, 35, 20, 3, 2, 1), mk(1, 16, 32, 32, 17, 3, 2, 0),
      mk(2, 16, 34, 34, 5, 3, 2, 2),  mk(1, 16, 36, 37, 7, 3, 2, 3),  mk(2, 16, 40, 40, 9, 7, 2, 3),
      mk(1, 16, 33, 33, 6, 1, 2, 0),  mk(2, 64, 16, 16, 32, 3, 2, 1), mk(1, 128, 15, 15, 16, 3, 2, 1),
      mk(2, 8, 64, 64, 4, 5, 4, 2),   mk(1, 16, 20, 1, 3, 3, 2, 1),   mk(2, 16, 64, 33, 5, 3, 3, 1),
      mk(3, 32, 32, 32, 16, 3, 2, 1), mk(1, 20, 32, 34, 3, 2, 2, 0),  mk(2, 96, 13, 11, 7, 3, 2, 1),
      mk(1, 32, 16, 16, 64, 3, 2, 1),
      // 8-wide rows through the 8-position x 2-channel-vector tile (forward and stride-1
      // backward-data), one-pass stride-2 phase split (incl. > 8 column blocks), backward-weight
      // vector partial sums (o % 32 != 0): odd sizes, n=1, c=1, pads 0..3, k 1/3/7, S 1/2/3
      mk(2, 5, 7, 8, 64, 3, 1, 1),    mk(1, 3, 15, 15, 128, 3, 2, 1), mk(2, 1, 8, 8, 64, 1, 1, 0),
      mk(1, 64, 10, 10, 64, 3, 1, 0), mk(2, 64, 9, 8, 7, 3, 1, 1),    mk(1, 2, 3, 262, 3, 3, 2, 1),
      mk(2, 3, 5, 300, 4, 7, 2, 3),   mk(1, 1, 17, 17, 24, 3, 1, 1),  mk(3, 16, 32, 32, 16, 3, 1, 1),
      mk(2, 16, 31, 33, 20, 3, 2, 1), mk(1, 7, 12, 12, 16, 7, 3, 2),  mk(2, 16, 11, 13, 48, 1, 2, 0),
      mk(1, 64, 16, 16, 64, 3, 2, 3), mk(2, 32, 17, 17, 64, 3, 2, 2),
  };
  // 5 and 11 workers: more than conv2d's old 3 and SGEMM's old 8 scratch slots (no thread cap)
  for (int threads : {1, 2, 5, 11}) {
    for (Isa isa : isas) {
      wb::PoolExec ex(isa, threads);
      for (const G& g : gs)
        for (bool serial : {false, true}) {
          if (serial && threads > 1) continue;
          check_gemm(ex, g.tA, g.tB, g.M, g.N, g.K, g.alpha, g.beta, serial);
        }
      int i = 0;
      for (const Conv2dShape& s : cs) check_conv(ex, s, (i++ % 2) == 0);
      check_linear(ex, 1, 1, 1, true, 7);
      check_linear(ex, 5, 7, 3, false, 7);
      check_linear(ex, 128, 64, 10, true, 7);
      check_linear(ex, 33, 100, 65, true, 1 | 4);
      check_linear(ex, 17, 300, 100, false, 2);
      check_linear(ex, 4, 9, 6, true, 0);
    }
  }
  // no heap allocation once scratch is warm (2 threads, avx512, a ResNet-like shape + gemm)
  {
    wb::PoolExec ex(Isa::avx512, 2);
    const Conv2dShape s = mk(4, 16, 16, 16, 32, 3, 2, 1);
    auto x = randv(s.n * s.c * s.h * s.w), w = randv(s.o * s.c * 9), b = randv(s.o),
         dy = randv(s.n * s.o * s.oh * s.ow);
    vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(s.o), C(64 * 64);
    auto A = randv(64 * 200), B = randv(200 * 64);
    auto run = [&] {
      m2kd::conv2d_forward(ex, s, x.data(), w.data(), b.data(), y.data());
      m2kd::conv2d_backward_data(ex, s, dy.data(), w.data(), dx.data());
      m2kd::conv2d_backward_weight(ex, s, x.data(), dy.data(), dw.data(), db.data());
      m2kd::sgemm(ex, false, true, 64, 64, 200, 1.f, A.data(), 200, B.data(), 200, 0.f, C.data(), 64);
      m2kd::linear_forward(ex, 64, 200, 64, A.data(), B.data(), b.data(), C.data());
    };
    run();
    const long before = g_news.load();
    run();
    const long delta = g_news.load() - before;
    checks++;
    if (delta != 0) failures++;
    std::printf("%s no heap allocation in warmed-up conv/gemm/linear calls (%ld operator new)\n",
                delta == 0 ? "ok" : "not ok", delta);
  }
  std::printf("# %d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- bench
static double g_best = 0;
template <class F>
static double median_seconds(int runs, F&& f) {
  for (int i = 0; i < 3; i++) f();
  vector<double> t;
  for (int i = 0; i < runs; i++) {
    auto a = std::chrono::steady_clock::now();
    f();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  g_best = t[0];
  return t[t.size() / 2];
}

static std::string g_only;
static int bench(Isa isa, int threads, int runs) {
  wb::PoolExec ex(isa, threads);
  struct S { const char* name; Conv2dShape s; };
  const S shapes[] = {
      {"c3_o16_32x32_s1", mk(128, 3, 32, 32, 16, 3, 1, 1)},
      {"c1_o16_28x28_s1", mk(128, 1, 28, 28, 16, 3, 1, 1)},
      {"c16_o16_32x32_s1", mk(128, 16, 32, 32, 16, 3, 1, 1)},
      {"c16_o32_32x32_s2", mk(128, 16, 32, 32, 32, 3, 2, 1)},
      {"c32_o32_16x16_s1", mk(128, 32, 16, 16, 32, 3, 1, 1)},
      {"c32_o64_16x16_s2", mk(128, 32, 16, 16, 64, 3, 2, 1)},
      {"c64_o64_8x8_s1", mk(128, 64, 8, 8, 64, 3, 1, 1)},
  };
  std::printf("{\"isa\": \"%s\", \"threads\": %d, \"runs\": %d, \"unit\": \"GFLOP/s\", \"shapes\": [\n",
              isa_name(isa), threads, runs);
  double tot_ms = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const Conv2dShape& s = shapes[si].s;
    if (!g_only.empty() && std::string(shapes[si].name).find(g_only) == std::string::npos) continue;
    const size_t nx = s.n * s.c * s.h * s.w, nw = s.o * s.c * s.kh * s.kw,
                 ny = s.n * s.o * s.oh * s.ow;
    auto x = randv(nx), w = randv(nw), b = randv(s.o), dy = randv(ny);
    vector<float> y(ny), dx(nx, 0.f), dw(nw, 0.f), db(s.o, 0.f);
    const double flops = 2.0 * s.n * s.o * s.oh * s.ow * s.c * s.kh * s.kw;
    const double tf = median_seconds(runs, [&] { m2kd::conv2d_forward(ex, s, x.data(), w.data(), b.data(), y.data()); });
    const double bf = g_best;
    const double td = median_seconds(runs, [&] { m2kd::conv2d_backward_data(ex, s, dy.data(), w.data(), dx.data()); });
    const double bd = g_best;
    const double tw = median_seconds(runs, [&] { m2kd::conv2d_backward_weight(ex, s, x.data(), dy.data(), dw.data(), db.data()); });
    const double bw = g_best;
    tot_ms += 1e3 * (tf + td + tw);
    std::printf("  {\"shape\": \"%s\", \"fwd\": %.1f, \"bwd_data\": %.1f, \"bwd_weight\": %.1f, "
                "\"ms_fwd\": %.3f, \"ms_bwd_data\": %.3f, \"ms_bwd_weight\": %.3f, "
                "\"best_fwd\": %.1f, \"best_bwd_data\": %.1f, \"best_bwd_weight\": %.1f}%s\n",
                shapes[si].name, flops / tf * 1e-9, flops / td * 1e-9, flops / tw * 1e-9, tf * 1e3,
                td * 1e3, tw * 1e3, flops / bf * 1e-9, flops / bd * 1e-9, flops / bw * 1e-9, si + 1 < sizeof shapes / sizeof shapes[0] ? "," : "");
  }
  // raw sgemm throughput for reference
  const int64_t M = 512, N = 512, K = 512;
  auto A = randv(M * K), B = randv(K * N);
  vector<float> C(M * N);
  const double tg = median_seconds(runs, [&] {
    m2kd::sgemm(ex, false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N);
  });
  std::printf("], \"sgemm_512\": %.1f, \"sum_ms_listed_convs\": %.3f}\n", 2.0 * M * N * K / tg * 1e-9, tot_ms);
  return 0;
}

int main(int argc, char** argv) {
  bool do_bench = false;
  Isa isa = Isa::avx512;
  int threads = 2, runs = 20;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--bench") do_bench = true;
    else if (a == "--isa" && i + 1 < argc) {
      std::string v = argv[++i];
      isa = v == "scalar" ? Isa::scalar : v == "avx2" ? Isa::avx2 : Isa::avx512;
    } else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) g_only = argv[++i];
  }
  return do_bench ? bench(isa, threads, runs) : validate();
}
