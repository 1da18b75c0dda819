// The streaming kernel gpuprobe's bandwidth stage times: a copy of n floats,
// BabelStream's "Copy" (dst[i] = src[i]), which reads and writes every byte
// once, so one pass moves 2 * 4 * n bytes of device memory.
//
// Grid-stride: any grid covers any n, so the launch is sized for the GPU
// (src/cuda/kernels.rs, `stream_launch`), not for n. Each thread copies four
// 128-bit vectors per step, all four loads issued before the stores, so that
// a half-occupancy grid (4 blocks of 256 threads per SM) still keeps enough
// loads in flight to cover the memory latency (docs/kernels.md). Vectors only when both pointers are
// 16-byte aligned (PTX ISA, "Vectors": vector accesses must be naturally
// aligned); the floats past the last whole vector, and every float of a
// misaligned pair of pointers, are copied one by one. Copies move bits: no
// arithmetic touches a value, so NaN payloads and signed zeros arrive as
// they left.
#include "cuda_prelude.h"

// Launch: block (256, 1, 1); grid (g, 1, 1) for any g >= 1; no shared memory.
extern "C" __global__ void gpuprobe_stream_copy(unsigned long long n,
                                                const float *src, float *dst) {
  const unsigned long long stride =
      (unsigned long long)gridDim.x * blockDim.x;
  const unsigned long long first =
      (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const bool aligned =
      (((unsigned long long)src | (unsigned long long)dst) & 15) == 0;
  const unsigned long long vectors = aligned ? n / 4 : 0;
  const gp_float4 *s4 = (const gp_float4 *)src;
  gp_float4 *d4 = (gp_float4 *)dst;

  unsigned long long i = first;
  for (; i + 3 * stride < vectors; i += 4 * stride) {
    const gp_float4 v0 = s4[i];
    const gp_float4 v1 = s4[i + stride];
    const gp_float4 v2 = s4[i + 2 * stride];
    const gp_float4 v3 = s4[i + 3 * stride];
    d4[i] = v0;
    d4[i + stride] = v1;
    d4[i + 2 * stride] = v2;
    d4[i + 3 * stride] = v3;
  }
  for (; i < vectors; i += stride) {
    d4[i] = s4[i];
  }
  for (unsigned long long j = vectors * 4 + first; j < n; j += stride) {
    dst[j] = src[j];
  }
}
