// The peer-to-peer check's kernel writer: a kernel on one GPU stores a
// pattern into a buffer in another GPU's memory through the peer mapping
// that cuCtxEnablePeerAccess made (a plain global store: under unified
// addressing a peer's allocation is an ordinary device pointer). The GPU
// that holds the buffer copies it back and the host checks every word
// against the same pattern (src/checks/peer.rs, `peer_word`), so a store
// the path between the GPUs drops, corrupts or misroutes is caught and
// named by pair and writer. Word i is a hash of the pair's seed and i:
// every word differs from its neighbours and from every other pair's, so a
// word that lands in the wrong place or the wrong buffer is caught too.
#include "cuda_prelude.h"

// lowbias32 (Chris Wellons, "Prospecting for Hash Functions"), as in
// kernels/memtest.cu.
__device__ static inline unsigned int gp_peer_mix32(unsigned int x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Launch: block (256, 1, 1); grid (g, 1, 1) for any g >= 1 (grid-stride);
// no shared memory.
extern "C" __global__ void gpuprobe_peer_write(unsigned long long n,
                                               unsigned int *dst,
                                               unsigned int seed) {
  const unsigned long long stride =
      (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i =
           (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < n; i += stride) {
    const unsigned int lo = (unsigned int)i;
    const unsigned int hi = (unsigned int)(i >> 32);
    dst[i] = gp_peer_mix32(lo ^ gp_peer_mix32(hi ^ seed));
  }
}
