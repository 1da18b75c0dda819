//! Timing events on the default stream: recorded, waited for, queried,
//! and the time between two.
//! Its SAFETY comments cite the facts listed in cuda/mod.rs: (fn), (out),
//! (handle).
use super::driver::{CuEvent, CuStream};
use super::error;
use super::{Context, CudaError};

/// `CU_EVENT_DEFAULT`: timing enabled (CU_EVENT_DISABLE_TIMING would make
/// cuEventElapsedTime fail with CUDA_ERROR_INVALID_HANDLE; CUDA driver API, cuEventCreate).
const EVENT_DEFAULT: u32 = 0;

/// A timing event on the default stream.
pub struct Event<'c> {
    ctx: &'c Context<'c>,
    handle: CuEvent,
}

impl<'c> Event<'c> {
    pub fn new(ctx: &'c Context<'c>) -> Result<Self, CudaError> {
        let mut handle = CuEvent::NULL;
        // SAFETY: (fn), (out); EVENT_DEFAULT is a valid flag set.
        ctx.driver.call("cuEventCreate", || unsafe {
            (ctx.driver.api.cuEventCreate)(&raw mut handle, EVENT_DEFAULT)
        })?;
        Ok(Event { ctx, handle })
    }

    pub fn record(&self) -> Result<(), CudaError> {
        // SAFETY: (fn), (handle); the null stream is the default stream.
        self.ctx.driver.call("cuEventRecord", || unsafe {
            (self.ctx.driver.api.cuEventRecord)(self.handle, CuStream::NULL)
        })
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        // SAFETY: (fn), (handle).
        self.ctx.driver.call("cuEventSynchronize", || unsafe {
            (self.ctx.driver.api.cuEventSynchronize)(self.handle)
        })
    }

    /// Whether the work recorded before this event has finished, without
    /// waiting (cuEventQuery: CUDA_ERROR_NOT_READY while it runs).
    pub fn query(&self) -> Result<bool, CudaError> {
        // SAFETY: (fn), (handle).
        let done = self.ctx.driver.call("cuEventQuery", || unsafe {
            (self.ctx.driver.api.cuEventQuery)(self.handle)
        });
        match done {
            Ok(()) => Ok(true),
            Err(e) if e.code == error::CUDA_ERROR_NOT_READY => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Milliseconds from `self` to `end`, both recorded and complete.
    pub fn elapsed_ms(&self, end: &Event<'_>) -> Result<f64, CudaError> {
        let mut ms = 0f32;
        // SAFETY: (fn), (out), (handle) for both events.
        self.ctx.driver.call("cuEventElapsedTime", || unsafe {
            (self.ctx.driver.api.cuEventElapsedTime)(&raw mut ms, self.handle, end.handle)
        })?;
        Ok(f64::from(ms))
    }
}

impl Drop for Event<'_> {
    fn drop(&mut self) {
        // SAFETY: (fn), (handle); created by `new`, destroyed once.
        unsafe { (self.ctx.driver.api.cuEventDestroy_v2)(self.handle) };
    }
}
