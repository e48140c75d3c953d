// Workbench for the non-GEMM CPU kernels (batchnorm, elementwise, shortcut, pool, loss,
// columns, sgd), in the spirit of llm.c's dev/: a plain double-precision reference for every
// entry point, validated at every ISA level on awkward shapes; `--bench` prints JSON timings
// for batch norm at the ResNet-32 shapes. Not part of the addon build (see build_ops.sh).
//
//   ./ops_bench            validate (one "ok"/"not ok" line per check, exit 1 on failure)
//   ./ops_bench --bench    JSON lines: BN forward-train+relu and backward, median of 25
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "exec_pool.h"
#include "m2kd_kernels.h"

using namespace m2kd;

// Exec: the workbench pool shared with the GEMM/conv workbench (exec_pool.h).
class PoolExec final : public wb::PoolExec {
 public:
  explicit PoolExec(int threads) : wb::PoolExec(Isa::avx512, threads) {}
};

// ------------------------------------------------------------------------------------------
static int g_fail = 0, g_checks = 0;
static std::mt19937_64 rng(1234);
static std::vector<float> randv(int64_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v((size_t)n);
  for (auto& x : v) x = d(rng);
  return v;
}
static void report(bool ok, const std::string& name, double maxerr) {
  ++g_checks;
  if (!ok) ++g_fail;
  std::printf("%s %s (max err %.3g)\n", ok ? "ok" : "not ok", name.c_str(), maxerr);
}
// |got - ref| <= atol + rtol |ref| elementwise; NaN/Inf in got always fails
static void check(const std::string& name, const float* got, const std::vector<double>& ref,
                  double atol = 1e-5, double rtol = 1e-4) {
  double me = 0.0;
  bool ok = true;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = ref[i];
    if (!std::isfinite(g)) { ok = false; me = INFINITY; continue; }
    const double e = std::fabs(g - r);
    me = std::max(me, e);
    if (e > atol + rtol * std::fabs(r)) ok = false;
  }
  report(ok, name, me);
}
static void check_scalar(const std::string& name, double got, double ref, double atol, double rtol) {
  const double e = std::fabs(got - ref);
  report(std::isfinite(got) && e <= atol + rtol * std::fabs(ref), name, e);
}
static std::vector<double> todouble(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
static const char* isa_name(Isa i) { return i == Isa::avx512 ? "avx512" : i == Isa::avx2 ? "avx2" : "scalar"; }
static std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
static std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ------------------------------------------------------------------------------------------
// batch norm
struct BnRef { std::vector<double> y, mean, invstd, rm, rv; };
static BnRef ref_bn_train(int64_t n, int64_t c, int64_t hw, const std::vector<float>& x, const float* gamma,
                          const float* beta, double eps, double mom, const std::vector<float>& rm0,
                          const std::vector<float>& rv0, bool relu) {
  BnRef r;
  r.y.resize(x.size()); r.mean.resize(c); r.invstd.resize(c); r.rm.resize(c); r.rv.resize(c);
  const double N = (double)(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) for (int64_t j = 0; j < hw; ++j) s += x[(i * c + ch) * hw + j];
    const double m = s / N;
    double q = 0;
    for (int64_t i = 0; i < n; ++i) for (int64_t j = 0; j < hw; ++j) { double d = x[(i * c + ch) * hw + j] - m; q += d * d; }
    const double var = q / N, is = 1.0 / std::sqrt(var + eps);
    r.mean[ch] = m; r.invstd[ch] = is;
    r.rm[ch] = (1 - mom) * rm0[ch] + mom * m;
    r.rv[ch] = (1 - mom) * rv0[ch] + mom * (N > 1 ? q / (N - 1) : var);
    const double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
    for (int64_t i = 0; i < n; ++i) for (int64_t j = 0; j < hw; ++j) {
      const int64_t k = (i * c + ch) * hw + j;
      double v = (x[k] - m) * is * g + b;
      r.y[k] = relu && v < 0 ? 0.0 : v;
    }
  }
  return r;
}

static void test_bn(PoolExec& ex, int64_t n, int64_t c, int64_t hw, bool relu, bool nulls, float offset) {
  const std::string tag = fmt("[%s n=%lld c=%lld hw=%lld relu=%d nulls=%d off=%g]", isa_name(ex.isa()),
                              (long long)n, (long long)c, (long long)hw, relu, nulls, offset);
  const int64_t N = n * c * hw;
  auto x = randv(N, -2.f, 2.f);
  auto gamma = randv(c, 0.5f, 1.5f), beta = randv(c, -0.5f, 0.5f);
  // per-channel shifts and scales to exercise the stats
  for (int64_t i = 0; i < n; ++i) for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t j = 0; j < hw; ++j) x[(i * c + ch) * hw + j] = x[(i * c + ch) * hw + j] * (1.f + ch % 3) + offset + 0.1f * ch;
  auto rm = randv(c), rv = randv(c, 0.5f, 2.f);
  const float eps = 1e-5f, mom = 0.1f;
  const float* gp = nulls ? nullptr : gamma.data();
  const float* bp = nulls ? nullptr : beta.data();
  BnRef r = ref_bn_train(n, c, hw, x, gp, bp, eps, mom, rm, rv, relu);
  std::vector<float> y(N, NAN), sm(c), si(c), rmk = rm, rvk = rv;
  batchnorm2d_forward_train(ex, n, c, hw, x.data(), gp, bp, eps, mom, nulls ? nullptr : rmk.data(),
                            nulls ? nullptr : rvk.data(), sm.data(), si.data(), relu, y.data());
  // normalised values carry the float rounding of (x - mean) relative to the spread
  const double tol = 2e-5 * (1.0 + std::fabs(offset));
  check("bn_fwd_train y " + tag, y.data(), r.y, tol, 1e-4);
  check("bn_fwd_train mean " + tag, sm.data(), r.mean, 1e-5, 1e-5);
  check("bn_fwd_train invstd " + tag, si.data(), r.invstd, 1e-5, 1e-4);
  if (!nulls) {
    check("bn_fwd_train running_mean " + tag, rmk.data(), r.rm, 1e-5, 1e-5);
    check("bn_fwd_train running_var " + tag, rvk.data(), r.rv, 1e-5, 1e-4);
  } else {
    bool same = std::memcmp(rmk.data(), rm.data(), c * 4) == 0 && std::memcmp(rvk.data(), rv.data(), c * 4) == 0;
    report(same, "bn_fwd_train null running untouched " + tag, 0);
  }

  // eval (uses running stats rm/rv as given)
  {
    std::vector<double> ye(N);
    for (int64_t i = 0; i < n; ++i) for (int64_t ch = 0; ch < c; ++ch) for (int64_t j = 0; j < hw; ++j) {
      const int64_t k = (i * c + ch) * hw + j;
      double v = (x[k] - (double)rm[ch]) / std::sqrt((double)rv[ch] + eps) * (gp ? gp[ch] : 1.0) + (bp ? bp[ch] : 0.0);
      ye[k] = relu && v < 0 ? 0 : v;
    }
    std::vector<float> yk(N, NAN);
    batchnorm2d_forward_eval(ex, n, c, hw, x.data(), gp, bp, rm.data(), rv.data(), eps, relu, yk.data());
    check("bn_fwd_eval y " + tag, yk.data(), ye, tol + 1e-5 * std::fabs(offset) / 0.7, 1e-4);
  }

  // backward: dx, dgamma, dbeta accumulate into non-zero buffers
  auto dy = randv(N);
  auto dx0 = randv(N), dg0 = randv(c), db0 = randv(c);
  std::vector<double> rdx = todouble(dx0), rdg = todouble(dg0), rdb = todouble(db0);
  const double Nc = (double)(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double m = sm[ch], is = si[ch], g = gp ? gp[ch] : 1.0;
    double sdy = 0, sdyx = 0;
    auto dyp = [&](int64_t k) { return relu && !(y[k] > 0) ? 0.0 : (double)dy[k]; };
    for (int64_t i = 0; i < n; ++i) for (int64_t j = 0; j < hw; ++j) {
      const int64_t k = (i * c + ch) * hw + j;
      sdy += dyp(k); sdyx += dyp(k) * (x[k] - m) * is;
    }
    rdg[ch] += sdyx; rdb[ch] += sdy;
    for (int64_t i = 0; i < n; ++i) for (int64_t j = 0; j < hw; ++j) {
      const int64_t k = (i * c + ch) * hw + j;
      rdx[k] += g * is * (dyp(k) - sdy / Nc - (x[k] - m) * is * sdyx / Nc);
    }
  }
  std::vector<float> dx = dx0, dg = dg0, db = db0;
  batchnorm2d_backward(ex, n, c, hw, x.data(), y.data(), dy.data(), gp, sm.data(), si.data(), relu, dx.data(),
                       nulls ? nullptr : dg.data(), nulls ? nullptr : db.data());
  check("bn_backward dx " + tag, dx.data(), rdx, 2e-5, 1e-4);
  if (!nulls) {
    const double sc = std::sqrt(Nc);
    check("bn_backward dgamma " + tag, dg.data(), rdg, 2e-5 * sc, 1e-4);
    check("bn_backward dbeta " + tag, db.data(), rdb, 2e-5 * sc, 1e-4);
  }
}

// ------------------------------------------------------------------------------------------
static void test_elementwise(PoolExec& ex, int64_t n) {
  const std::string tag = fmt("[%s count=%lld]", isa_name(ex.isa()), (long long)n);
  auto x = randv(n, -3, 3), z = randv(n, -3, 3), acc = randv(n);
  std::vector<double> r(n);
  std::vector<float> y(n, NAN);
  relu_forward(ex, n, x.data(), y.data());
  for (int64_t i = 0; i < n; ++i) r[i] = x[i] > 0 ? x[i] : 0;
  check("relu_forward " + tag, y.data(), r, 0, 0);
  std::vector<float> dx = acc;
  relu_backward(ex, n, x.data(), z.data(), dx.data());
  for (int64_t i = 0; i < n; ++i) r[i] = (double)acc[i] + (x[i] > 0 ? z[i] : 0);
  check("relu_backward " + tag, dx.data(), r, 1e-6, 1e-6);
  y.assign(n, NAN);
  axpby(ex, n, 0.75f, x.data(), -1.25f, z.data(), y.data());
  for (int64_t i = 0; i < n; ++i) r[i] = 0.75 * x[i] - 1.25 * z[i];
  check("axpby " + tag, y.data(), r, 1e-6, 1e-6);
  std::vector<float> za = z;  // z aliases y
  axpby(ex, n, 2.f, x.data(), 0.5f, za.data(), za.data());
  for (int64_t i = 0; i < n; ++i) r[i] = 2.0 * x[i] + 0.5 * z[i];
  check("axpby z==y " + tag, za.data(), r, 1e-6, 1e-6);
  std::vector<float> xa = x;  // x aliases y
  axpby(ex, n, -1.f, xa.data(), 3.f, z.data(), xa.data());
  for (int64_t i = 0; i < n; ++i) r[i] = -1.0 * x[i] + 3.0 * z[i];
  check("axpby x==y " + tag, xa.data(), r, 1e-6, 1e-6);
  y.assign(n, NAN);
  mul_forward(ex, n, x.data(), z.data(), y.data());
  for (int64_t i = 0; i < n; ++i) r[i] = (double)x[i] * z[i];
  check("mul_forward " + tag, y.data(), r, 1e-6, 1e-6);
  y.assign(n, NAN);
  affine_scalar(ex, n, x.data(), -0.3f, 7.f, y.data());
  for (int64_t i = 0; i < n; ++i) r[i] = -0.3 * x[i] + 7.0;
  check("affine_scalar " + tag, y.data(), r, 1e-6, 1e-6);
  y.assign(n, NAN);
  fill(ex, n, 2.5f, y.data());
  for (int64_t i = 0; i < n; ++i) r[i] = 2.5;
  check("fill " + tag, y.data(), r, 0, 0);
  // sigmoid on a wide range incl. large magnitudes
  auto xs = randv(n, -30, 30);
  const float specials[] = {0.f, -0.f, 1e4f, -1e4f, 88.f, -88.f, 89.f, -90.f, 100.f, -100.f, 1e-8f, -87.5f, 87.5f};
  for (int64_t i = 0; i < n && i < 13; ++i) xs[(i * 7919) % n] = specials[i];
  y.assign(n, NAN);
  sigmoid_forward(ex, n, xs.data(), y.data());
  for (int64_t i = 0; i < n; ++i) r[i] = 1.0 / (1.0 + std::exp(-(double)xs[i]));
  check("sigmoid_forward " + tag, y.data(), r, 1e-7, 2e-6);
  dx = acc;
  sigmoid_backward(ex, n, y.data(), z.data(), dx.data());
  for (int64_t i = 0; i < n; ++i) r[i] = (double)acc[i] + (double)z[i] * y[i] * (1.0 - y[i]);
  check("sigmoid_backward " + tag, dx.data(), r, 1e-6, 1e-6);
  double s = sum_all(ex, n, x.data()), rs = 0, ra = 0;
  for (int64_t i = 0; i < n; ++i) { rs += x[i]; ra += std::fabs(x[i]); }
  check_scalar("sum_all " + tag, s, rs, 1e-12 + 1e-6 * ra, 0);
  dx = acc;
  add_scalar_inplace(ex, n, -0.125f, dx.data());
  for (int64_t i = 0; i < n; ++i) r[i] = (double)acc[i] - 0.125;
  check("add_scalar_inplace " + tag, dx.data(), r, 1e-6, 1e-6);
}

// ------------------------------------------------------------------------------------------
static void test_shortcut(PoolExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t st, int64_t pb, int64_t pa) {
  const std::string tag = fmt("[%s n=%lld c=%lld h=%lld w=%lld s=%lld pad=%lld,%lld]", isa_name(ex.isa()), (long long)n,
                              (long long)c, (long long)h, (long long)w, (long long)st, (long long)pb, (long long)pa);
  const int64_t oh = (h + st - 1) / st, ow = (w + st - 1) / st, oc = c + pb + pa;
  auto x = randv(n * c * h * w);
  std::vector<double> r(n * oc * oh * ow, 0.0);
  for (int64_t i = 0; i < n; ++i) for (int64_t ch = 0; ch < c; ++ch) for (int64_t a = 0; a < oh; ++a) for (int64_t b = 0; b < ow; ++b)
    r[((i * oc + ch + pb) * oh + a) * ow + b] = x[((i * c + ch) * h + a * st) * w + b * st];
  std::vector<float> y(r.size(), NAN);
  shortcut_a_forward(ex, n, c, h, w, st, pb, pa, x.data(), y.data());
  check("shortcut_a_forward " + tag, y.data(), r, 0, 0);
  auto dy = randv(r.size()), dx0 = randv(x.size());
  std::vector<double> rdx = todouble(dx0);
  for (int64_t i = 0; i < n; ++i) for (int64_t ch = 0; ch < c; ++ch) for (int64_t a = 0; a < oh; ++a) for (int64_t b = 0; b < ow; ++b)
    rdx[((i * c + ch) * h + a * st) * w + b * st] += dy[((i * oc + ch + pb) * oh + a) * ow + b];
  std::vector<float> dx = dx0;
  shortcut_a_backward(ex, n, c, h, w, st, pb, pa, dy.data(), dx.data());
  check("shortcut_a_backward " + tag, dx.data(), rdx, 1e-6, 1e-6);
}

static void test_pool(PoolExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t st, int64_t pad) {
  const std::string tag = fmt("[%s n=%lld c=%lld h=%lld w=%lld k=%lld s=%lld p=%lld]", isa_name(ex.isa()), (long long)n,
                              (long long)c, (long long)h, (long long)w, (long long)k, (long long)st, (long long)pad);
  const int64_t hw = h * w, P = n * c;
  auto x = randv(P * hw, -5, 5);
  for (int64_t i = 0; i < P * hw; i += 5) x[i] = -3.f;  // ties
  // global average
  std::vector<double> r(P);
  for (int64_t p = 0; p < P; ++p) { double s = 0; for (int64_t j = 0; j < hw; ++j) s += x[p * hw + j]; r[p] = s / hw; }
  std::vector<float> y(P, NAN);
  global_avg_pool_forward(ex, n, c, hw, x.data(), y.data());
  check("global_avg_pool_forward " + tag, y.data(), r, 1e-6, 1e-6);
  auto gy = randv(P), dx0 = randv(P * hw);
  std::vector<double> rdx = todouble(dx0);
  for (int64_t p = 0; p < P; ++p) for (int64_t j = 0; j < hw; ++j) rdx[p * hw + j] += (double)gy[p] / hw;
  std::vector<float> dx = dx0;
  global_avg_pool_backward(ex, n, c, hw, gy.data(), dx.data());
  check("global_avg_pool_backward " + tag, dx.data(), rdx, 1e-6, 1e-6);
  // max pool (first max wins on ties, padding never wins)
  Pool2dShape s{n, c, h, w, k, st, pad, (h + 2 * pad - k) / st + 1, (w + 2 * pad - k) / st + 1};
  const int64_t O = s.oh * s.ow;
  std::vector<double> ry(P * O);
  std::vector<int32_t> ra(P * O);
  for (int64_t p = 0; p < P; ++p) for (int64_t a = 0; a < s.oh; ++a) for (int64_t b = 0; b < s.ow; ++b) {
    double best = -INFINITY; int32_t bi = -1;
    for (int64_t u = 0; u < k; ++u) for (int64_t v = 0; v < k; ++v) {
      const int64_t iy = a * st - pad + u, ix = b * st - pad + v;
      if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
      if (bi < 0 || x[p * hw + iy * w + ix] > best) { best = x[p * hw + iy * w + ix]; bi = (int32_t)(iy * w + ix); }
    }
    ry[p * O + a * s.ow + b] = best; ra[p * O + a * s.ow + b] = bi;
  }
  std::vector<float> my(P * O, NAN);
  std::vector<int32_t> am(P * O, -7);
  max_pool2d_forward(ex, s, x.data(), my.data(), am.data());
  check("max_pool2d_forward " + tag, my.data(), ry, 0, 0);
  report(am == ra, "max_pool2d_forward argmax " + tag, 0);
  auto gm = randv(P * O);
  rdx = todouble(dx0);
  for (int64_t p = 0; p < P; ++p) for (int64_t o = 0; o < O; ++o) rdx[p * hw + ra[p * O + o]] += gm[p * O + o];
  dx = dx0;
  max_pool2d_backward(ex, s, gm.data(), ra.data(), dx.data());
  check("max_pool2d_backward " + tag, dx.data(), rdx, 1e-6, 1e-6);
}

// ------------------------------------------------------------------------------------------
static void test_losses(PoolExec& ex, int64_t n, int64_t m, float scale) {
  const std::string tag = fmt("[%s n=%lld m=%lld |x|<=%g]", isa_name(ex.isa()), (long long)n, (long long)m, scale);
  const int64_t N = n * m;
  auto x = randv(N, -scale, scale), t = randv(N, 0, 1);
  if (N > 3) { x[0] = 1e4f; x[1] = -1e4f; x[2] = 0.f; t[0] = 0.f; t[1] = 1.f; }
  const double denom = (double)n;
  double rl = 0;
  for (int64_t i = 0; i < N; ++i) { double xv = x[i]; rl += std::max(xv, 0.0) - xv * t[i] + std::log1p(std::exp(-std::fabs(xv))); }
  rl /= denom;
  double l = bce_logits_forward(ex, N, x.data(), t.data(), denom);
  check_scalar("bce_logits_forward " + tag, l, rl, 1e-9, 1e-9);
  auto dx0 = randv(N);
  std::vector<double> rdx(N);
  const double sc = 0.37 / denom;
  for (int64_t i = 0; i < N; ++i) rdx[i] = dx0[i] + sc * (1.0 / (1.0 + std::exp(-(double)x[i])) - t[i]);
  std::vector<float> dx = dx0;
  bce_logits_backward(ex, N, x.data(), t.data(), sc, dx.data());
  check("bce_logits_backward " + tag, dx.data(), rdx, 1e-6, 1e-5);

  std::vector<int32_t> lab(n);
  for (int64_t i = 0; i < n; ++i) lab[i] = (int32_t)((i * 7 + 3) % m);
  std::vector<double> rp(N);
  double rce = 0;
  for (int64_t i = 0; i < n; ++i) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < m; ++j) mx = std::max(mx, (double)x[i * m + j]);
    double s = 0;
    for (int64_t j = 0; j < m; ++j) s += std::exp(x[i * m + j] - mx);
    for (int64_t j = 0; j < m; ++j) rp[i * m + j] = std::exp(x[i * m + j] - mx) / s;
    rce += mx + std::log(s) - x[i * m + lab[i]];
  }
  rce /= n;
  std::vector<float> p(N, NAN);
  double ce = softmax_ce_forward(ex, n, m, x.data(), lab.data(), p.data());
  check_scalar("softmax_ce_forward loss " + tag, ce, rce, 1e-6, 1e-6);
  check("softmax_ce_forward p " + tag, p.data(), rp, 1e-7, 1e-5);
  dx = dx0;
  const double sc2 = 1.0 / n;
  for (int64_t i = 0; i < N; ++i) rdx[i] = dx0[i] + sc2 * p[i];
  for (int64_t i = 0; i < n; ++i) rdx[i * m + lab[i]] -= sc2;
  softmax_ce_backward(ex, n, m, p.data(), lab.data(), sc2, dx.data());
  check("softmax_ce_backward " + tag, dx.data(), rdx, 1e-6, 1e-6);
}

// ------------------------------------------------------------------------------------------
static void test_columns(PoolExec& ex, int64_t rows, int64_t cols) {
  const std::string tag = fmt("[%s rows=%lld cols=%lld]", isa_name(ex.isa()), (long long)rows, (long long)cols);
  const int64_t sld = cols + 5, dld = cols + 3;
  auto src = randv(rows * sld), dst0 = randv(rows * dld);
  for (int acc = 0; acc < 2; ++acc) {
    std::vector<double> r = todouble(dst0);
    for (int64_t i = 0; i < rows; ++i) for (int64_t j = 0; j < cols; ++j)
      r[i * dld + 2 + j] = (acc ? r[i * dld + 2 + j] : 0.0) + src[i * sld + 4 + j];
    std::vector<float> d = dst0;
    copy_columns(ex, rows, cols, src.data(), sld, 4, d.data(), dld, 2, acc != 0);
    check(std::string("copy_columns ") + (acc ? "+= " : "= ") + tag, d.data(), r, 1e-6, 1e-6);
  }
}

static void test_hflip(PoolExec& ex, int64_t n, int64_t c, int64_t h, int64_t w, bool use_flags) {
  const std::string tag = fmt("[%s n=%lld c=%lld h=%lld w=%lld flags=%d]", isa_name(ex.isa()), (long long)n, (long long)c,
                              (long long)h, (long long)w, use_flags);
  auto x = randv(n * c * h * w);
  std::vector<uint8_t> f(n);
  for (int64_t i = 0; i < n; ++i) f[i] = (uint8_t)((i % 3 == 1) ? 0 : (i % 3) + 1);
  std::vector<double> r(x.size());
  for (int64_t i = 0; i < n; ++i) for (int64_t q = 0; q < c * h; ++q) for (int64_t j = 0; j < w; ++j) {
    const bool fl = !use_flags || f[i];
    r[(i * c * h + q) * w + j] = x[(i * c * h + q) * w + (fl ? w - 1 - j : j)];
  }
  std::vector<float> y(x.size(), NAN);
  hflip(ex, n, c, h, w, use_flags ? f.data() : nullptr, x.data(), y.data());
  check("hflip " + tag, y.data(), r, 0, 0);
}

static void test_sgd(PoolExec& ex, int64_t n, float mom, float wd, bool frozen, bool buf_null) {
  const std::string tag = fmt("[%s count=%lld mom=%g wd=%g frozen=%d]", isa_name(ex.isa()), (long long)n, mom, wd, frozen);
  auto w0 = randv(n), g = randv(n), b0 = randv(n);
  std::vector<uint8_t> fz(n);
  for (int64_t i = 0; i < n; ++i) fz[i] = (uint8_t)(frozen && (i % 5 == 2 || i % 7 == 0) ? 1 + i % 200 : 0);
  // a frozen NaN payload must survive bit-exactly
  if (frozen && n > 7) { uint32_t u = 0x7fc12345u; std::memcpy(&w0[7], &u, 4); std::memcpy(&b0[7], &u, 4); fz[7] = 1; }
  const float lr = 0.05f;
  std::vector<double> rw(n), rb(n);
  for (int64_t i = 0; i < n; ++i) {
    if (fz[i]) { rw[i] = w0[i]; rb[i] = b0[i]; continue; }
    double gg = (double)g[i] + wd * (double)w0[i];
    double d = gg;
    if (mom != 0.f) { d = mom * (double)b0[i] + gg; rb[i] = d; } else rb[i] = b0[i];
    rw[i] = w0[i] - lr * d;
  }
  std::vector<float> w = w0, b = b0;
  sgd_update(ex, n, w.data(), g.data(), buf_null ? nullptr : b.data(), frozen ? fz.data() : nullptr, lr, mom, wd);
  bool bits = true;
  for (int64_t i = 0; i < n; ++i)
    if (fz[i] && (std::memcmp(&w[i], &w0[i], 4) || std::memcmp(&b[i], &b0[i], 4))) bits = false;
  report(bits, "sgd_update frozen bits untouched " + tag, 0);
  for (int64_t i = 0; i < n; ++i) if (fz[i]) { w[i] = 0; b[i] = 0; rw[i] = 0; rb[i] = 0; }  // NaN payloads compared above
  check("sgd_update w " + tag, w.data(), rw, 1e-6, 1e-6);
  check("sgd_update buf " + tag, b.data(), rb, 1e-6, 1e-6);
}

// ------------------------------------------------------------------------------------------
static double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class F>
static double median_time(F&& f, int reps) {
  f(); f();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) { double t0 = now_s(); f(); t.push_back(now_s() - t0); }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

static void bench(PoolExec& ex, const std::vector<Isa>& isas) {
  const int64_t shapes[][3] = {{128, 16, 1024}, {128, 32, 256}, {128, 64, 64}};
  for (Isa isa : isas) {
    ex.set_isa(isa);
    for (auto& sh : shapes) {
      const int64_t n = sh[0], c = sh[1], hw = sh[2], N = n * c * hw;
      auto x = randv(N, -2, 2), gamma = randv(c, 0.5f, 1.5f), beta = randv(c, -0.5f, 0.5f), dy = randv(N);
      std::vector<float> y(N), dx(N, 0.f), rm(c, 0.f), rv(c, 1.f), sm(c), si(c), dg(c, 0.f), db(c, 0.f);
      const int reps = 25;
      double tf = median_time([&] {
        batchnorm2d_forward_train(ex, n, c, hw, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, rm.data(), rv.data(),
                                  sm.data(), si.data(), true, y.data());
      }, reps);
      double tb = median_time([&] {
        batchnorm2d_backward(ex, n, c, hw, x.data(), y.data(), dy.data(), gamma.data(), sm.data(), si.data(), true,
                             dx.data(), dg.data(), db.data());
      }, reps);
      // bytes: forward reads x, writes y; backward reads x, y, dy, dx and writes dx
      const double fb = 2.0 * N * 4, bb = 5.0 * N * 4;
      std::printf("{\"op\":\"bn_forward_train_relu\",\"isa\":\"%s\",\"threads\":%d,\"n\":%lld,\"c\":%lld,\"hw\":%lld,"
                  "\"median_ms\":%.4f,\"GBps\":%.2f,\"reps\":%d}\n",
                  isa_name(isa), ex.threads(), (long long)n, (long long)c, (long long)hw, tf * 1e3, fb / tf / 1e9, reps);
      std::printf("{\"op\":\"bn_backward_relu\",\"isa\":\"%s\",\"threads\":%d,\"n\":%lld,\"c\":%lld,\"hw\":%lld,"
                  "\"median_ms\":%.4f,\"GBps\":%.2f,\"reps\":%d}\n",
                  isa_name(isa), ex.threads(), (long long)n, (long long)c, (long long)hw, tb * 1e3, bb / tb / 1e9, reps);
    }
  }
}

int main(int argc, char** argv) {
  bool do_bench = false, all_isas = false;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bench")) do_bench = true;
    else if (!std::strcmp(argv[i], "--all-isas")) all_isas = true;
    else if (!std::strncmp(argv[i], "--threads=", 10)) threads = std::atoi(argv[i] + 10);
    else { std::fprintf(stderr, "usage: %s [--bench [--all-isas]] [--threads=N]\n", argv[0]); return 2; }
  }
  PoolExec ex(threads);
  __builtin_cpu_init();
  std::vector<Isa> isas = {Isa::scalar};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas.push_back(Isa::avx2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    isas.push_back(Isa::avx512);
  if (do_bench) {
    bench(ex, all_isas ? isas : std::vector<Isa>{isas.back()});
    return 0;
  }
  const double t0 = now_s();
  for (Isa isa : isas) {
    ex.set_isa(isa);
    // batch norm: size-1 dims, odd sizes, large-mean data, nulls, parallel and serial paths
    test_bn(ex, 1, 1, 1, false, false, 0.f);
    test_bn(ex, 2, 1, 1, true, false, 0.f);
    test_bn(ex, 1, 3, 17, true, false, 0.f);
    test_bn(ex, 3, 5, 7, false, true, 0.f);
    test_bn(ex, 4, 1, 33, true, false, 0.f);
    test_bn(ex, 5, 16, 49, true, false, 0.f);
    test_bn(ex, 7, 3, 31, false, false, 1000.f);
    test_bn(ex, 16, 4, 4099, true, false, 0.f);   // hw > one accumulation block, odd
    test_bn(ex, 32, 16, 64, true, true, 0.f);
    test_bn(ex, 16, 8, 256, false, false, 50.f);
    // elementwise: tails, multiples of 16, parallel path
    for (int64_t cnt : {0, 1, 3, 7, 15, 16, 17, 33, 64, 1000, 4097, 70001, 262144 + 5}) test_elementwise(ex, cnt);
    test_shortcut(ex, 1, 1, 1, 1, 1, 0, 0);
    test_shortcut(ex, 2, 3, 5, 7, 2, 1, 2);
    test_shortcut(ex, 3, 4, 8, 8, 2, 2, 2);
    test_shortcut(ex, 64, 16, 32, 32, 2, 8, 8);
    test_shortcut(ex, 2, 3, 5, 5, 1, 0, 3);
    test_pool(ex, 1, 1, 1, 1, 1, 1, 0);
    test_pool(ex, 2, 3, 7, 6, 3, 2, 1);
    test_pool(ex, 3, 5, 9, 9, 2, 2, 0);
    test_pool(ex, 16, 64, 32, 32, 3, 2, 1);
    test_losses(ex, 1, 1, 5.f);
    test_losses(ex, 3, 7, 20.f);
    test_losses(ex, 5, 17, 1e4f);
    test_losses(ex, 128, 10, 30.f);
    test_losses(ex, 300, 133, 1e3f);  // parallel path
    test_columns(ex, 1, 1);
    test_columns(ex, 7, 13);
    test_columns(ex, 300, 301);
    test_hflip(ex, 1, 1, 1, 1, false);
    test_hflip(ex, 5, 3, 4, 7, true);
    test_hflip(ex, 64, 3, 32, 32, true);
    test_hflip(ex, 2, 2, 3, 17, false);
    for (int64_t cnt : {1, 7, 17, 100, 70001}) {
      test_sgd(ex, cnt, 0.9f, 5e-4f, true, false);
      test_sgd(ex, cnt, 0.9f, 0.f, false, false);
      test_sgd(ex, cnt, 0.f, 1e-4f, true, true);
    }
  }
  std::printf("# %d checks, %d failed, %.2f s\n", g_checks, g_fail, now_s() - t0);
  return g_fail ? 1 : 0;
}
