//! Driver API errors, named.
use std::ffi::{c_char, CStr};
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;

use super::driver::{CuResult, Driver};
use crate::report;

/// A driver call that did not return CUDA_SUCCESS.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call} returned {code} ({})", self.label())]
pub struct CudaError {
    pub call: &'static str,
    pub code: CuResult,
    pub name: Option<String>,
    pub description: Option<String>,
}

impl CudaError {
    fn label(&self) -> String {
        match (&self.name, &self.description) {
            (Some(n), Some(d)) => format!("{n}: {d}"),
            (Some(n), None) => n.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "an error this driver does not name".into(),
        }
    }

    /// The report's form of this error.
    #[must_use]
    pub fn to_report(&self) -> report::DriverError {
        report::DriverError {
            call: self.call.to_string(),
            code: self.code,
            name: self.name.clone(),
            description: self.description.clone(),
        }
    }
}

/// CUresult names of the codes users meet in containers (cuda.h), for drivers
/// that cannot name them (the stub library, very old drivers).
const KNOWN: &[(CuResult, &str)] = &[
    (1, "CUDA_ERROR_INVALID_VALUE"),
    (2, "CUDA_ERROR_OUT_OF_MEMORY"),
    (3, "CUDA_ERROR_NOT_INITIALIZED"),
    (4, "CUDA_ERROR_DEINITIALIZED"),
    (34, "CUDA_ERROR_STUB_LIBRARY"),
    (36, "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER"),
    (100, "CUDA_ERROR_NO_DEVICE"),
    (101, "CUDA_ERROR_INVALID_DEVICE"),
    (200, "CUDA_ERROR_INVALID_IMAGE"),
    (201, "CUDA_ERROR_INVALID_CONTEXT"),
    (209, "CUDA_ERROR_NO_BINARY_FOR_GPU"),
    (218, "CUDA_ERROR_INVALID_PTX"),
    (221, "CUDA_ERROR_JIT_COMPILER_NOT_FOUND"),
    (222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
    (304, "CUDA_ERROR_OPERATING_SYSTEM"),
    (400, "CUDA_ERROR_INVALID_HANDLE"),
    (500, "CUDA_ERROR_NOT_FOUND"),
    (700, "CUDA_ERROR_ILLEGAL_ADDRESS"),
    (719, "CUDA_ERROR_LAUNCH_FAILED"),
    (803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
    (804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"),
    (999, "CUDA_ERROR_UNKNOWN"),
];

/// Driver calls under way, by thread: what the watchdog names when a call
/// never returns.
static IN_FLIGHT: Mutex<Vec<(ThreadId, &'static str)>> = Mutex::new(Vec::new());

/// The driver call `thread` is inside, if any.
#[must_use]
pub fn call_in_flight(thread: ThreadId) -> Option<&'static str> {
    let calls = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    calls
        .iter()
        .rev()
        .find(|(t, _)| *t == thread)
        .map(|(_, name)| *name)
}

/// Marks a call as under way on this thread until dropped.
struct InFlight(ThreadId);

impl InFlight {
    fn enter(name: &'static str) -> InFlight {
        let thread = std::thread::current().id();
        IN_FLIGHT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((thread, name));
        InFlight(thread)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut calls = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = calls.iter().rposition(|(t, _)| *t == self.0) {
            calls.remove(i);
        }
    }
}

impl Driver {
    /// Makes the driver call `f` (named `name`), recording it as under way
    /// for the watchdog, and names its error.
    pub fn call(&self, name: &'static str, f: impl FnOnce() -> CuResult) -> Result<(), CudaError> {
        let code = {
            let _in_flight = InFlight::enter(name);
            f()
        };
        self.check(name, code)
    }

    /// Turns a CUresult into `Ok` or a named error.
    pub fn check(&self, call: &'static str, code: CuResult) -> Result<(), CudaError> {
        if code == 0 {
            return Ok(());
        }
        let name = self
            .api
            .cuGetErrorName
            .and_then(|g| Self::error_text(g, code))
            .or_else(|| {
                KNOWN
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, n)| (*n).to_string())
            });
        let description = self
            .api
            .cuGetErrorString
            .and_then(|g| Self::error_text(g, code));
        Err(CudaError {
            call,
            code,
            name,
            description,
        })
    }

    fn error_text(
        getter: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
        code: CuResult,
    ) -> Option<String> {
        let mut text: *const c_char = std::ptr::null();
        // SAFETY: the driver returns a pointer to a static string, or an error.
        if unsafe { getter(code, &raw mut text) } != 0 || text.is_null() {
            return None;
        }
        Some(
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}
