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
//
// On Linux a CUDA thread starts on its own stack through makecontext and
// setcontext, and every later switch (at each barrier) is _setjmp/_longjmp:
// swapcontext saves and restores the signal mask, a system call each way,
// which made the switches most of an emulated launch's time; _longjmp
// leaves the mask alone (glibc manual, "Non-Local Exits"), and no CUDA
// thread touches it. Jumping between stacks whose frames are still live is
// the classic coroutine use of the pair; glibc's fortified longjmp
// (__longjmp_chk, with _FORTIFY_SOURCE) refuses jumps to another stack, so
// this file is built without it.
#ifdef _WIN32
#include <windows.h>
#else
#undef _FORTIFY_SOURCE
#include <setjmp.h>
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
// Where the scheduler resumes when a CUDA thread yields or ends.
jmp_buf scheduler;
// Each CUDA thread's start (used once) and, once it has run, where it
// yielded.
std::vector<ucontext_t> contexts;
struct jump {
  jmp_buf at;
};
std::vector<jump> yielded;
std::vector<bool> entered;
std::vector<std::unique_ptr<char[]>> stacks;
// One getcontext, copied for every thread start (getcontext is a system
// call too).
ucontext_t start_template;
bool have_template;
#endif
std::vector<int> barriers_hit;
unsigned running;
// A barrier-free kernel is running, each thread as a plain call; and
// whether one of its threads reached a barrier all the same.
bool running_direct;
bool direct_barrier;

// Back to the scheduler from CUDA thread `running`.
void yield_to_scheduler() {
#ifdef _WIN32
  SwitchToFiber(scheduler);
#else
  if (_setjmp(yielded[running].at) == 0) _longjmp(scheduler, 1);
#endif
}

} // namespace

void __syncthreads() {
  if (running_direct) {
    // A barrier in a kernel taken for barrier-free: the launch fails
    // rather than run on without the barrier's guarantee.
    direct_barrier = true;
    return;
  }
  barriers_hit[running] += 1;
  yield_to_scheduler();
}

// --- mma.sync ---------------------------------------------------------------
//
// Fragment layouts, from the PTX ISA (sections "Matrix Fragments for
// mma.m16n8k8" and "Matrix Fragments for mma.m16n8k16 with floating point
// type"), with groupID = lane >> 2 and threadID_in_group = lane % 4:
// - .tf32 A (16 x 8), a0..a3: row = groupID for a0, a2 and groupID + 8 for
//   a1, a3; col = threadID_in_group for a0, a1 and + 4 for a2, a3.
// - .tf32 B (8 x 8), b0, b1: row = threadID_in_group for b0, + 4 for b1;
//   col = groupID.
// - .bf16 A (16 x 16), a0..a7, two per .b32 register (the lower-numbered
//   element in the lower half): row = groupID for a0, a1, a4, a5 and
//   groupID + 8 otherwise; col = threadID_in_group * 2 + (i & 1) for i < 4,
//   + 8 for i >= 4.
// - .bf16 B (16 x 8), b0..b3, two per register: row = threadID_in_group * 2
//   + (i & 1) for i < 2, + 8 for i >= 2; col = groupID.
// - C and D (16 x 8, .f32), c0..c3: row = groupID for c0, c1 and + 8 for
//   c2, c3; col = threadID_in_group * 2 + (i & 1).
// For .tf32 the tensor core reads the sign, exponent and top 10 mantissa
// bits of each operand; the emulation clears the low 13 bits the same way
// (gpuprobe's inputs have them zero, so its products do not depend on it).

extern "C" {

// Row and column of element `element` of lane `lane`'s fragment of
// `matrix` ('a', 'b' or 'c') for `shape` 0 (m16n8k8 .tf32) or 1 (m16n8k16
// .bf16). Returns 0, or -1 for an element that does not exist.
int fakegpu_mma_fragment(int shape, char matrix, int lane, int element,
                         int *row, int *col) {
  const int g = lane >> 2, t = lane % 4, i = element;
  if (lane < 0 || lane >= 32 || i < 0) return -1;
  if (matrix == 'c') {
    if (i >= 4) return -1;
    *row = g + (i >= 2 ? 8 : 0);
    *col = t * 2 + (i & 1);
    return 0;
  }
  if (shape == 0 && matrix == 'a') {
    if (i >= 4) return -1;
    *row = (i == 0 || i == 2) ? g : g + 8;
    *col = (i < 2) ? t : t + 4;
    return 0;
  }
  if (shape == 0 && matrix == 'b') {
    if (i >= 2) return -1;
    *row = i == 0 ? t : t + 4;
    *col = g;
    return 0;
  }
  if (shape == 1 && matrix == 'a') {
    if (i >= 8) return -1;
    *row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
    *col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
    return 0;
  }
  if (shape == 1 && matrix == 'b') {
    if (i >= 4) return -1;
    *row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
    *col = g;
    return 0;
  }
  return -1;
}

} // extern "C"

namespace {

constexpr unsigned MAX_WARPS = 1024 / 32;

// Each lane's fragments, per warp, between the two barriers of one mma,
// and the warp's D (16 x 8), computed once by whichever lane of the warp
// runs first after the first barrier (`done` is cleared by every lane
// before it, and read only after it, so the order the scheduler resumes
// lanes in does not matter).
struct mma_exchange {
  unsigned a[32][4];
  unsigned b[32][2];
  float c[32][4];
  float d[16][8];
  bool done;
};
mma_exchange exchange[MAX_WARPS];

// Set when a block is not whole warps; the launch then fails.
bool mma_partial_warp;

float tf32_value(unsigned bits) {
  bits &= 0xffffe000u;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bf16_value(unsigned half) {
  const unsigned bits = half << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// One mma.sync of shape 0 (m16n8k8 .tf32) or 1 (m16n8k16 .bf16).
void mma(int shape, float d[4], const unsigned a[4], const unsigned b[2],
         const float c[4]) {
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  if (threads % 32 != 0) mma_partial_warp = true;
  const unsigned warp = running / 32, lane = running % 32;
  mma_exchange &x = exchange[warp];
  std::memcpy(x.a[lane], a, sizeof x.a[lane]);
  std::memcpy(x.b[lane], b, sizeof x.b[lane]);
  std::memcpy(x.c[lane], c, sizeof x.c[lane]);
  x.done = false;
  __syncthreads(); // every lane's fragments are in `exchange`

  int row, col;
  if (!x.done) {
    const int kdim = shape == 0 ? 8 : 16;
    float A[16][16] = {}, B[16][8] = {}, C[16][8] = {};
    for (int l = 0; l < 32; ++l) {
      for (int i = 0; i < (shape == 0 ? 4 : 8); ++i) {
        fakegpu_mma_fragment(shape, 'a', l, i, &row, &col);
        A[row][col] = shape == 0 ? tf32_value(x.a[l][i])
                                 : bf16_value((x.a[l][i / 2] >> (16 * (i & 1))) & 0xffffu);
      }
      for (int i = 0; i < (shape == 0 ? 2 : 4); ++i) {
        fakegpu_mma_fragment(shape, 'b', l, i, &row, &col);
        B[row][col] = shape == 0 ? tf32_value(x.b[l][i])
                                 : bf16_value((x.b[l][i / 2] >> (16 * (i & 1))) & 0xffffu);
      }
      for (int i = 0; i < 4; ++i) {
        fakegpu_mma_fragment(shape, 'c', l, i, &row, &col);
        C[row][col] = x.c[l][i];
      }
    }
    for (int r = 0; r < 16; ++r) {
      for (int cc = 0; cc < 8; ++cc) {
        float sum = C[r][cc];
        for (int p = 0; p < kdim; ++p) sum += A[r][p] * B[p][cc];
        x.d[r][cc] = sum;
      }
    }
    x.done = true;
  }
  float out[4];
  for (int i = 0; i < 4; ++i) {
    fakegpu_mma_fragment(shape, 'c', static_cast<int>(lane), i, &row, &col);
    out[i] = x.d[row][col];
  }
  __syncthreads(); // every lane has read `exchange` before it is reused
  std::memcpy(d, out, sizeof out);
}

} // namespace

void gp_emu_mma_m16n8k8_tf32(float d[4], const unsigned a[4],
                             const unsigned b[2], const float c[4]) {
  mma(0, d, a, b, c);
}

void gp_emu_mma_m16n8k16_bf16(float d[4], const unsigned a[4],
                              const unsigned b[2], const float c[4]) {
  mma(1, d, a, b, c);
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
  // No barrier in its source (build.rs): its threads never wait for one
  // another, so any order of running them whole is a schedule a GPU could
  // take, and each runs as a plain call, without a coroutine.
  bool barrier_free;
};

#define GPUPROBE_KERNEL(name, barrier_free)                                    \
  {#name, entry<name>::launch, entry<name>::arity, barrier_free},
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
  // Never resumed again: the scheduler deletes this fiber, or starts the
  // thread afresh on this stack.
  yield_to_scheduler();
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
  if (!have_template) {
    if (getcontext(&start_template) != 0) return false;
    have_template = true;
  }
  contexts[t] = start_template;
  contexts[t].uc_stack.ss_sp = stacks[t].get();
  contexts[t].uc_stack.ss_size = STACK_BYTES;
  contexts[t].uc_link = nullptr; // thread_body never returns
  makecontext(&contexts[t], thread_body, 0);
  entered[t] = false;
  return true;
#endif
}

void resume_thread(unsigned t) {
#ifdef _WIN32
  SwitchToFiber(contexts[t]);
#else
  if (_setjmp(scheduler) == 0) {
    if (!entered[t]) {
      entered[t] = true;
      setcontext(&contexts[t]);
    }
    _longjmp(yielded[t].at, 1);
  }
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

// Runs a barrier-free launch: block after block, thread after thread, each
// a plain call. Returns as fakegpu_run_kernel does.
static int run_direct(const unsigned grid[3], const unsigned block[3],
               unsigned threads) {
  running_direct = true;
  direct_barrier = false;
  for (unsigned z = 0; z < grid[2]; ++z)
    for (unsigned y = 0; y < grid[1]; ++y)
      for (unsigned x = 0; x < grid[0]; ++x) {
        blockIdx = {x, y, z};
        for (unsigned t = 0; t < threads && !direct_barrier; ++t) {
          running = t;
          threadIdx = {t % block[0], (t / block[0]) % block[1],
                       t / (block[0] * block[1])};
          current_kernel->launch(current_params);
        }
      }
  running_direct = false;
  return direct_barrier ? -2 : 0;
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

  mma_partial_warp = false;
  gridDim = {grid[0], grid[1], grid[2]};
  blockDim = {block[0], block[1], block[2]};
  const unsigned threads = block[0] * block[1] * block[2];
  current_kernel = info;
  current_params = params;
  if (info->barrier_free) return run_direct(grid, block, threads);
#ifdef _WIN32
  contexts.assign(threads, nullptr);
  scheduler_fiber converted;
  if (scheduler == nullptr) return -3;
#else
  contexts.resize(threads);
  yielded.resize(threads);
  entered.assign(threads, false);
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
  // mma.sync needs whole warps: on a GPU, undefined behaviour.
  if (mma_partial_warp) return -2;
  return 0;
}

} // extern "C"
