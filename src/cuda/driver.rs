//! Finding the CUDA driver library, loading it, and resolving its symbols.
//!
//! gpuprobe resolves the driver API itself instead of through cudarc's
//! loader, for two reasons:
//! - cudarc tries `libcuda.so` before `libcuda.so.1`. In images built from
//!   CUDA devel bases, `libcuda.so` is the toolkit's stub (…/lib64/stubs),
//!   which answers every call with CUDA_ERROR_STUB_LIBRARY (34), while the
//!   CUDA runtime that the workload uses loads `libcuda.so.1`, the real driver
//!   injected by the container toolkit. gpuprobe must load what the workload
//!   loads, and `libcuda.so.1` is also the only name that works under WSL2
//!   (NVIDIA's WSL2 CUDA guide).
//! - cudarc's dynamic loader (0.19) panics when the library or a symbol is
//!   missing. Here every symbol is resolved up front, so an old driver
//!   becomes a report listing what it lacks.
//!
//! cudarc still supplies the driver API's types and constants.
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::path::Path;

use cudarc::driver::sys::{CUdevice_attribute, CUuuid};
use libloading::Library;

/// The raw CUresult; codes outside cudarc's enum must survive, so no enum.
pub type CuResult = c_int;
/// A CUdevice: an ordinal the driver hands out, not a pointer.
pub type CuDevice = c_int;

macro_rules! handles {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// `repr(transparent)` over the opaque pointer cuda.h declares, so it
        /// crosses the FFI boundary exactly as that pointer does; a distinct
        /// type per kind, so that one kind of handle cannot be passed where
        /// the driver expects another.
        #[repr(transparent)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(*mut c_void);

        impl $name {
            /// The null handle: an out-parameter before the driver fills it,
            /// or "none" where cuda.h allows it.
            pub const NULL: $name = $name(std::ptr::null_mut());
        }
    )*};
}

handles! {
    /// A CUcontext.
    CuContext;
    /// A CUmodule: loaded code, not launchable itself.
    CuModule;
    /// A CUfunction: a kernel entry point of a loaded module.
    CuFunction;
    /// A CUevent.
    CuEvent;
    /// A CUstream; `NULL` is the legacy default stream.
    CuStream;
}

/// A CUdeviceptr: an address in the GPU's memory, meaningless on the host.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CuDevicePtr(u64);

impl CuDevicePtr {
    /// An out-parameter before cuMemAlloc fills it.
    pub const NULL: CuDevicePtr = CuDevicePtr(0);

    /// The address `bytes` further on; only `Buffer::ptr_at` makes one,
    /// inside its allocation.
    pub(crate) fn offset(self, bytes: u64) -> CuDevicePtr {
        CuDevicePtr(self.0 + bytes)
    }
}

/// Library names in the order they are tried.
#[cfg(windows)]
pub const CANDIDATES: &[&str] = &["nvcuda.dll"];
/// Library names in the order they are tried: the SONAME first, as the CUDA
/// runtime does, and the development symlink only as a fallback.
#[cfg(not(windows))]
pub const CANDIDATES: &[&str] = &["libcuda.so.1", "libcuda.so"];

macro_rules! driver_api {
    (
        required { $($name:ident($($arg:ty),*);)* }
        optional { $($oname:ident($($oarg:ty),*);)* }
    ) => {
        /// Entry points of the driver API that gpuprobe calls.
        #[allow(non_snake_case)]
        pub struct Api {
            $(pub $name: unsafe extern "C" fn($($arg),*) -> CuResult,)*
            $(pub $oname: Option<unsafe extern "C" fn($($oarg),*) -> CuResult>,)*
        }

        impl Api {
            /// The optional entry points this driver lacks (an older driver
            /// has no cuDeviceGetUuid_v2, the stub names no errors).
            #[must_use]
            pub fn missing_optional(&self) -> Vec<&'static str> {
                let mut missing = Vec::new();
                $(
                    if self.$oname.is_none() {
                        missing.push(stringify!($oname));
                    }
                )*
                missing
            }

            /// Resolves every symbol, or names the required ones missing.
            #[allow(non_snake_case)]
            fn resolve(lib: &Library) -> Result<Api, Vec<String>> {
                let mut missing = Vec::new();
                $(
                    // SAFETY: the pointer type is the prototype cuda.h
                    // declares for this symbol (handle newtypes are
                    // repr(transparent) over cuda.h's pointers), and the
                    // copied pointer is only called while `Driver` keeps
                    // `lib` loaded (its `_lib` field, dropped after `api`).
                    let $name = unsafe {
                        lib.get::<unsafe extern "C" fn($($arg),*) -> CuResult>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                    }
                    .map(|s| *s)
                    .inspect_err(|_| missing.push(stringify!($name).to_string()))
                    .ok();
                )*
                $(
                    // SAFETY: as for the required symbols above.
                    let $oname = unsafe {
                        lib.get::<unsafe extern "C" fn($($oarg),*) -> CuResult>(
                            concat!(stringify!($oname), "\0").as_bytes(),
                        )
                    }
                    .map(|s| *s)
                    .ok();
                )*
                match ($($name,)*) {
                    ($(Some($name),)*) => Ok(Api { $($name,)* $($oname,)* }),
                    _ => Err(missing),
                }
            }
        }
    };
}

driver_api! {
    required {
        cuInit(c_uint);
        cuDriverGetVersion(*mut c_int);
        cuDeviceGetCount(*mut c_int);
        cuDeviceGet(*mut CuDevice, c_int);
        cuDeviceGetName(*mut c_char, c_int, CuDevice);
        cuDeviceGetUuid(*mut CUuuid, CuDevice);
        cuDeviceGetPCIBusId(*mut c_char, c_int, CuDevice);
        cuDeviceGetAttribute(*mut c_int, CUdevice_attribute, CuDevice);
        cuDeviceTotalMem_v2(*mut usize, CuDevice);
        cuDevicePrimaryCtxRetain(*mut CuContext, CuDevice);
        cuDevicePrimaryCtxRelease_v2(CuDevice);
        cuCtxSetCurrent(CuContext);
        cuCtxSynchronize();
        cuMemGetInfo_v2(*mut usize, *mut usize);
        cuMemAlloc_v2(*mut CuDevicePtr, usize);
        cuMemFree_v2(CuDevicePtr);
        cuMemcpyHtoD_v2(CuDevicePtr, *const c_void, usize);
        cuMemcpyDtoH_v2(*mut c_void, CuDevicePtr, usize);
        // The bandwidth stage's copies and pinned host memory: every driver
        // since CUDA 3.2 exports these (cuda.h maps the unsuffixed names to
        // the _v2 entry points from 3.2 on).
        cuMemcpyDtoD_v2(CuDevicePtr, CuDevicePtr, usize);
        cuMemcpyHtoDAsync_v2(CuDevicePtr, *const c_void, usize, CuStream);
        cuMemcpyDtoHAsync_v2(*mut c_void, CuDevicePtr, usize, CuStream);
        cuMemAllocHost_v2(*mut *mut c_void, usize);
        cuMemFreeHost(*mut c_void);
        cuModuleLoadData(*mut CuModule, *const c_void);
        cuModuleUnload(CuModule);
        cuModuleGetFunction(*mut CuFunction, CuModule, *const c_char);
        cuLaunchKernel(CuFunction, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, CuStream, *mut *mut c_void, *mut *mut c_void);
        cuEventCreate(*mut CuEvent, c_uint);
        cuEventRecord(CuEvent, CuStream);
        cuEventSynchronize(CuEvent);
        cuEventQuery(CuEvent);
        cuEventElapsedTime(*mut f32, CuEvent, CuEvent);
        cuEventDestroy_v2(CuEvent);
        // Peer-to-peer (src/cuda/peer.rs): every driver since CUDA 4.0.
        cuDeviceCanAccessPeer(*mut c_int, CuDevice, CuDevice);
        cuCtxEnablePeerAccess(CuContext, c_uint);
    }
    optional {
        // CUDA 11.4+: the MIG instance's UUID rather than the parent GPU's.
        cuDeviceGetUuid_v2(*mut CUuuid, CuDevice);
        cuGetErrorName(CuResult, *mut *const c_char);
        cuGetErrorString(CuResult, *mut *const c_char);
    }
}

/// A loaded driver library with its resolved entry points.
pub struct Driver {
    pub api: Api,
    /// The file the loader actually mapped.
    pub path: String,
    // Keeps the entry points valid; dropped last.
    _lib: Library,
}

/// Why the driver library could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("no CUDA driver library found (tried {})", tried.join(", "))]
    NotFound { tried: Vec<String> },
    #[error("{name} was found but could not be loaded: {message}")]
    Unloadable { name: String, message: String },
    #[error("{path} lacks driver API symbols gpuprobe needs: {}", missing.join(", "))]
    MissingSymbols { path: String, missing: Vec<String> },
}

impl Driver {
    /// Loads the first candidate the dynamic loader finds.
    pub fn load() -> Result<Driver, LoadError> {
        let mut tried = Vec::new();
        for name in CANDIDATES {
            // SAFETY: loading the driver runs its initialisers; that is the
            // point, and what every CUDA program does.
            match unsafe { Library::new(name) } {
                Ok(lib) => return Self::from_library(lib, name),
                Err(e) => {
                    let message = e.to_string();
                    if !is_not_found(&e) {
                        return Err(LoadError::Unloadable {
                            name: (*name).to_string(),
                            message,
                        });
                    }
                    tried.push((*name).to_string());
                }
            }
        }
        Err(LoadError::NotFound { tried })
    }

    fn from_library(lib: Library, name: &str) -> Result<Driver, LoadError> {
        let api = Api::resolve(&lib);
        // SAFETY: only the symbol's address is used, to ask the loader for
        // the file it lives in.
        let any_symbol =
            unsafe { lib.get::<unsafe extern "C" fn()>(b"cuInit\0") }.map(|s| *s as usize);
        let path = any_symbol
            .ok()
            .and_then(loaded_path)
            .unwrap_or_else(|| name.to_string());
        match api {
            Ok(api) => Ok(Driver {
                api,
                path,
                _lib: lib,
            }),
            Err(missing) => Err(LoadError::MissingSymbols { path, missing }),
        }
    }
}

/// Whether a loader error means "no such file" rather than "found, broken".
///
/// Windows: libloading 0.8 displays every failed LoadLibraryExW as the fixed
/// text "LoadLibraryExW failed"; the OS error code is only in the error's
/// `source()`, an `io::Error`. ERROR_MOD_NOT_FOUND (126) is what
/// LoadLibraryExW sets for a module the search order does not find
/// (Microsoft, "System Error Codes (0-499)"); anything else (193
/// ERROR_BAD_EXE_FORMAT, a dependency's failed initialiser, ...) means the
/// file is there but cannot be used.
/// glibc's dlopen reports no error code at all, only dlerror() text; its
/// not-found text is "cannot open shared object file: No such file or
/// directory" (the strerror of ENOENT).
pub fn is_not_found(error: &libloading::Error) -> bool {
    /// ERROR_MOD_NOT_FOUND, winerror.h.
    const ERROR_MOD_NOT_FOUND: i32 = 126;
    let os_error = std::error::Error::source(error)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    match (error, os_error) {
        (libloading::Error::LoadLibraryExW { .. }, code) => code == Some(ERROR_MOD_NOT_FOUND),
        (libloading::Error::DlOpen { .. }, _) => error.to_string().contains("No such file"),
        _ => false,
    }
}

/// The file a loaded symbol lives in, resolved by the loader itself.
#[cfg(unix)]
#[must_use]
pub fn loaded_path(address: usize) -> Option<String> {
    let symbol = address as *const c_void;
    // SAFETY: Dl_info is a C struct of pointers; all-zero (null) is a valid
    // value of each field.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables and writes `info`, a
    // live local of the type it expects (dladdr(3)).
    if unsafe { libc::dladdr(symbol, &raw mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is non-null (checked) and points to the loader's
    // NUL-terminated name of a library that stays loaded (the caller holds
    // it); it is copied out at once.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned();
    // Through symlinks to the real file: that names the driver's version.
    Some(std::fs::canonicalize(&name).map_or(name, |p| p.display().to_string()))
}

#[cfg(not(unix))]
#[must_use]
pub fn loaded_path(_address: usize) -> Option<String> {
    None
}

/// Where the dynamic loader looks for the driver, in its order, for reports.
#[must_use]
pub fn search_path() -> Vec<String> {
    let mut out = Vec::new();
    if cfg!(windows) {
        out.push("the application directory".into());
        out.push("C:\\Windows\\System32".into());
        if let Some(path) = std::env::var_os("PATH") {
            out.extend(std::env::split_paths(&path).map(|p| p.display().to_string()));
        }
        return out;
    }
    match std::env::var_os("LD_LIBRARY_PATH") {
        Some(v) if !v.is_empty() => {
            out.extend(
                std::env::split_paths(&v).map(|p| format!("{} (LD_LIBRARY_PATH)", p.display())),
            );
        }
        _ => {}
    }
    out.push("/etc/ld.so.cache".into());
    for dir in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
        if Path::new(dir).is_dir() {
            out.push(dir.into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name no loader finds must read as "not found" on this platform.
    #[test]
    fn a_missing_library_is_not_found() {
        let name = if cfg!(windows) {
            "gpuprobe-no-such-driver.dll"
        } else {
            "libgpuprobe-no-such-driver.so.1"
        };
        // SAFETY: the library does not exist, so no initialiser runs.
        let error = unsafe { Library::new(name) }.expect_err("loaded a missing library");
        assert!(is_not_found(&error), "{error:?}");
    }

    /// A file that is there but is no library is "found, broken".
    #[test]
    fn a_file_that_is_no_library_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(if cfg!(windows) {
            "nvcuda.dll"
        } else {
            "libcuda.so.1"
        });
        std::fs::write(&path, b"not a library").unwrap();
        // SAFETY: the file is not a loadable image, so loading fails before
        // any code in it could run.
        let error = unsafe { Library::new(&path) }.expect_err("loaded a text file");
        assert!(!is_not_found(&error), "{error:?}");
    }
}
