// Runs the project's kernels on the CPU for the fake driver (see cuda_emu.h).
#include <pthread.h>

#include <cstddef>
#include <cstring>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_emu.h"

thread_local gp_dim3 threadIdx;
thread_local gp_dim3 blockIdx;
gp_dim3 blockDim;
gp_dim3 gridDim;

static pthread_barrier_t block_barrier;

void __syncthreads() { pthread_barrier_wait(&block_barrier); }

// The kernels themselves: the same source the PTX is compiled from.
#include KERNELS_SOURCE

namespace {

using launcher = void (*)(void **params);

// Unpacks cuLaunchKernel's `kernelParams` (an array of pointers to each
// argument) into a typed call, so the kernel sees exactly what gpuprobe passed.
template <typename... Args, std::size_t... I>
void invoke(void (*kernel)(Args...), void **params, std::index_sequence<I...>) {
  kernel(*static_cast<std::decay_t<Args> *>(params[I])...);
}

template <auto Kernel> struct entry;
template <typename... Args, void (*Kernel)(Args...)> struct entry<Kernel> {
  static constexpr std::size_t arity = sizeof...(Args);
  static void launch(void **params) {
    invoke(Kernel, params, std::index_sequence_for<Args...>{});
  }
};

struct kernel_info {
  const char *name;
  launcher launch;
  std::size_t arity;
};

#define GPUPROBE_KERNEL(name) {#name, entry<name>::launch, entry<name>::arity},
const kernel_info kernels[] = {
#include KERNELS_TABLE
};
#undef GPUPROBE_KERNEL

} // namespace

extern "C" {

// Number of parameters of a kernel, or -1 when the source defines no such kernel.
int fakegpu_kernel_arity(const char *name) {
  for (const auto &k : kernels) {
    if (std::strcmp(k.name, name) == 0) return static_cast<int>(k.arity);
  }
  return -1;
}

// Runs one launch to completion. The caller holds the launch lock and has
// validated the dimensions. Returns 0, or -1 for an unknown kernel or a
// thread that could not be started.
int fakegpu_run_kernel(const char *name, const unsigned grid[3],
                       const unsigned block[3], void **params) {
  const kernel_info *info = nullptr;
  for (const auto &k : kernels) {
    if (std::strcmp(k.name, name) == 0) info = &k;
  }
  if (info == nullptr) return -1;

  gridDim = {grid[0], grid[1], grid[2]};
  blockDim = {block[0], block[1], block[2]};
  const unsigned threads = block[0] * block[1] * block[2];
  pthread_barrier_init(&block_barrier, nullptr, threads);

  auto body = [info, grid, block, params](unsigned linear) {
    threadIdx = {linear % block[0], (linear / block[0]) % block[1],
                 linear / (block[0] * block[1])};
    for (unsigned z = 0; z < grid[2]; ++z)
      for (unsigned y = 0; y < grid[1]; ++y)
        for (unsigned x = 0; x < grid[0]; ++x) {
          blockIdx = {x, y, z};
          info->launch(params);
          // The block is done only when all its threads are: the next block
          // reuses the same shared memory.
          pthread_barrier_wait(&block_barrier);
        }
  };

  std::vector<std::thread> workers;
  workers.reserve(threads);
  int status = 0;
  try {
    for (unsigned t = 1; t < threads; ++t) workers.emplace_back(body, t);
  } catch (...) {
    status = -1;
  }
  if (status == 0) body(0);
  for (auto &w : workers) w.join();
  pthread_barrier_destroy(&block_barrier);
  return status;
}

} // extern "C"
