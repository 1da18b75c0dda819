//! The device's primary context, bound to the thread that uses it; every
//! other owner borrows it.
//! Its SAFETY comments cite the facts listed in cuda/mod.rs: (fn), (out),
//! (handle).
use std::marker::PhantomData;

use super::driver::{CuContext, CuDevice, Driver};
use super::CudaError;

/// The device's primary context, current on the thread that bound it while
/// it lives.
///
/// Not `Send` and not `Sync`, on purpose. The CUDA driver API binds a
/// context to the calling CPU thread (cuCtxSetCurrent: "Binds the specified
/// CUDA context to the calling CPU thread"), and every call below, and every
/// owner that borrows this, relies on the context being current on the
/// thread making the call; `Drop` unbinds it from the current thread. A
/// context may be made current on other threads too (cuCtxSetCurrent,
/// cuCtxPushCurrent; CUDA Programming Guide, "Context"), but this type does
/// not do that: moving it to another thread would leave it current where it
/// no longer lives and make its calls run against whatever that thread has
/// current. gpuprobe gives each device a thread of its own, so nothing needs
/// more.
pub struct Context<'d> {
    pub driver: &'d Driver,
    device: CuDevice,
    _bound_to_this_thread: PhantomData<*const ()>,
}

impl<'d> Context<'d> {
    pub fn bind(driver: &'d Driver, device: CuDevice) -> Result<Self, CudaError> {
        let mut ctx = CuContext::NULL;
        // SAFETY: (fn), (out); `device` came from cuDeviceGet.
        driver.call("cuDevicePrimaryCtxRetain", || unsafe {
            (driver.api.cuDevicePrimaryCtxRetain)(&raw mut ctx, device)
        })?;
        // From here on, dropping `bound` releases the retained context.
        let bound = Context {
            driver,
            device,
            _bound_to_this_thread: PhantomData,
        };
        // SAFETY: (fn); `ctx` was just retained and is held by `bound`.
        driver.call("cuCtxSetCurrent", || unsafe {
            (driver.api.cuCtxSetCurrent)(ctx)
        })?;
        Ok(bound)
    }

    /// (free, total) bytes.
    pub fn memory_info(&self) -> Result<(u64, u64), CudaError> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: (fn), (out); this context is current on this thread.
        self.driver.call("cuMemGetInfo_v2", || unsafe {
            (self.driver.api.cuMemGetInfo_v2)(&raw mut free, &raw mut total)
        })?;
        Ok((free as u64, total as u64))
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        // SAFETY: (fn); no arguments.
        self.driver.call("cuCtxSynchronize", || unsafe {
            (self.driver.api.cuCtxSynchronize)()
        })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // Errors here have nothing left to spoil; the report has the real ones.
        // SAFETY: (fn); unbinding the current context takes no handle, and
        // the primary context of `device` was retained once by `bind`, so
        // this is the matching release. Owners borrowing `self` (modules,
        // buffers, events) have been dropped before it.
        unsafe {
            (self.driver.api.cuCtxSetCurrent)(CuContext::NULL);
            (self.driver.api.cuDevicePrimaryCtxRelease_v2)(self.device);
        }
    }
}
