// The one tiled GEMM core of kernels/cuda, shared by sgemm, linear and every convolution
// (implicit GEMM: the "matrices" are index maps over the tensors, nothing is materialised).
// Policy: C[M,N] = sum_k A[m,k] B[k,n] over a k-range chosen per blockIdx.z (a batch of models
// or a split of K). 256 threads (launch bounds: 2 blocks per SM, so up to 128 registers and no
// spills), BK = 16, a BM x BN block tile, TM x TN outputs per thread;
// tiles go global -> registers -> shared memory, double-buffered (the next tile's global
// loads are in flight while the current one is multiplied; one __syncthreads per k-tile).
// A problem P supplies row/column contexts (computed once per thread: the divisions that
// locate an output position are not repeated per k) and the element loaders; out-of-range
// rows, columns and k read as 0 through the contexts' `ok` flags. All index math is int32:
// the host side checks that every tensor has fewer than 2^31 elements.
#pragma once
#include "common.cuh"

namespace m2kd {
namespace cuda {

constexpr int kTileThreads = 256;
constexpr int kTileK = 16;

// __host__ __device__: the index maps and the tile's thread -> element maps also run on the
// host, in the workbench that checks them (kernels/cuda/workbench/index_check.cu)
#define M2KD_HD __host__ __device__ __forceinline__

// Which elements thread t loads and which outputs it owns, for a BM x BN tile with TM x TN
// outputs per thread. The kernel and the host emulator both use exactly these.
template <int BM, int BN, int TM, int TN>
struct TileMap {
  static constexpr int NT = kTileThreads, BK = kTileK;
  static constexpr int TX = BN / TN, TY = BM / TM;
  static constexpr int A_PER = BM * BK / NT;  // A elements per thread per k-tile
  static constexpr int B_PER = BK * BN / NT;  // B elements per thread per k-tile
  static_assert(TX * TY == NT, "tile shape must use 256 threads");
  static_assert(NT % BK == 0 && NT % BN == 0, "loader mapping");
  static_assert(A_PER >= 1 && B_PER >= 1, "tile too small");
  // A tile element (row a_m(t,i), column a_k(t)); k fastest across threads (coalesced rows)
  M2KD_HD static int a_k(int t) { return t % BK; }
  M2KD_HD static int a_m(int t, int i) { return t / BK + i * (NT / BK); }
  // B tile element (row b_k(t,i), column b_n(t)); n fastest across threads
  M2KD_HD static int b_n(int t) { return t % BN; }
  M2KD_HD static int b_k(int t, int i) { return t / BN + i * (NT / BN); }
  // outputs: rows out_m(t,i), columns out_n(t,j) of the block tile (strided: conflict-free
  // shared-memory reads, coalesced stores)
  M2KD_HD static int out_m(int t, int i) { return t / TX + i * TY; }
  M2KD_HD static int out_n(int t, int j) { return t % TX + j * TX; }
};

template <class P, int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__(kTileThreads, 2) gemm_tile_k(const P p) {
  using Map = TileMap<BM, BN, TM, TN>;
  constexpr int BK = kTileK;
  constexpr int A_PER = Map::A_PER, B_PER = Map::B_PER;

  M2KD_SHARED(float, As, [2][BK][BM + 1]);  // +1: the k-fastest stores hit different banks
  M2KD_SHARED(float, Bs, [2][BK][BN]);

  const int t = threadIdx.x;
  const int z = blockIdx.z;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  int k0, k1;
  p.k_range(z, k0, k1);

  // loader mapping: A tile element (mm, kk) with kk fastest; B tile element (kk, nn), nn fastest
  const int a_k = Map::a_k(t);
  const int b_n = Map::b_n(t);
  typename P::ARow arow[A_PER];
#pragma unroll
  for (int i = 0; i < A_PER; ++i) arow[i] = p.arow(m0 + Map::a_m(t, i), z);
  const typename P::BCol bcol = p.bcol(n0 + b_n, z);

  float ra[A_PER], rb[B_PER];
  auto load = [&](int kt) {
#pragma unroll
    for (int i = 0; i < A_PER; ++i) {
      const int k = kt + a_k;
      ra[i] = k < k1 ? p.a(arow[i], k) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < B_PER; ++i) {
      const int k = kt + Map::b_k(t, i);
      rb[i] = k < k1 ? p.b(bcol, k) : 0.f;
    }
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int i = 0; i < A_PER; ++i) As[buf][a_k][Map::a_m(t, i)] = ra[i];
#pragma unroll
    for (int i = 0; i < B_PER; ++i) Bs[buf][Map::b_k(t, i)][b_n] = rb[i];
  };

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

  int buf = 0;
  if (k0 < k1) {
    load(k0);
    stash(0);
    __syncthreads();
    for (int kt = k0; kt < k1; kt += BK) {
      const bool more = kt + BK < k1;
      if (more) load(kt + BK);  // global loads in flight during the math below
#pragma unroll
      for (int kk = 0; kk < BK; ++kk) {
        float a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM; ++i) a[i] = As[buf][kk][Map::out_m(t, i)];
#pragma unroll
        for (int j = 0; j < TN; ++j) b[j] = Bs[buf][kk][Map::out_n(t, j)];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      if (more) {
        // the other buffer was last read in the previous iteration, before its closing sync
        stash(buf ^ 1);
        __syncthreads();
        buf ^= 1;
      }
    }
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + Map::out_m(t, i);
    if (m >= p.M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + Map::out_n(t, j);
      if (n < p.N) p.store(m, n, acc[i][j], z);
    }
  }
}

// Picks a tile shape by M (small M: wide N tiles, so 16-channel layers do not waste 3/4 of a
// 64-row tile) and launches grid (N tiles, M tiles, zcount).
template <class P>
void launch_gemm_tile(const CudaExec& ex, const P& p, int zcount, const char* name, const char* file, int line) {
  const cudaStream_t st = ex.stream();
  if (p.M <= 16) {
    const dim3 grid(unsigned((p.N + 127) / 128), unsigned((p.M + 15) / 16), unsigned(zcount));
    M2KD_LAUNCH(grid, kTileThreads, 0, st, gemm_tile_k<P, 16, 128, 2, 4>)(p);
  } else if (p.M <= 32) {
    const dim3 grid(unsigned((p.N + 127) / 128), unsigned((p.M + 31) / 32), unsigned(zcount));
    M2KD_LAUNCH(grid, kTileThreads, 0, st, gemm_tile_k<P, 32, 128, 4, 4>)(p);
  } else {
    const dim3 grid(unsigned((p.N + 63) / 64), unsigned((p.M + 63) / 64), unsigned(zcount));
    M2KD_LAUNCH(grid, kTileThreads, 0, st, gemm_tile_k<P, 64, 64, 4, 4>)(p);
  }
  launch_check(st, file, line, name);
}

#define M2KD_GEMM_TILE(ex, p, z, name) ::m2kd::cuda::launch_gemm_tile((ex), (p), (z), (name), __FILE__, __LINE__)

// Blocks the tile launch would use for one z (for split-K sizing).
inline int64_t gemm_tile_blocks(int64_t M, int64_t N) {
  if (M <= 16) return ((N + 127) / 128) * ((M + 15) / 16);
  if (M <= 32) return ((N + 127) / 128) * ((M + 31) / 32);
  return ((N + 63) / 64) * ((M + 63) / 64);
}

// Throws unless every extent fits the kernels' int32 index math.
inline void require_int32(const char* op, int64_t elements) {
  if (elements >= (int64_t(1) << 31))
    throw CudaError(std::string(op) + ": a tensor of " + std::to_string(elements) +
                    " elements exceeds the CUDA kernels' 2^31 index limit");
}

}  // namespace cuda
}  // namespace m2kd
