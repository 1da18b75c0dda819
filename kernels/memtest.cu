// The memory test's kernels (`memtest` stage, src/checks/memtest.rs): write
// a pattern over device memory and read it back, at memory speed, so that
// a stuck bit, a coupling between cells or an addressing fault of the HBM
// shows as a word that does not read back as written.
//
// Every word's pattern is a function of its index in the tested region
// (`at`: the chunk's first word, `base`, plus the index in the chunk), so a
// pattern needs no second buffer to compare against and a mismatch names
// its place in the region:
//   GP_SOLID        param, in every word (walking ones and zeros, the
//                   moving inversions of all ones and all zeros)
//   GP_OWN_ADDRESS  the word's index, low 32 bits xor high 32 bits, xor
//                   param: two words that alias (an address line stuck or
//                   shorted) hold different values and read back each
//                   other's (memtest86's "own address" test)
//   GP_RANDOM       a 32-bit hash of (seed, index), xor param: neighbours
//                   differ in every bit position half of the time, which
//                   is what catches a coupling between two cells that
//                   solid patterns always write alike
// param = 0xffffffff gives each pattern's inverse (moving inversions).
//
// The verify kernels count every mismatch with an atomic add on one 64-bit
// counter and record the first `max_records` as (index low, index high,
// expected, actual) in `records`: the slot is the counter's value before
// the add, so each slot is written by one thread only. `verify_invert`
// writes the inverse of the expected word after reading it, as memtest86's
// moving inversions do; that read-then-write order is per word, so a
// coupled cell whose neighbour changed after its own write reads wrong in
// the next sweep. Grid-stride: any grid covers any n.
#include "cuda_prelude.h"

#define GP_SOLID 0u
#define GP_OWN_ADDRESS 1u
#define GP_RANDOM 2u

// lowbias32 (Chris Wellons, "Prospecting for Hash Functions"): a cheap
// 32-bit mix whose every output bit depends on every input bit.
__device__ static inline unsigned int gp_mix32(unsigned int x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__device__ static inline unsigned int gp_memtest_word(unsigned int kind,
                                                      unsigned long long at,
                                                      unsigned int param,
                                                      unsigned int seed) {
  const unsigned int lo = (unsigned int)at;
  const unsigned int hi = (unsigned int)(at >> 32);
  if (kind == GP_OWN_ADDRESS) {
    return (lo ^ hi) ^ param;
  }
  if (kind == GP_RANDOM) {
    return gp_mix32(lo ^ gp_mix32(hi ^ seed)) ^ param;
  }
  return param;
}

__device__ static inline void gp_memtest_check(unsigned long long at,
                                               unsigned int want,
                                               unsigned int got,
                                               unsigned long long *count,
                                               unsigned int *records,
                                               unsigned int max_records) {
  const unsigned long long slot = gp_atomic_add_u64(count, 1ull);
  if (slot < max_records) {
    unsigned int *r = records + 4 * slot;
    r[0] = (unsigned int)at;
    r[1] = (unsigned int)(at >> 32);
    r[2] = want;
    r[3] = got;
  }
}

// Launch: block (256, 1, 1); grid (g, 1, 1) for any g >= 1; no shared memory.
extern "C" __global__ void gpuprobe_memtest_write(unsigned long long n,
                                                  unsigned int *buf,
                                                  unsigned long long base,
                                                  unsigned int kind,
                                                  unsigned int param,
                                                  unsigned int seed) {
  const unsigned long long stride =
      (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i =
           (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < n; i += stride) {
    buf[i] = gp_memtest_word(kind, base + i, param, seed);
  }
}

// Launch: as gpuprobe_memtest_write. `records` holds 4 * max_records words.
extern "C" __global__ void gpuprobe_memtest_verify(
    unsigned long long n, const unsigned int *buf, unsigned long long base,
    unsigned int kind, unsigned int param, unsigned int seed,
    unsigned long long *count, unsigned int *records,
    unsigned int max_records) {
  const unsigned long long stride =
      (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i =
           (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < n; i += stride) {
    const unsigned int want = gp_memtest_word(kind, base + i, param, seed);
    const unsigned int got = buf[i];
    if (got != want) {
      gp_memtest_check(base + i, want, got, count, records, max_records);
    }
  }
}

// Launch: as gpuprobe_memtest_write. Checks each word against the pattern,
// then writes the pattern's inverse there.
extern "C" __global__ void gpuprobe_memtest_verify_invert(
    unsigned long long n, unsigned int *buf, unsigned long long base,
    unsigned int kind, unsigned int param, unsigned int seed,
    unsigned long long *count, unsigned int *records,
    unsigned int max_records) {
  const unsigned long long stride =
      (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i =
           (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < n; i += stride) {
    const unsigned int want = gp_memtest_word(kind, base + i, param, seed);
    const unsigned int got = buf[i];
    if (got != want) {
      gp_memtest_check(base + i, want, got, count, records, max_records);
    }
    buf[i] = ~want;
  }
}
