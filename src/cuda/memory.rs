//! Memory: device buffers of f32s and pinned host memory, the copies
//! between them, and `CopyError`, what refuses a copy before the driver
//! sees it.
//! Its SAFETY comments cite the facts listed in cuda/mod.rs: (fn), (out),
//! (handle).
use std::ffi::c_void;

use super::driver::{CuDevicePtr, CuStream};
use super::{Context, CudaError};

/// An allocation or copy refused before it reached the driver, or the
/// driver's own error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CopyError {
    #[error("{call}: {host} floats on the host do not fit the {device}-float device buffer")]
    TooLarge {
        call: &'static str,
        host: usize,
        device: usize,
    },
    /// A byte count past what `usize` holds: no allocation that large can
    /// exist, so it is never asked for.
    #[error("{call}: {floats} floats are more bytes than this platform can address")]
    Overflow { call: &'static str, floats: usize },
    /// Pinned memory and a device buffer of different contexts: the copy
    /// would be queued on one context and waited for on another.
    #[error("{call}: the pinned host memory and the device buffer belong to different contexts")]
    OtherContext { call: &'static str },
    #[error(transparent)]
    Cuda(#[from] CudaError),
}

/// Bytes in `floats` f32s, or `Overflow` naming `call`.
fn float_bytes(call: &'static str, floats: usize) -> Result<usize, CopyError> {
    floats
        .checked_mul(size_of::<f32>())
        .ok_or(CopyError::Overflow { call, floats })
}

/// A device allocation of f32s.
pub struct Buffer<'c> {
    ctx: &'c Context<'c>,
    pub ptr: CuDevicePtr,
    len: usize,
}

impl<'c> Buffer<'c> {
    /// `len` floats of device memory; a byte count past `usize` is refused
    /// (`Overflow`) rather than wrapped to a smaller allocation.
    pub fn alloc(ctx: &'c Context<'c>, len: usize) -> Result<Self, CopyError> {
        let bytes = float_bytes("cuMemAlloc_v2", len)?;
        let mut ptr = CuDevicePtr::NULL;
        // SAFETY: (fn), (out).
        ctx.driver.call("cuMemAlloc_v2", || unsafe {
            (ctx.driver.api.cuMemAlloc_v2)(&raw mut ptr, bytes)
        })?;
        Ok(Buffer { ctx, ptr, len })
    }

    /// Floats the buffer holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no float (cuMemAlloc refuses 0 bytes, so
    /// never for a buffer `alloc` made).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` to the start of the buffer; refuses a slice longer than
    /// the buffer rather than copying part of it.
    pub fn upload(&self, data: &[f32]) -> Result<(), CopyError> {
        self.fits("cuMemcpyHtoD_v2", data.len())?;
        // SAFETY: (fn), (handle); `data` is live for the call and the copy
        // reads `data.len()` floats from it and writes as many into the
        // buffer, which holds at least that many (checked above).
        self.ctx.driver.call("cuMemcpyHtoD_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyHtoD_v2)(
                self.ptr,
                data.as_ptr().cast(),
                std::mem::size_of_val(data),
            )
        })?;
        Ok(())
    }

    /// Fills `out` from the start of the buffer; refuses a slice longer than
    /// the buffer rather than leaving part of it as it was.
    pub fn download(&self, out: &mut [f32]) -> Result<(), CopyError> {
        self.fits("cuMemcpyDtoH_v2", out.len())?;
        // SAFETY: (fn), (handle); `out` is live and exclusively borrowed for
        // the call, and the copy writes `out.len()` floats into it, read from
        // the buffer, which holds at least that many (checked above).
        self.ctx.driver.call("cuMemcpyDtoH_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoH_v2)(
                out.as_mut_ptr().cast(),
                self.ptr,
                std::mem::size_of_val(out),
            )
        })?;
        Ok(())
    }

    /// Queues a copy of the first `len` floats of `src` into the start of
    /// this buffer (cuMemcpyDtoD_v2: asynchronous to the host, ordered on
    /// the default stream); refuses a `len` past either buffer's end.
    pub fn copy_from(&self, src: &Buffer<'_>, len: usize) -> Result<(), CopyError> {
        self.fits("cuMemcpyDtoD_v2", len)?;
        src.fits("cuMemcpyDtoD_v2", len)?;
        // SAFETY: (fn), (handle) for both buffers; both hold at least `len`
        // floats (checked above), and device memory is freed only by
        // `Drop`, which the borrows of `self` and `src` hold off until the
        // call returns; the GPU finishes the copy before any later work on
        // the default stream, and before the context's end.
        self.ctx.driver.call("cuMemcpyDtoD_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoD_v2)(self.ptr, src.ptr, len * size_of::<f32>())
        })?;
        Ok(())
    }

    /// Queues a copy of the first `len` floats of `host` into the start of
    /// this buffer on the default stream (cuMemcpyHtoDAsync_v2; from
    /// pinned memory the call returns before the copy is done).
    /// Refuses pinned memory of another context (`OtherContext`).
    pub fn upload_async(&self, host: &Pinned<'_>, len: usize) -> Result<(), CopyError> {
        self.pairs_with("cuMemcpyHtoDAsync_v2", host)?;
        self.fits("cuMemcpyHtoDAsync_v2", len)?;
        host.fits("cuMemcpyHtoDAsync_v2", len)?;
        // SAFETY: (fn), (handle); both sides hold at least `len` floats
        // (checked above). The copy may still read `host` after the call
        // returns: it is queued on this buffer's context, which is `host`'s
        // (checked above), and `Pinned` hands its memory to the host only
        // after synchronising that context, and frees it only after that too.
        self.ctx.driver.call("cuMemcpyHtoDAsync_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyHtoDAsync_v2)(
                self.ptr,
                host.ptr.cast_const().cast(),
                len * size_of::<f32>(),
                CuStream::NULL,
            )
        })?;
        Ok(())
    }

    /// Queues a copy of the first `len` floats of this buffer into the
    /// start of `host` on the default stream (cuMemcpyDtoHAsync_v2);
    /// refuses pinned memory of another context (`OtherContext`).
    pub fn download_async(&self, host: &Pinned<'_>, len: usize) -> Result<(), CopyError> {
        self.pairs_with("cuMemcpyDtoHAsync_v2", host)?;
        self.fits("cuMemcpyDtoHAsync_v2", len)?;
        host.fits("cuMemcpyDtoHAsync_v2", len)?;
        // SAFETY: (fn), (handle); both sides hold at least `len` floats
        // (checked above). The copy may write `host` after the call
        // returns; it is queued on this buffer's context, which is `host`'s
        // (checked above), and the host reads or writes a `Pinned` only
        // through `Pinned::host`, which first waits for every copy queued
        // on that context, and `Drop` waits too before freeing it.
        self.ctx.driver.call("cuMemcpyDtoHAsync_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoHAsync_v2)(
                host.ptr.cast(),
                self.ptr,
                len * size_of::<f32>(),
                CuStream::NULL,
            )
        })?;
        Ok(())
    }

    /// The address of element `at`, or `None` past the end.
    #[must_use]
    pub fn ptr_at(&self, at: usize) -> Option<CuDevicePtr> {
        (at < self.len).then(|| self.ptr.offset((at * size_of::<f32>()) as u64))
    }

    /// Whether `host` was allocated through this buffer's `Context` (the
    /// same value, not merely the same device): `Pinned` waits for its
    /// copies by synchronising its own context, so a copy queued on
    /// another could still run when the host is handed the memory.
    fn pairs_with(&self, call: &'static str, host: &Pinned<'_>) -> Result<(), CopyError> {
        if std::ptr::eq(self.ctx, host.ctx) {
            Ok(())
        } else {
            Err(CopyError::OtherContext { call })
        }
    }

    fn fits(&self, call: &'static str, host: usize) -> Result<(), CopyError> {
        if host > self.len {
            return Err(CopyError::TooLarge {
                call,
                host,
                device: self.len,
            });
        }
        Ok(())
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        // SAFETY: (fn), (handle); allocated by `alloc`, freed once.
        unsafe { (self.ctx.driver.api.cuMemFree_v2)(self.ptr) };
    }
}

/// Page-locked ("pinned") host memory of f32s (cuMemAllocHost_v2), which the
/// GPU's copy engines read and write directly, so that copies from and to it
/// run at the host link's speed and return before they are done
/// (cuMemcpyHtoDAsync_v2 and cuMemcpyDtoHAsync_v2).
///
/// Such a copy may still be running after its call returned, so the host
/// never sees this memory while one could be: `host` waits for the context's
/// work first, and `Drop` waits before freeing it.
pub struct Pinned<'c> {
    ctx: &'c Context<'c>,
    ptr: *mut f32,
    len: usize,
}

impl<'c> Pinned<'c> {
    /// `len` zeroed floats of pinned memory. The driver refuses it (an
    /// error, never a panic) when the host cannot lock that much memory or
    /// does not offer page-locked memory at all; a byte count past `usize`
    /// is refused before asking (`Overflow`).
    pub fn alloc(ctx: &'c Context<'c>, len: usize) -> Result<Self, CopyError> {
        let bytes = float_bytes("cuMemAllocHost_v2", len)?;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: (fn), (out).
        ctx.driver.call("cuMemAllocHost_v2", || unsafe {
            (ctx.driver.api.cuMemAllocHost_v2)(&raw mut ptr, bytes)
        })?;
        let pinned = Pinned {
            ctx,
            ptr: ptr.cast(),
            len,
        };
        // SAFETY: the driver returned `len` floats of host memory, aligned
        // for any type (page-aligned: CUDA driver API, cuMemAllocHost); no
        // copy uses it yet. Zeroing it makes every float initialised before
        // `host` can hand out a slice of it.
        unsafe { pinned.ptr.write_bytes(0, len) };
        Ok(pinned)
    }

    /// The memory, once every copy queued on the context has finished.
    pub fn host(&mut self) -> Result<&mut [f32], CudaError> {
        self.ctx.synchronize()?;
        // SAFETY: `len` initialised floats (zeroed by `alloc`) that this
        // value owns; no copy runs any more (synchronised above) and none
        // can be queued while the slice borrows `self` mutably, since
        // queueing one borrows it too.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }

    fn fits(&self, call: &'static str, len: usize) -> Result<(), CopyError> {
        if len > self.len {
            return Err(CopyError::TooLarge {
                call,
                host: len,
                device: self.len,
            });
        }
        Ok(())
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        // A queued copy may still use the memory; errors here have nothing
        // left to spoil (the report has the real ones).
        let _ = self.ctx.synchronize();
        // SAFETY: (fn); allocated by `alloc`, freed once, no copy running.
        unsafe { (self.ctx.driver.api.cuMemFreeHost)(self.ptr.cast()) };
    }
}
