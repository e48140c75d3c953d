// m2kd kernel signatures: the one shared header between kernels/ and native/.
//
// Policy (every kernel follows it):
//  - Kernels are pure compute: no N-API, no JS, no allocation policy. Memory they need beyond
//    their arguments comes from Exec::scratch (owned and reused by the addon).
//  - Layout is NCHW, fp32, contiguous, unless a signature says otherwise.
//  - Forward kernels OVERWRITE their outputs. Backward kernels ACCUMULATE (+=) into gradient
//    buffers (llm.c style), so the engine zero-fills a gradient once and every consumer adds.
//  - Shapes arrive as plain structs/ints and are validated by the caller (native/): kernels
//    assume they are consistent.
//  - Each op family exposes one public function per entry point that dispatches on
//    exec.isa() to its scalar / AVX2 / AVX-512 variant (compiled with GCC target pragmas).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace m2kd {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

// Execution context handed to every kernel by the addon.
class Exec {
 public:
  virtual ~Exec() = default;
  virtual Isa isa() const = 0;
  // Number of workers parallel_for may use (>= 1, includes the calling thread).
  virtual int threads() const = 0;
  // Runs body(begin, end, tid) over [0, n) split into contiguous chunks, one per worker
  // (tid in [0, threads())). Blocks until all chunks finish. Not reentrant.
  virtual void parallel_for(int64_t n,
                            const std::function<void(int64_t begin, int64_t end, int tid)>& body) const = 0;
  // Reusable 64-byte-aligned scratch owned by the addon. `slot` (0..7) names independent
  // buffers that may be alive at the same time within one kernel call. Contents are
  // undefined; valid until the kernel returns; never freed by the kernel.
  virtual void* scratch(int slot, size_t bytes) const = 0;
};

// ---------------------------------------------------------------------------------------
// GEMM: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major, leading dims given.
// op(X) = X or X^T per trans flag. beta == 0 means C is not read (may hold NaN).
void sgemm(const Exec& ex, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// Same, on the calling thread only (for kernels that parallelise at an outer level).
// `pack` must point to sgemm_pack_floats(M,N,K) floats of 64-byte-aligned scratch.
void sgemm_serial(Isa isa, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                  int64_t ldc, float* pack);
size_t sgemm_pack_floats(int64_t M, int64_t N, int64_t K);

// ---------------------------------------------------------------------------------------
// conv2d, NCHW input [n,c,h,w], weight OIHW [o,c,kh,kw], output [n,o,oh,ow].
struct Conv2dShape {
  int64_t n, c, h, w;      // input
  int64_t o, kh, kw;       // output channels and kernel
  int64_t stride, pad;     // same in both spatial dims
  int64_t oh, ow;          // = (h + 2*pad - kh) / stride + 1, likewise ow
};
// bias may be null.
void conv2d_forward(const Exec& ex, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y);
// dx += conv2d^T(dy, w)
void conv2d_backward_data(const Exec& ex, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx);
// dw += sum_n dy (x) x ; db += sum over n,oh,ow of dy (db may be null)
void conv2d_backward_weight(const Exec& ex, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, float* db);

// ---------------------------------------------------------------------------------------
// linear: x [n,in], w [out,in] (PyTorch layout), bias [out] (may be null), y [n,out].
void linear_forward(const Exec& ex, int64_t n, int64_t in, int64_t out, const float* x,
                    const float* w, const float* bias, float* y);
// dx += dy w ; dw += dy^T x ; db += sum_n dy. Any of dx/dw/db may be null (not wanted).
void linear_backward(const Exec& ex, int64_t n, int64_t in, int64_t out, const float* x,
                     const float* w, const float* dy, float* dx, float* dw, float* db);

// ---------------------------------------------------------------------------------------
// batch norm 2d over [n,c,hw] (hw = h*w). Optional fused ReLU after the affine.
// Train: batch statistics (biased var for normalising), saves mean and invstd = 1/sqrt(var+eps)
// for backward, and updates running stats in place: r = (1-momentum) r + momentum * stat, with
// the unbiased variance (PyTorch semantics). running_* may be null (no update).
void batchnorm2d_forward_train(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* gamma, const float* beta, float eps, float momentum,
                               float* running_mean, float* running_var, float* save_mean,
                               float* save_invstd, bool relu, float* y);
void batchnorm2d_forward_eval(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                              const float* gamma, const float* beta, const float* running_mean,
                              const float* running_var, float eps, bool relu, float* y);
// Backward of the train-mode forward. y is the forward output (needed only when relu).
// dx += ... (dx = ... when overwrite_dx: the first contribution to a fresh gradient buffer,
// which then need not be zero-filled), dgamma += ..., dbeta += ... (dgamma/dbeta may be null).
void batchnorm2d_backward(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                          const float* y, const float* dy, const float* gamma,
                          const float* save_mean, const float* save_invstd, bool relu, float* dx,
                          float* dgamma, float* dbeta, bool overwrite_dx = false);
// Backward of the eval-mode forward (running statistics are constants): dx += g' gamma invstd,
// dgamma += sum g' (x - running_mean) invstd, dbeta += sum g', g' = dy masked by y > 0 when
// relu. Any of dx/dgamma/dbeta may be null. y is needed only when relu.
void batchnorm2d_backward_eval(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x,
                               const float* y, const float* dy, const float* gamma,
                               const float* running_mean, const float* running_var, float eps,
                               bool relu, float* dx, float* dgamma, float* dbeta);

// ---------------------------------------------------------------------------------------
// elementwise, over `count` contiguous floats
void relu_forward(const Exec& ex, int64_t count, const float* x, float* y);
void relu_backward(const Exec& ex, int64_t count, const float* y, const float* dy, float* dx);  // dx += dy * (y > 0)
// y = max(a + b, 0) (the residual add and ReLU of a basic block, in one pass)
void add_relu_forward(const Exec& ex, int64_t count, const float* a, const float* b, float* y);
// da += dy * (y > 0), db += dy * (y > 0); either may be null; overwrite_a / overwrite_b write
// instead of accumulating (first contribution to a fresh gradient buffer)
void add_relu_backward(const Exec& ex, int64_t count, const float* y, const float* dy, float* da, float* db,
                       bool overwrite_a = false, bool overwrite_b = false);
// y = a*x + b*z   (covers add, sub, scale: z may alias y or x)
void axpby(const Exec& ex, int64_t count, float a, const float* x, float b, const float* z, float* y);
void mul_forward(const Exec& ex, int64_t count, const float* a, const float* b, float* y);
// y = a*x + b (scalar affine)
void affine_scalar(const Exec& ex, int64_t count, const float* x, float a, float b, float* y);
void fill(const Exec& ex, int64_t count, float value, float* y);
void sigmoid_forward(const Exec& ex, int64_t count, const float* x, float* y);
// dx += dy * y * (1 - y)
void sigmoid_backward(const Exec& ex, int64_t count, const float* y, const float* dy, float* dx);
// returns the sum: float32 partial sums over blocks of 4096, combined in double (relative
// error ~1e-6 for a million terms)
double sum_all(const Exec& ex, int64_t count, const float* x);
// dx += g (a scalar, broadcast)
void add_scalar_inplace(const Exec& ex, int64_t count, float g, float* dx);

// ---------------------------------------------------------------------------------------
// option-A shortcut: y = zero-pad channels (pad_before, pad_after) of x[:, :, ::stride, ::stride]
// x [n,c,h,w] -> y [n, c+pad_before+pad_after, ceil(h/stride), ceil(w/stride)]
void shortcut_a_forward(const Exec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                        int64_t pad_before, int64_t pad_after, const float* x, float* y);
void shortcut_a_backward(const Exec& ex, int64_t n, int64_t c, int64_t h, int64_t w, int64_t stride,
                         int64_t pad_before, int64_t pad_after, const float* dy, float* dx);  // dx +=

// ---------------------------------------------------------------------------------------
// pooling. global average: x [n,c,hw] -> y [n,c]
void global_avg_pool_forward(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* x, float* y);
void global_avg_pool_backward(const Exec& ex, int64_t n, int64_t c, int64_t hw, const float* dy, float* dx);  // dx +=
// max pool, square kernel k, stride, pad (padding never wins); argmax stores the flat index
// within the input plane (h*w) of the winner, as int32.
struct Pool2dShape { int64_t n, c, h, w, k, stride, pad, oh, ow; };
void max_pool2d_forward(const Exec& ex, const Pool2dShape& s, const float* x, float* y, int32_t* argmax);
void max_pool2d_backward(const Exec& ex, const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx);  // dx +=

// ---------------------------------------------------------------------------------------
// losses over logits [n,m].
// Sigmoid binary cross-entropy with logits against soft targets t in [0,1]:
//   loss = (1/denom) * sum_ij [ max(x,0) - x*t + log1p(exp(-|x|)) ]   (stable for any x)
// returns loss (double). Backward: dx += g/denom * (sigmoid(x) - t).
double bce_logits_forward(const Exec& ex, int64_t count, const float* x, const float* t, double denom);
void bce_logits_backward(const Exec& ex, int64_t count, const float* x, const float* t, double scale, float* dx);
// Softmax cross-entropy with integer labels, mean over n (stable log-sum-exp).
// Saves softmax probabilities p [n,m] for backward. Returns loss (double).
double softmax_ce_forward(const Exec& ex, int64_t n, int64_t m, const float* x, const int32_t* labels, float* p);
// dx += scale * (p - onehot(labels))   (scale = g / n)
void softmax_ce_backward(const Exec& ex, int64_t n, int64_t m, const float* p, const int32_t* labels, double scale, float* dx);

// ---------------------------------------------------------------------------------------
// column slice / copy of a row-major matrix: dst[:, dst_col0 : dst_col0+cols] (=|+=) src[:, src_col0 : ...]
void copy_columns(const Exec& ex, int64_t rows, int64_t cols, const float* src, int64_t src_ld,
                  int64_t src_col0, float* dst, int64_t dst_ld, int64_t dst_col0, bool accumulate);

// horizontal flip of [n, c, h, w] along w, for samples whose flag is nonzero (flags may be null
// = flip all). Out-of-place: y must not alias x.
void hflip(const Exec& ex, int64_t n, int64_t c, int64_t h, int64_t w, const uint8_t* flags,
           const float* x, float* y);

// ---------------------------------------------------------------------------------------
// SGD with momentum and weight decay (PyTorch semantics, dampening 0, no nesterov):
//   g = grad + wd * w ; buf = momentum * buf + g ; w -= lr * buf
// where frozen[i] != 0 the element is skipped entirely (w, buf untouched; bits preserved).
// frozen may be null. momentum_buf may be null when momentum == 0.
void sgd_update(const Exec& ex, int64_t count, float* w, const float* grad, float* momentum_buf,
                const uint8_t* frozen, float lr, float momentum, float weight_decay);

}  // namespace m2kd

// =======================================================================================
// Fused masked convolution (the teacher bank). kernels/cpu/masked_conv*; exact semantics are
// documented atop kernels/cpu/masked_conv_impl.inc (a CUDA twin must match them).
namespace m2kd {

// Largest step id a mask may hold (u8 masks; 0 = free).
constexpr int kMaskedConvMaxStep = 255;

// Tuning of the fused masked convolution (explicit; the defaults are the measured choice).
struct MaskedConvParams {
  // plan: a panel of 4 output channels whose active weights (at one model's step) fill at least
  // this fraction of its 4 x c*kh*kw slots takes the dense path (every non-empty column is run
  // with all 4 channels, zero weights included): one branch-free loop instead of 15 pattern
  // groups. 1.0 = only full panels; > 1 = never dense.
  float dense_above = 0.85f;
  // forward: output positions per register tile (0 = the ISA's widest: 6 AVX-512, 2 otherwise)
  int pos_tile = 0;
};

// A plan for one conv weight and its u8 step mask, built once (the masks do not change within
// a step): one SECTION per distinct mask value v >= 1 (the model of step s uses the section of
// the largest v <= s, none if s is below every v: its conv is 0). Output channels are taken in
// PANELS of 4 (o rounded up; missing channels have zero weight). In a section, each panel's
// COLUMNS (input channel, tap) with at least one active weight are grouped by their 4-bit
// pattern of active channels (1..15), so the kernel runs branch-free loops per pattern; a
// dense panel (MaskedConvParams::dense_above) puts every non-empty column in pattern 15.
// Plain int32 buffer (caller-owned):
//   [0] magic 0x4D4B4332 ('MKC2'), [1] o, [2] c, [3] kh, [4] kw, [5] nsec, [6] panels, [7] total ints
//   [8, 8+nsec)            section step values, ascending
//   [8+nsec, 8+2 nsec)     offset of each section (ints from the plan start)
//   section: bounds[panels][16] then records of 5 ints (tap index (ci*kh + i)*kw + j, then the
//            4 channels' float weights, 0 where inactive). Panel p's records of pattern g
//            (1..15) are [b[p][g-1], b[p][g]) counted from the section's first record.
// Number of int32 the plan of this weight and mask needs (mask may be null: an upper bound valid
// for any mask).
int64_t masked_conv_plan_ints(int64_t o, int64_t c, int64_t kh, int64_t kw, const uint8_t* mask,
                              const MaskedConvParams& p = MaskedConvParams());
// Builds the plan (serial; O(sections * o*c*kh*kw)). w OIHW fp32, mask u8 of the same shape;
// plan holds masked_conv_plan_ints(..., mask, p) ints.
void masked_conv_build_plan(int64_t o, int64_t c, int64_t kh, int64_t kw, const float* w,
                            const uint8_t* mask, int32_t* plan, const MaskedConvParams& p = MaskedConvParams());

struct MaskedConvShape {
  int64_t k;                    // models
  int64_t n, c, h, w;           // per-model input [n,c,h,w]
  int64_t o, kh, kw;            // weight [o,c,kh,kw]
  int64_t stride, pad;          // same in both spatial dims
  int64_t oh, ow;               // = (h + 2*pad - kh) / stride + 1, likewise ow
  bool shared_input;            // x is one [n,c,h,w] for all k models (else [k,n,c,h,w])
  // BLOCKED layout (the teacher bank's private activations, kept across layers): a tensor of
  // k models, n images, c channels, h x w pixels stored with zero padding p is
  //   [k][nb = ceil(n/V)][h+2p][w+2p][c][V]   (V = masked_conv_lanes(isa): images per vector;
  //   lanes of images >= n and the padding ring are 0).
  bool in_blocked = false;      // x blocked, stored with padding in_pad (< 0: = pad)
  bool out_blocked = false;     // y (and residual) blocked, stored with padding out_pad
  int64_t out_pad = 0;
  // padding a blocked x is stored with, >= pad (e.g. ResNet-18's 1x1 downsample, pad 0, reads
  // the block input stored with pad 1 for the 3x3 conv beside it); < 0 means = pad
  int64_t in_pad = -1;
};
// Images per vector of the blocked layout for this ISA (16 AVX-512, 8 AVX2, 4 scalar).
int64_t masked_conv_lanes(Isa isa);
// Floats of a blocked tensor.
int64_t masked_blocked_floats(Isa isa, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t pad);
// Option-A shortcut on blocked tensors: y[k,n,o,r,q] = x[k,n,o - before, r*stride, q*stride]
// for before <= o < before + c, else 0; y has c + before + after channels, ceil(h/stride) rows
// (likewise columns), stored with padding out_pad; x stored with padding in_pad.
void masked_blocked_shortcut_a(const Exec& ex, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t in_pad,
                               int64_t stride, int64_t before, int64_t after, int64_t out_pad, const float* x,
                               float* y);
// Max pooling on blocked tensors: y[k,n,c,r,q] = max of x[k,n,c, r*stride+i-pad, q*stride+j-pad]
// over 0 <= i,j < kernel, positions outside the image skipped (the ring is never read: -inf
// padding, as torch's max_pool2d); y has (h + 2 pad - kernel)/stride + 1 rows (likewise
// columns), stored with padding out_pad; x stored with padding in_pad. Needs pad < kernel.
void masked_blocked_maxpool(const Exec& ex, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t in_pad,
                            int64_t kernel, int64_t stride, int64_t pad, int64_t out_pad, const float* x, float* y);
// Global average pool of a blocked tensor into y [k][n][c] (row-major).
void masked_blocked_avgpool(const Exec& ex, int64_t k, int64_t n, int64_t c, int64_t h, int64_t w, int64_t pad,
                            const float* x, float* y);
// y[k][n][o][p] = act(scale[k*o+o'] * sum_{taps with 1 <= m <= steps[k]} w * x_k + shift[k*o+o']
//                     + residual[k][n][o][p])      (residual may be null; act = relu or identity)
// steps[k] in [0, kMaskedConvMaxStep]. y: [k,n,o,oh,ow], overwritten (or blocked, see above;
// the padding ring of a blocked y is written as 0).
void masked_conv_forward(const Exec& ex, const MaskedConvShape& s, const int32_t* plan,
                         const int32_t* steps, const float* x, const float* scale,
                         const float* shift, const float* residual, bool relu, float* y,
                         const MaskedConvParams& p = MaskedConvParams());

}  // namespace m2kd
