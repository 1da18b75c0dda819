// Tensor-core matmul kernels (mma.sync), for GPUs of compute capability 8.0
// and newer: scripts/build-ptx compiles this file for sm_80, which makes
// clang emit PTX ISA 7.0, the first with mma.sync.m16n8k8 .tf32 and
// m16n8k16 .bf16 (PTX ISA, "Warp-level matrix multiply-accumulate
// instructions": both "require sm_80 or higher" and "introduced in PTX ISA
// version 7.0").
//
// Row-major, C[m x n] = A[m x k] * B[k x n] in f32 with f32 accumulation;
// A and B are given as f32 and are read as TF32 (the f32 bits, of which the
// tensor core uses the top 19) or converted to BF16 (the top 16 bits). The
// probe's inputs are exactly representable in BF16 and hence in TF32, so the
// product is exact and checked bit for bit (src/verify.rs). Correct for any
// m, n, k: fragments that overhang the matrix read zeros and store nothing.
//
// Each warp computes a 16 x 32 tile of C as four m16n8 tiles; a block of
// four warps computes 32 x 64. Fragments are loaded straight from global
// memory in the layouts of the PTX ISA's "Matrix Fragments for mma.m16n8k8"
// (.tf32) and "Matrix Fragments for mma.m16n8k16 with floating point type"
// (.bf16): with g = lane / 4 and t = lane % 4,
//   tf32 A: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
//   tf32 B: b0 (t, g), b1 (t+4, g)
//   bf16 A: a0,a1 (g, 2t..2t+1), a2,a3 (g+8, 2t..), a4,a5 (g, 2t+8..),
//           a6,a7 (g+8, 2t+8..); two per 32-bit register, lower index low
//   bf16 B: b0,b1 (2t..2t+1, g), b2,b3 (2t+8..2t+9, g)
//   C, D:   c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
// On the host the fake driver's emulator performs the same operation from
// the same layout (tests/fakegpu/emu), tested against a plain product.
// Launch: block (128, 1, 1); grid (ceil(n / 64), ceil(m / 32), 1).
#include "cuda_prelude.h"

#ifdef GPUPROBE_HOST_EMULATION
#define gp_mma_tf32 gp_emu_mma_m16n8k8_tf32
#define gp_mma_bf16 gp_emu_mma_m16n8k16_bf16
#else
__device__ static inline void gp_mma_tf32(float d[4], const unsigned a[4],
                                          const unsigned b[2],
                                          const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%10, %11, %12, %13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                 "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

__device__ static inline void gp_mma_bf16(float d[4], const unsigned a[4],
                                          const unsigned b[2],
                                          const float c[4]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%10, %11, %12, %13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                 "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
#endif

// Element (r, col) of a row-major rows x cols matrix, 0 outside it.
__device__ static inline float gp_at(const float *p, int rows, int cols,
                                     int r, int col) {
  return (r < rows && col < cols) ? p[(unsigned long long)r * cols + col]
                                  : 0.0f;
}

// Two f32 values as a BF16 pair (lo in the low half): the top 16 bits of
// each, which is the value itself when it is representable in BF16.
__device__ static inline unsigned gp_bf16x2(float lo, float hi) {
  return (__builtin_bit_cast(unsigned, lo) >> 16) |
         (__builtin_bit_cast(unsigned, hi) & 0xffff0000u);
}

// Stores a warp's four m16n8 accumulators at (r0, c0).
__device__ static inline void gp_store_tile(float *c, int m, int n, int r0,
                                            int c0, const float acc[4][4]) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = r0 + g + 8 * (i / 2), col = c0 + 8 * j + 2 * t + i % 2;
      if (r < m && col < n) c[(unsigned long long)r * n + col] = acc[j][i];
    }
}

// TF32 inputs, m16n8k8 steps.
extern "C" __global__ void gpuprobe_mma_tf32(int m, int n, int k,
                                             const float *a, const float *b,
                                             float *c) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int r0 = blockIdx.y * 32 + 16 * (warp / 2);
  const int c0 = blockIdx.x * 64 + 32 * (warp % 2);
  float acc[4][4] = {};
  for (int p = 0; p < k; p += 8) {
    unsigned af[4];
    af[0] = __builtin_bit_cast(unsigned, gp_at(a, m, k, r0 + g, p + t));
    af[1] = __builtin_bit_cast(unsigned, gp_at(a, m, k, r0 + g + 8, p + t));
    af[2] = __builtin_bit_cast(unsigned, gp_at(a, m, k, r0 + g, p + t + 4));
    af[3] =
        __builtin_bit_cast(unsigned, gp_at(a, m, k, r0 + g + 8, p + t + 4));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      unsigned bf[2];
      const int col = c0 + 8 * j + g;
      bf[0] = __builtin_bit_cast(unsigned, gp_at(b, k, n, p + t, col));
      bf[1] = __builtin_bit_cast(unsigned, gp_at(b, k, n, p + t + 4, col));
      gp_mma_tf32(acc[j], af, bf, acc[j]);
    }
  }
  gp_store_tile(c, m, n, r0, c0, acc);
}

// BF16 inputs (converted from f32 as they are loaded), m16n8k16 steps.
extern "C" __global__ void gpuprobe_mma_bf16(int m, int n, int k,
                                             const float *a, const float *b,
                                             float *c) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int r0 = blockIdx.y * 32 + 16 * (warp / 2);
  const int c0 = blockIdx.x * 64 + 32 * (warp % 2);
  float acc[4][4] = {};
  for (int p = 0; p < k; p += 16) {
    unsigned af[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = r0 + g + 8 * (i % 2), col = p + 2 * t + 8 * (i / 2);
      af[i] = gp_bf16x2(gp_at(a, m, k, r, col), gp_at(a, m, k, r, col + 1));
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      unsigned bf[2];
      const int col = c0 + 8 * j + g;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = p + 2 * t + 8 * i;
        bf[i] = gp_bf16x2(gp_at(b, k, n, r, col), gp_at(b, k, n, r + 1, col));
      }
      gp_mma_bf16(acc[j], af, bf, acc[j]);
    }
  }
  gp_store_tile(c, m, n, r0, c0, acc);
}
