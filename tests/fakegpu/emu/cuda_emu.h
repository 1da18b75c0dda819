// Host emulation of the CUDA execution model for the fake driver.
//
// kernels/*.cu are compiled for the CPU with this header included first, and
// the fake cuLaunchKernel runs them with the grid, block and arguments that
// gpuprobe passed: blocks one after another; within a block, one coroutine
// (ucontext) per CUDA thread, each with its own stack; `__shared__` variables
// shared by the threads of the running block (function-local statics;
// launches are serialised, so one block's shared memory is never seen by
// another launch); and `__syncthreads` a barrier: every thread of the block
// runs up to it before any thread runs past it.
#pragma once

struct gp_dim3 {
  unsigned int x, y, z;
};

// Set by the scheduler before it resumes each CUDA thread.
extern gp_dim3 threadIdx;
extern gp_dim3 blockIdx;
extern gp_dim3 blockDim;
extern gp_dim3 gridDim;

void __syncthreads();

#define __global__
#define __device__
#define __shared__ static

// mma.sync, warp-collective: every lane passes its fragments of A, B and C
// and receives its fragment of D = A·B + C, in the layouts of the PTX ISA
// ("Matrix Fragments for mma.m16n8k8" for .tf32, "Matrix Fragments for
// mma.m16n8k16 with floating point type" for .bf16; see emu.cpp). The
// emulation exchanges fragments through memory between two barriers of the
// whole block, so every warp of the block must issue the same sequence of
// mma calls (as gpuprobe's kernels do: their loops are uniform) and the
// block must be whole warps; otherwise the launch fails.
void gp_emu_mma_m16n8k8_tf32(float d[4], const unsigned a[4],
                             const unsigned b[2], const float c[4]);
void gp_emu_mma_m16n8k16_bf16(float d[4], const unsigned a[4],
                              const unsigned b[2], const float c[4]);
