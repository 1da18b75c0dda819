//! Driver API errors, named.
use std::ffi::{c_char, CStr};
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use cudarc::driver::sys::cudaError_enum;

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

/// A CUresult value from cudarc's `cudaError_enum` (cuda.h's `CUresult`).
const fn code(e: cudaError_enum) -> CuResult {
    e as CuResult
}

/// CUresult codes gpuprobe tells apart, named as cuda.h names them; the
/// numbers come from cudarc's bindings of cuda.h. docs/diagnoses.md says
/// what each one means in a container.
pub const CUDA_SUCCESS: CuResult = code(cudaError_enum::CUDA_SUCCESS);
pub const CUDA_ERROR_NO_DEVICE: CuResult = code(cudaError_enum::CUDA_ERROR_NO_DEVICE);
pub const CUDA_ERROR_STUB_LIBRARY: CuResult = code(cudaError_enum::CUDA_ERROR_STUB_LIBRARY);
pub const CUDA_ERROR_JIT_COMPILER_NOT_FOUND: CuResult =
    code(cudaError_enum::CUDA_ERROR_JIT_COMPILER_NOT_FOUND);
pub const CUDA_ERROR_UNSUPPORTED_PTX_VERSION: CuResult =
    code(cudaError_enum::CUDA_ERROR_UNSUPPORTED_PTX_VERSION);
pub const CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: CuResult =
    code(cudaError_enum::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH);
pub const CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE: CuResult =
    code(cudaError_enum::CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE);
pub const CUDA_ERROR_UNKNOWN: CuResult = code(cudaError_enum::CUDA_ERROR_UNKNOWN);
/// cuCtxEnablePeerAccess a second time for the same pair of contexts.
pub const CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED: CuResult =
    code(cudaError_enum::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
/// The device admits no context of this process: its compute mode is
/// EXCLUSIVE_PROCESS and another process holds it, or PROHIBITED (cuda.h).
/// cudarc's CUDA 11.4 bindings predate its name (cuda.h names it from
/// CUDA 12.2; tests/real_driver.rs checks the name with NVIDIA's libcuda).
pub const CUDA_ERROR_DEVICE_UNAVAILABLE: CuResult = 46;
/// An invalid device ordinal; what older drivers answered a second
/// process's context on a held EXCLUSIVE_PROCESS GPU.
pub const CUDA_ERROR_INVALID_DEVICE: CuResult = code(cudaError_enum::CUDA_ERROR_INVALID_DEVICE);
/// The context is already in use (the removed EXCLUSIVE_THREAD mode).
pub const CUDA_ERROR_CONTEXT_ALREADY_IN_USE: CuResult =
    code(cudaError_enum::CUDA_ERROR_CONTEXT_ALREADY_IN_USE);
/// The driver could not allocate the memory asked for (device memory, or
/// pinned host memory in cuMemAllocHost).
pub const CUDA_ERROR_OUT_OF_MEMORY: CuResult = code(cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY);
/// Work before an event or on a stream has not finished (cuEventQuery).
pub const CUDA_ERROR_NOT_READY: CuResult = code(cudaError_enum::CUDA_ERROR_NOT_READY);
/// "An uncorrectable ECC error was detected during execution" (cuda.h):
/// sticky for the context whose work it hit; with error containment
/// (GA100, GH100) only that context's (NVIDIA, GPU Memory Error
/// Management, "Error Containment").
pub const CUDA_ERROR_ECC_UNCORRECTABLE: CuResult =
    code(cudaError_enum::CUDA_ERROR_ECC_UNCORRECTABLE);

/// The codes users meet in containers, named for drivers that cannot name
/// them (the stub library, very old drivers): the name is cudarc's variant
/// name, which is cuda.h's.
const KNOWN: &[cudaError_enum] = &[
    cudaError_enum::CUDA_ERROR_INVALID_VALUE,
    cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY,
    cudaError_enum::CUDA_ERROR_NOT_INITIALIZED,
    cudaError_enum::CUDA_ERROR_DEINITIALIZED,
    cudaError_enum::CUDA_ERROR_STUB_LIBRARY,
    cudaError_enum::CUDA_ERROR_NO_DEVICE,
    cudaError_enum::CUDA_ERROR_INVALID_DEVICE,
    cudaError_enum::CUDA_ERROR_INVALID_IMAGE,
    cudaError_enum::CUDA_ERROR_INVALID_CONTEXT,
    cudaError_enum::CUDA_ERROR_NO_BINARY_FOR_GPU,
    cudaError_enum::CUDA_ERROR_ECC_UNCORRECTABLE,
    cudaError_enum::CUDA_ERROR_INVALID_PTX,
    cudaError_enum::CUDA_ERROR_JIT_COMPILER_NOT_FOUND,
    cudaError_enum::CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
    cudaError_enum::CUDA_ERROR_OPERATING_SYSTEM,
    cudaError_enum::CUDA_ERROR_INVALID_HANDLE,
    cudaError_enum::CUDA_ERROR_NOT_FOUND,
    cudaError_enum::CUDA_ERROR_ILLEGAL_ADDRESS,
    cudaError_enum::CUDA_ERROR_LAUNCH_FAILED,
    cudaError_enum::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
    cudaError_enum::CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
    cudaError_enum::CUDA_ERROR_UNKNOWN,
];

/// Codes newer than the CUDA 11.4 headers cudarc's `cuda-11040` bindings
/// follow, from cuda.h of later releases.
const NEWER: &[(CuResult, &str)] = &[(36, "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER")];

/// Every code gpuprobe names itself, with its name: what the real-driver
/// test compares with NVIDIA's own cuGetErrorName.
#[must_use]
pub fn known_codes() -> Vec<(CuResult, String)> {
    KNOWN
        .iter()
        .map(|e| (*e as CuResult, format!("{e:?}")))
        .chain(NEWER.iter().map(|(c, n)| (*c, (*n).to_string())))
        .collect()
}

/// cuda.h's name of `code`, when it is one of `KNOWN` or `NEWER`.
fn known_name(code: CuResult) -> Option<String> {
    KNOWN
        .iter()
        .find(|e| **e as CuResult == code)
        .map(|e| format!("{e:?}"))
        .or_else(|| {
            NEWER
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, n)| (*n).to_string())
        })
}

/// Driver calls under way, by thread, with when each began: what the
/// watchdog names when a call never returns.
static IN_FLIGHT: Mutex<Vec<(ThreadId, &'static str, Instant)>> = Mutex::new(Vec::new());

/// The driver call `thread` is inside, if any, and how long it has been.
#[must_use]
pub fn call_in_flight(thread: ThreadId) -> Option<(&'static str, Duration)> {
    let calls = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    calls
        .iter()
        .rev()
        .find(|(t, _, _)| *t == thread)
        .map(|(_, name, since)| (*name, since.elapsed()))
}

/// Marks a call as under way on this thread until dropped (for a library
/// beside the driver, such as cuBLAS, too: the watchdog names its calls).
pub(crate) struct InFlight(ThreadId);

impl InFlight {
    pub(crate) fn enter(name: &'static str) -> InFlight {
        let thread = std::thread::current().id();
        IN_FLIGHT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((thread, name, Instant::now()));
        InFlight(thread)
    }
}

/// When each thread's last driver call returned: what tells a stage that
/// is between two calls of a loop from one stuck outside the driver's
/// calls gpuprobe tracks (NVML, or its own work), and a driver that still
/// answers other threads from a wedged one.
static RETURNED: Mutex<Vec<(ThreadId, Instant)>> = Mutex::new(Vec::new());

/// How long a thread with no driver call returned stays in `RETURNED`.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// How long ago `thread`'s last driver call returned, if it made one.
#[must_use]
pub fn last_return(thread: ThreadId) -> Option<Duration> {
    let returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
    returned
        .iter()
        .find(|(t, _)| *t == thread)
        .map(|(_, at)| at.elapsed())
}

/// How long ago any thread's last driver call returned.
#[must_use]
pub fn any_return() -> Option<Duration> {
    let returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
    returned.iter().map(|(_, at)| at.elapsed()).min()
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if let Some(entry) = returned.iter_mut().find(|(t, _)| *t == self.0) {
                entry.1 = now;
            } else {
                // Threads come and go (a probe and its GPUs' threads each
                // `watch` cycle): forget those silent for an hour, so the
                // list stays short. A forgotten thread only makes the
                // watchdog's reading more cautious (no return known: stuck,
                // and no "the driver answered").
                returned.retain(|(_, at)| now.duration_since(*at) < FORGET_AFTER);
                returned.push((self.0, now));
            }
        }
        let mut calls = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = calls.iter().rposition(|(t, _, _)| *t == self.0) {
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
        if code == CUDA_SUCCESS {
            return Ok(());
        }
        let name = self
            .api
            .cuGetErrorName
            .and_then(|g| Self::error_text(g, code))
            .or_else(|| known_name(code));
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
        // SAFETY: `getter` is cuGetErrorName or cuGetErrorString, resolved
        // with cuda.h's prototype from the library `self` keeps loaded; the
        // out-parameter is a live local. Any code may be asked: an unknown
        // one is an error the driver returns.
        if unsafe { getter(code, &raw mut text) } != 0 || text.is_null() {
            return None;
        }
        Some(
            // SAFETY: on success the driver points `text` at a static
            // NUL-terminated string (CUDA driver API, cuGetErrorName /
            // cuGetErrorString); it is non-null (checked) and copied at once.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_cuda_h_numbers() {
        // cuda.h (CUDA driver API, "Error Handling"): the numbers users see.
        assert_eq!(
            [
                CUDA_ERROR_NO_DEVICE,
                CUDA_ERROR_JIT_COMPILER_NOT_FOUND,
                CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
                CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
                CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
                CUDA_ERROR_UNKNOWN,
            ],
            [100, 221, 222, 803, 804, 999]
        );
        assert_eq!(known_name(34).as_deref(), Some("CUDA_ERROR_STUB_LIBRARY"));
        assert_eq!(
            known_name(36).as_deref(),
            Some("CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER")
        );
        assert_eq!(known_name(12345), None);
    }
}
