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

// Block-tiled, register-blocked SGEMM (docs/kernels.md draws its tiling).
//
// A block computes a 128 x 128 tile of C with 256 threads; each thread owns
// an 8 x 8 sub-tile held in registers, split into four 4 x 4 quarters at
// rows {4*ty, 64 + 4*ty} and columns {4*tx, 64 + 4*tx} (tx = t % 16,
// ty = t / 16), so that the 16 threads of a half-warp read consecutive
// 16-byte words of shared memory and store consecutive 16-byte words of C.
// K advances 8 at a time: the block copies a 128 x 8 slice of A (transposed,
// so a thread's rows are contiguous) and an 8 x 128 slice of B into shared
// memory, then each thread does 8 outer products of 8 A values by 8 B values.
// Global loads and stores are 128-bit when the rows allow it (k, resp. n, a
// multiple of 4 and the pointer 16-byte aligned); otherwise, and at the
// matrix edge, element by element with zeros outside the matrix, so any m,
// n, k is correct.
// Launch: block (256, 1, 1); grid (ceil(n / 128), ceil(m / 128), 1); no
// dynamic shared memory (8 KiB static).
#define GP_BM 128
#define GP_BN 128
#define GP_BK 8
#define GP_THREADS 256

extern "C" __global__ void GP_LAUNCH_BOUNDS(GP_THREADS, 2)
gpuprobe_sgemm_fast(int m, int n, int k,
                                               const float *__restrict__ a,
                                               const float *__restrict__ b,
                                               float *__restrict__ c) {
  __shared__ float a_tile[GP_BK][GP_BM] __attribute__((aligned(16)));
  __shared__ float b_tile[GP_BK][GP_BN] __attribute__((aligned(16)));

  const int t = threadIdx.x;
  const int tx = t % 16;
  const int ty = t / 16;
  const int row0 = blockIdx.y * GP_BM;
  const int col0 = blockIdx.x * GP_BN;

  // Which 4 elements of the A and B slices this thread copies.
  const int a_row = t / 2, a_col = (t % 2) * 4;   // 128 rows x 2 chunks
  const int b_row = t / 32, b_col = (t % 32) * 4; // 8 rows x 32 chunks
  const bool a_vec = k % 4 == 0 && ((unsigned long long)a & 15) == 0;
  const bool b_vec = n % 4 == 0 && ((unsigned long long)b & 15) == 0;
  const bool c_vec = n % 4 == 0 && ((unsigned long long)c & 15) == 0;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  for (int t0 = 0; t0 < k; t0 += GP_BK) {
    // A: row row0 + a_row, columns t0 + a_col .. + 3, stored transposed.
    {
      const int r = row0 + a_row, col = t0 + a_col;
      float v[4];
      if (a_vec && r < m && col < k) {
        // k % 4 == 0 and col % 4 == 0: all four are inside the row.
        const gp_float4 q =
            *(const gp_float4 *)(a + (unsigned long long)r * k + col);
        v[0] = q[0], v[1] = q[1], v[2] = q[2], v[3] = q[3];
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          v[i] = (r < m && col + i < k)
                     ? a[(unsigned long long)r * k + col + i]
                     : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) a_tile[a_col + i][a_row] = v[i];
    }
    // B: row t0 + b_row, columns col0 + b_col .. + 3.
    {
      const int r = t0 + b_row, col = col0 + b_col;
      gp_float4 q;
      if (b_vec && r < k && col < n) {
        q = *(const gp_float4 *)(b + (unsigned long long)r * n + col);
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          q[i] = (r < k && col + i < n)
                     ? b[(unsigned long long)r * n + col + i]
                     : 0.0f;
      }
      *(gp_float4 *)&b_tile[b_row][b_col] = q;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < GP_BK; ++p) {
      const gp_float4 a_lo = *(const gp_float4 *)&a_tile[p][4 * ty];
      const gp_float4 a_hi = *(const gp_float4 *)&a_tile[p][64 + 4 * ty];
      const gp_float4 b_lo = *(const gp_float4 *)&b_tile[p][4 * tx];
      const gp_float4 b_hi = *(const gp_float4 *)&b_tile[p][64 + 4 * tx];
      float av[8], bv[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        av[i] = a_lo[i], av[4 + i] = a_hi[i];
        bv[i] = b_lo[i], bv[4 + i] = b_hi[i];
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int r = row0 + (i < 4 ? 4 * ty + i : 64 + 4 * ty + i - 4);
    if (r >= m) continue;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int col = col0 + 64 * half + 4 * tx;
      float *out = c + (unsigned long long)r * n + col;
      if (c_vec && col < n) {
        gp_float4 q;
        q[0] = acc[i][4 * half], q[1] = acc[i][4 * half + 1];
        q[2] = acc[i][4 * half + 2], q[3] = acc[i][4 * half + 3];
        *(gp_float4 *)out = q;
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (col + j < n) out[j] = acc[i][4 * half + j];
      }
    }
  }
}
