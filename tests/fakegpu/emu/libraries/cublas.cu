// The fake libcublas's own kernel: what its cublasSgemm_v2 launches through
// the driver, as the real cuBLAS launches kernels of its own (shipped in the
// library, not gpuprobe's) on the stream of the context it runs in. Because
// it is a launch, the fake driver gives it a GPU time by the same rule as
// any kernel's (the scenario's `launch_ns_per_thread`, else what the
// emulation took), and a wrong pointer corrupts a redzone as a kernel's
// would. It is written independently of kernels/matmul.cu, so a bug there is
// not repeated here: bench compares gpuprobe's kernels with this one.
//
// Semantics: cuBLAS Library documentation, "cublas<t>gemm()": column-major
// C = alpha * op(A) * op(B) + beta * C, op(A) m x k and op(B) k x n, each
// matrix at its leading dimension; beta == 0 means C need not be valid on
// input. `tf32` != 0 rounds each input to TF32 (CUBLAS_TF32_TENSOR_OP_MATH
// lets an SGEMM do so; this fake always does in that mode).
//
// Launch: block (16, 16, 1); grid (ceil(m / 16), ceil(n / 16), 1).
#include "cuda_emu.h"

#include <cstring>

namespace {

// `x` rounded to TF32: 10 mantissa bits, to nearest even.
__device__ float fakecublas_tf32(float x) {
  unsigned bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x; // NaN and infinities
  bits = (bits + 0x0fffu + ((bits >> 13) & 1u)) & ~0x1fffu;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

} // namespace

extern "C" __global__ void fakecublas_sgemm(int m, int n, int k, float alpha,
                                            const float *a, int lda,
                                            int transa, const float *b,
                                            int ldb, int transb, float beta,
                                            float *c, int ldc, int tf32) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long j = (long long)blockIdx.y * blockDim.y + threadIdx.y;
  if (i >= m || j >= n) return;
  float sum = 0.0f;
  for (long long p = 0; p < k; ++p) {
    float x = transa == 0 ? a[i + p * lda] : a[p + i * lda];
    float y = transb == 0 ? b[p + j * ldb] : b[j + p * ldb];
    if (tf32 != 0) {
      x = fakecublas_tf32(x);
      y = fakecublas_tf32(y);
    }
    sum += x * y;
  }
  float *out = &c[i + j * ldc];
  *out = beta == 0.0f ? alpha * sum : alpha * sum + beta * *out;
}
