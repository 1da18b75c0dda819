// The matmul kernels gpuprobe runs on every GPU.
//
// Row-major single precision, C[m x n] = A[m x k] * B[k x n], correct for any
// m, n, k: tiles that overhang the matrix edge load zeros and store nothing.
// The launch contract (block and grid shape) is written beside each kernel and
// mirrored in src/cuda/kernels.rs; the fake driver runs this same source on
// the CPU with exactly the launch gpuprobe asks for, so a wrong grid or an
// indexing slip at an odd size fails the tests.
#include "cuda_prelude.h"

#define GPUPROBE_TILE 16

// Shared-memory tiled SGEMM.
// Launch: block (16, 16, 1); grid (ceil(n / 16), ceil(m / 16), 1); no dynamic
// shared memory.
extern "C" __global__ void gpuprobe_sgemm_tiled(int m, int n, int k,
                                                const float *a, const float *b,
                                                float *c) {
  __shared__ float a_tile[GPUPROBE_TILE][GPUPROBE_TILE];
  __shared__ float b_tile[GPUPROBE_TILE][GPUPROBE_TILE];

  const int tx = threadIdx.x;
  const int ty = threadIdx.y;
  const int row = blockIdx.y * GPUPROBE_TILE + ty;
  const int col = blockIdx.x * GPUPROBE_TILE + tx;

  float acc = 0.0f;
  for (int t = 0; t < k; t += GPUPROBE_TILE) {
    a_tile[ty][tx] = (row < m && t + tx < k)
                         ? a[(unsigned long long)row * k + t + tx]
                         : 0.0f;
    b_tile[ty][tx] = (col < n && t + ty < k)
                         ? b[(unsigned long long)(t + ty) * n + col]
                         : 0.0f;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < GPUPROBE_TILE; ++i) {
      acc += a_tile[ty][i] * b_tile[i][tx];
    }
    __syncthreads();
  }
  if (row < m && col < n) {
    c[(unsigned long long)row * n + col] = acc;
  }
}
