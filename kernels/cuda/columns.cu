// Column copy of row-major matrices (copy_columns), the twin of kernels/cpu/columns.cc.
// Policy: one thread per destination element (grid-stride); accumulate (+=) or overwrite.
#include "common.cuh"

namespace m2kd {
namespace cuda {
namespace {

__global__ void copy_columns_k(int64_t rows, int64_t cols, const float* src, int64_t sld, int64_t sc0,
                               float* dst, int64_t dld, int64_t dc0, bool acc) {
  M2KD_GRID_LOOP(i, rows * cols) {
    const int64_t r = i / cols, k = i % cols;
    const float v = src[r * sld + sc0 + k];
    float* d = dst + r * dld + dc0 + k;
    *d = acc ? *d + v : v;
  }
}

}  // namespace

void copy_columns(const CudaExec& ex, int64_t rows, int64_t cols, const float* src, int64_t sld, int64_t sc0,
                  float* dst, int64_t dld, int64_t dc0, bool accumulate) {
  if (rows <= 0 || cols <= 0) return;
  M2KD_LAUNCH(grid_for(rows * cols), kThreads, 0, ex.stream(), copy_columns_k)(rows, cols, src, sld, sc0, dst, dld, dc0,
                                                                      accumulate);
  M2KD_LAUNCHED(ex, "copy_columns");
}

}  // namespace cuda
}  // namespace m2kd
