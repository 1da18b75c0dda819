// Host emulation of the CUDA execution model for the fake driver.
//
// kernels/*.cu are compiled for the CPU with this header force-included, and
// the fake cuLaunchKernel runs them with the grid, block and arguments that
// gpuprobe passed: one OS thread per thread of a block, blocks one after
// another, `__shared__` variables shared by the threads of the running block
// (function-local statics; launches are serialised, so one block's shared
// memory is never seen by another launch), and `__syncthreads` a barrier
// across the block's threads.
#pragma once

struct gp_dim3 {
  unsigned int x, y, z;
};

extern thread_local gp_dim3 threadIdx;
extern thread_local gp_dim3 blockIdx;
extern gp_dim3 blockDim;
extern gp_dim3 gridDim;

void __syncthreads();

#define __global__
#define __device__
#define __shared__ static
