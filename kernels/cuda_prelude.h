// Declarations the kernels need from CUDA, without the CUDA toolkit.
//
// For the GPU, kernels are compiled by clang in CUDA device mode with
// -nocudainc (scripts/build-ptx), so the attributes and built-in variables that
// nvcc's headers would provide are spelled out here. For the host, the fake
// driver's build defines GPUPROBE_HOST_EMULATION and force-includes its own
// emulation of the execution model instead (tests/fakegpu/emu/cuda_emu.h).
#pragma once

#ifndef GPUPROBE_HOST_EMULATION
#include <__clang_cuda_builtin_vars.h>
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#endif

// Four floats as one 128-bit value: a load or store of one is a single
// ld/st .v4.f32 on the GPU when the address is 16-byte aligned (PTX ISA,
// "Vectors": vector loads must be naturally aligned). GCC and clang both
// accept `vector_size`, so the host emulation uses the same type.
typedef float gp_float4 __attribute__((vector_size(16)));

// __launch_bounds__(threads, blocks per SM) (CUDA C++ Programming Guide,
// "Launch Bounds"): caps registers so that many blocks fit an SM. The host
// emulation has no registers to cap.
#ifndef GPUPROBE_HOST_EMULATION
#define GP_LAUNCH_BOUNDS(threads, blocks)                                      \
  __attribute__((launch_bounds(threads, blocks)))
#else
#define GP_LAUNCH_BOUNDS(threads, blocks)
#endif

// atomicAdd on an unsigned 64-bit word: returns the value before the add
// (CUDA C++ Programming Guide, "atomicAdd()": the unsigned long long form,
// every compute capability). Without nvcc's headers the device side is
// clang's NVPTX builtin (atom.add.u64, PTX ISA "atom"); the host emulation
// uses the compiler's own atomic, as threads of a block may run in turn.
#ifndef GPUPROBE_HOST_EMULATION
static __device__ inline unsigned long long
gp_atomic_add_u64(unsigned long long *p, unsigned long long v) {
  return (unsigned long long)__nvvm_atom_add_gen_ll((long long *)p,
                                                    (long long)v);
}
#else
static inline unsigned long long gp_atomic_add_u64(unsigned long long *p,
                                                   unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
#endif
