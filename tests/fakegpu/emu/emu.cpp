// Runs the project's kernels on the CPU for the fake driver (see cuda_emu.h).
//
// Each CUDA thread of a block is a coroutine on one OS thread. The scheduler
// resumes every unfinished thread in turn; a thread runs until it calls
// __syncthreads (which switches back to the scheduler) or returns. One pass
// over the block therefore brings every thread to the same barrier, which is
// __syncthreads' contract; a kernel that reaches barriers unevenly (undefined
// behaviour in CUDA) is reported as a failed launch instead of hanging.
//
// Coroutines are ucontext on Linux and fibers on Windows (the fake's
// nvcuda.dll, cross-built with mingw-w64, which has no ucontext):
// CreateFiber/SwitchToFiber are Windows' documented user-mode scheduling
// primitive (Microsoft, "Fibers"). A fiber must not return from its start
// routine (that ends the OS thread), so a finished CUDA thread switches back
// to the scheduler for good and its fiber is deleted after the block.
#ifdef _WIN32
#include <windows.h>
#else
#include <ucontext.h>
#endif

#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_emu.h"

gp_dim3 threadIdx;
gp_dim3 blockIdx;
gp_dim3 blockDim;
gp_dim3 gridDim;

namespace {

// Stack of each CUDA thread; the kernels keep little on it.
constexpr std::size_t STACK_BYTES = 64 * 1024;

#ifdef _WIN32
void *scheduler;
std::vector<void *> contexts;
#else
ucontext_t scheduler;
std::vector<ucontext_t> contexts;
std::vector<std::unique_ptr<char[]>> stacks;
#endif
std::vector<int> barriers_hit;
unsigned running;

// Back to the scheduler from CUDA thread `running`.
void yield_to_scheduler() {
#ifdef _WIN32
  SwitchToFiber(scheduler);
#else
  swapcontext(&contexts[running], &scheduler);
#endif
}

} // namespace

void __syncthreads() {
  barriers_hit[running] += 1;
  yield_to_scheduler();
}

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

const kernel_info *current_kernel;
void **current_params;
std::vector<bool> finished;

void thread_body() {
  current_kernel->launch(current_params);
  finished[running] = true;
#ifdef _WIN32
  // Never resumed again: the scheduler deletes this fiber.
  yield_to_scheduler();
#else
  // Returning resumes uc_link, the scheduler.
#endif
}

#ifdef _WIN32
void WINAPI fiber_start(void *) { thread_body(); }

// Makes the calling OS thread a fiber for the launch, and back afterwards.
struct scheduler_fiber {
  bool converted = false;
  scheduler_fiber() {
    if (IsThreadAFiber()) {
      scheduler = GetCurrentFiber();
    } else {
      scheduler = ConvertThreadToFiber(nullptr);
      converted = scheduler != nullptr;
    }
  }
  ~scheduler_fiber() {
    for (void *&fiber : contexts) {
      if (fiber != nullptr) DeleteFiber(fiber);
      fiber = nullptr;
    }
    if (converted) ConvertFiberToThread();
  }
};
#endif

// Sets CUDA thread t up to start the kernel from its beginning; false when
// the OS gives no coroutine (Windows: out of memory for a fiber stack).
bool start_thread(unsigned t) {
#ifdef _WIN32
  if (contexts[t] != nullptr) DeleteFiber(contexts[t]);
  contexts[t] = CreateFiber(STACK_BYTES, fiber_start, nullptr);
  return contexts[t] != nullptr;
#else
  getcontext(&contexts[t]);
  contexts[t].uc_stack.ss_sp = stacks[t].get();
  contexts[t].uc_stack.ss_size = STACK_BYTES;
  contexts[t].uc_link = &scheduler;
  makecontext(&contexts[t], thread_body, 0);
  return true;
#endif
}

void resume_thread(unsigned t) {
#ifdef _WIN32
  SwitchToFiber(contexts[t]);
#else
  swapcontext(&scheduler, &contexts[t]);
#endif
}

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
// validated the dimensions. Returns 0; -1 for an unknown kernel; -2 when the
// threads of a block reached different numbers of barriers; -3 when the OS
// gave no coroutine for a thread (Windows only).
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
  current_kernel = info;
  current_params = params;
#ifdef _WIN32
  contexts.assign(threads, nullptr);
  scheduler_fiber converted;
  if (scheduler == nullptr) return -3;
#else
  contexts.resize(threads);
  while (stacks.size() < threads) stacks.emplace_back(new char[STACK_BYTES]);
#endif
  barriers_hit.assign(threads, 0);
  finished.assign(threads, false);

  for (unsigned z = 0; z < grid[2]; ++z)
    for (unsigned y = 0; y < grid[1]; ++y)
      for (unsigned x = 0; x < grid[0]; ++x) {
        blockIdx = {x, y, z};
        std::fill(finished.begin(), finished.end(), false);
        std::fill(barriers_hit.begin(), barriers_hit.end(), 0);
        for (unsigned t = 0; t < threads; ++t) {
          if (!start_thread(t)) return -3;
        }
        unsigned left = threads;
        while (left > 0) {
          for (unsigned t = 0; t < threads; ++t) {
            if (finished[t]) continue;
            running = t;
            threadIdx = {t % block[0], (t / block[0]) % block[1],
                         t / (block[0] * block[1])};
            resume_thread(t);
            if (finished[t]) --left;
          }
          // After a pass every live thread waits at the same barrier.
          int expected = -1;
          for (unsigned t = 0; t < threads; ++t) {
            if (finished[t]) continue;
            if (expected < 0) expected = barriers_hit[t];
            if (barriers_hit[t] != expected) return -2;
          }
          if (left > 0 && left < threads) {
            // Some threads returned while others wait at a barrier.
            return -2;
          }
        }
      }
  return 0;
}

} // extern "C"
