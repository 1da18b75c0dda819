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
