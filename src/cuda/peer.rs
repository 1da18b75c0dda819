//! Peer-to-peer: whether one GPU may access another's memory, enabling that
//! access from this thread's context, and the two writers that use it: a
//! copy into a peer's buffer and a kernel storing into one.
//! Its SAFETY comments cite the facts listed in cuda/mod.rs: (fn), (out),
//! (handle).
use std::ffi::{c_int, c_void};

use super::driver::{CuContext, CuDevice, CuDevicePtr, Driver};
use super::error::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
use super::module::launch;
use super::{Buffer, Context, CopyError, CudaError, Kernel};

/// Whether `device` may access `peer`'s memory (cuDeviceCanAccessPeer: a
/// capability the driver reports, not proof that data crosses intact).
pub fn can_access_peer(
    driver: &Driver,
    device: CuDevice,
    peer: CuDevice,
) -> Result<bool, CudaError> {
    let mut can: c_int = 0;
    // SAFETY: (fn), (out); both devices came from cuDeviceGet.
    driver.call("cuDeviceCanAccessPeer", || unsafe {
        (driver.api.cuDeviceCanAccessPeer)(&raw mut can, device, peer)
    })?;
    Ok(can != 0)
}

/// A device buffer of another GPU, by address: what the peer's own thread
/// allocated and lent for the writers here to fill.
#[derive(Debug, Clone, Copy)]
pub struct PeerBuffer {
    pub ptr: CuDevicePtr,
    /// Its length in 32-bit words.
    pub words: usize,
}

/// Access from this thread's context to a peer GPU's memory, enabled for
/// as long as this lives; it holds the peer's primary context retained,
/// so the mapping cannot outlive it.
pub struct PeerAccess<'c> {
    ctx: &'c Context<'c>,
    peer: CuDevice,
}

impl<'c> PeerAccess<'c> {
    /// Enables access from `ctx` to `peer`'s memory (cuCtxEnablePeerAccess
    /// with `peer`'s primary context); access enabled before counts
    /// (CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED).
    pub fn enable(ctx: &'c Context<'c>, peer: CuDevice) -> Result<Self, CudaError> {
        let driver = ctx.driver;
        let mut handle = CuContext::NULL;
        // SAFETY: (fn), (out); `peer` came from cuDeviceGet. Retaining a
        // primary context does not make it current on this thread.
        driver.call("cuDevicePrimaryCtxRetain", || unsafe {
            (driver.api.cuDevicePrimaryCtxRetain)(&raw mut handle, peer)
        })?;
        // From here on, dropping `access` releases the retained context.
        let access = PeerAccess { ctx, peer };
        // SAFETY: (fn), (handle): `handle` is the peer's primary context,
        // retained above and held by `access`; `ctx` is current on this
        // thread; flags must be 0 (CUDA driver API, cuCtxEnablePeerAccess).
        let code = unsafe { (driver.api.cuCtxEnablePeerAccess)(handle, 0) };
        if code != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED {
            driver.check("cuCtxEnablePeerAccess", code)?;
        }
        Ok(access)
    }

    /// Queues a copy of the first `peer.words` words of `src` (this GPU's)
    /// into `peer` (the peer's) on the default stream, over the peer path.
    ///
    /// # Safety
    /// `peer` must be a live allocation of this `PeerAccess`'s peer GPU
    /// holding `peer.words` words, kept alive until this context has been
    /// synchronised after the copy.
    pub unsafe fn copy_into(&self, src: &Buffer<'_>, peer: PeerBuffer) -> Result<(), CopyError> {
        if src.len() < peer.words {
            return Err(CopyError::TooLarge {
                call: "cuMemcpyDtoD_v2",
                host: peer.words,
                device: src.len(),
            });
        }
        let driver = self.ctx.driver;
        // SAFETY: (fn), (handle) for `src`, which holds at least
        // `peer.words` words (checked above); the caller promises the
        // destination. Under unified addressing cuMemcpyDtoD takes a peer's
        // device pointer (CUDA Programming Guide, "Peer-to-Peer Memory
        // Copy").
        driver.call("cuMemcpyDtoD_v2", || unsafe {
            (driver.api.cuMemcpyDtoD_v2)(peer.ptr, src.ptr, peer.words * 4)
        })?;
        Ok(())
    }

    /// Queues `gpuprobe_peer_write` (kernels/peer.cu) on this GPU, storing
    /// the pattern of `seed` into `peer` through the peer mapping.
    ///
    /// # Safety
    /// `kernel` must be that kernel, loaded in this context; `peer` as for
    /// `copy_into`.
    pub unsafe fn store_into(
        &self,
        kernel: &Kernel<'_>,
        (grid, block): ([u32; 3], [u32; 3]),
        peer: PeerBuffer,
        seed: u32,
    ) -> Result<(), CudaError> {
        let (mut n, mut dst, mut s) = (peer.words as u64, peer.ptr, seed);
        let mut params: [*mut c_void; 3] = [
            (&raw mut n).cast(),
            (&raw mut dst).cast(),
            (&raw mut s).cast(),
        ];
        // SAFETY: `params` points to one live value per parameter of
        // `(unsigned long long n, unsigned int *dst, unsigned int seed)`, in
        // order; the caller promises the kernel and the destination.
        unsafe { launch(self.ctx, kernel, grid, block, &mut params) }
    }
}

impl Drop for PeerAccess<'_> {
    fn drop(&mut self) {
        // The mapping ends with the context (or at the process's end); the
        // retain taken by `enable` is returned. Errors here have nothing
        // left to spoil.
        // SAFETY: (fn); `enable` retained the peer's primary context once.
        unsafe { (self.ctx.driver.api.cuDevicePrimaryCtxRelease_v2)(self.peer) };
    }
}
