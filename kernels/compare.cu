// The burn's check of every product on the GPU: whether C is, bit for bit,
// the product the probe verified against the CPU. gpuprobe's SGEMM kernels
// sum in a fixed order, so a correct GPU repeats the same bits every time,
// and any difference is a wrong result (a flipped bit in memory, a faulty
// ALU, a product computed from corrupted inputs).
//
// Words are compared as integers, so NaN payloads count and nothing rounds;
// +0 and -0 are the same number (which one a zero sum gets depends on its
// order), so a pair differing only in the sign bit of a zero is equal.
// Every thread that finds a difference writes 1 to *differ: a race of equal
// values, whose outcome is 1 whichever write lands (CUDA C++ Programming
// Guide, "Memory Consistency": concurrent writes to one address leave one
// of the written values). The host clears *differ, and reads it after a
// batch of products, each followed by this kernel: a 1 says that at least
// one product of the batch was wrong. Grid-stride, so any grid covers any n.
#include "cuda_prelude.h"

// Launch: block (256, 1, 1); grid (g, 1, 1) for any g >= 1; no shared memory.
extern "C" __global__ void gpuprobe_compare(unsigned long long n,
                                            const unsigned int *got,
                                            const unsigned int *want,
                                            unsigned int *differ) {
  const unsigned long long stride =
      (unsigned long long)gridDim.x * blockDim.x;
  bool wrong = false;
  for (unsigned long long i =
           (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < n; i += stride) {
    const unsigned int a = got[i];
    const unsigned int b = want[i];
    wrong |= a != b && ((a | b) & 0x7fffffffu) != 0;
  }
  if (wrong) {
    *differ = 1;
  }
}
