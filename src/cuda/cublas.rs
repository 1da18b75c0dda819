//! cuBLAS, when the image has it: `gpuprobe bench` measures its SGEMM beside
//! gpuprobe's own kernels, so a user sees how far those are from NVIDIA's.
//!
//! gpuprobe itself never needs cuBLAS: the library is looked for at run time
//! only by `bench`, and its absence is a line in the output, not an error.
//! As with the driver (src/cuda/driver.rs), every entry point is resolved up
//! front, so a library lacking one is a finding rather than a crash.
//!
//! cuBLAS runs on the CUDA runtime, which uses the context current on the
//! calling thread when there is one ("If a context is created and made
//! current via the driver API, subsequent runtime calls will pick up this
//! context instead of creating a new one": CUDA C++ Programming Guide,
//! "Interoperability between Runtime and Driver APIs"): a `Handle` is made
//! and used on a thread where gpuprobe's `Context` is current, and works on
//! that context's buffers and its default stream, so CUDA events time it as
//! they time gpuprobe's launches.
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;

use libloading::Library;

use super::driver::{is_not_found, loaded_path, CuDevicePtr};
use super::error::InFlight;
use super::Context;

/// Library names in the order they are tried: the CUDA 12 and 11 SONAMEs,
/// then the development symlink.
#[cfg(not(windows))]
pub const CANDIDATES: &[&str] = &["libcublas.so.12", "libcublas.so.11", "libcublas.so"];
/// Library names in the order they are tried (the CUDA 12 and 11 DLLs).
#[cfg(windows)]
pub const CANDIDATES: &[&str] = &["cublas64_12.dll", "cublas64_11.dll"];

/// `cublasStatus_t`.
type Status = c_int;
/// `cublasHandle_t`: an opaque pointer to cuBLAS's context.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct RawHandle(*mut c_void);

/// CUBLAS_STATUS_SUCCESS (cublas_api.h).
const SUCCESS: Status = 0;
/// CUBLAS_OP_N: the matrix as stored (cublas_api.h, `cublasOperation_t`).
const OP_N: c_int = 0;
/// CUBLAS_DEFAULT_MATH (cublas_api.h, `cublasMath_t`): "the default and
/// highest-performance mode that uses compute and intermediate storage
/// precisions with at least the same number of mantissa and exponent bits
/// as requested" (cuBLAS Library, "cublasMath_t"). An FP32 GEMM in it is
/// FP32 throughout: TF32 tensor cores are used only in
/// CUBLAS_TF32_TENSOR_OP_MATH (3). This mode, CUBLAS_DEFAULT_MATH, is set
/// explicitly on every handle (`Handle::create`) so that no earlier default
/// of the library or its environment changes what is measured. The exact
/// pass would not notice TF32 (its integers fit in TF32's 11 bits below
/// K = 2^16), but the rounding pass would.
const DEFAULT_MATH: c_int = 0;

// A CUdeviceptr is passed where cuBLAS declares `float *`: the same address
// in an integer of pointer width, which is how every 64-bit platform CUDA
// supports passes either (cuda.h: "CUDA device pointer ... unsigned
// integer type whose size matches the size of a pointer on the target
// platform").
const _: () = assert!(size_of::<CuDevicePtr>() == size_of::<*const f32>());

/// The cuBLAS entry points gpuprobe calls, with cublas_api.h's prototypes.
#[allow(non_snake_case)]
struct Api {
    cublasCreate_v2: unsafe extern "C" fn(*mut RawHandle) -> Status,
    cublasDestroy_v2: unsafe extern "C" fn(RawHandle) -> Status,
    cublasSetMathMode: unsafe extern "C" fn(RawHandle, c_int) -> Status,
    #[allow(clippy::type_complexity)]
    cublasSgemm_v2: unsafe extern "C" fn(
        RawHandle,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        *const f32,
        CuDevicePtr,
        c_int,
        CuDevicePtr,
        c_int,
        *const f32,
        CuDevicePtr,
        c_int,
    ) -> Status,
}

/// Names of the entry points, for a report of what a library lacks.
const SYMBOLS: [&str; 4] = [
    "cublasCreate_v2",
    "cublasDestroy_v2",
    "cublasSetMathMode",
    "cublasSgemm_v2",
];

/// A loaded libcublas.
pub struct Cublas {
    api: Api,
    /// The file the loader mapped.
    pub path: String,
    // Keeps the entry points valid; dropped after `api`.
    _lib: Library,
}

/// Why cuBLAS cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("no cuBLAS library found (tried {})", tried.join(", "))]
    NotFound { tried: Vec<String> },
    #[error("{name} was found but could not be loaded: {message}")]
    Unloadable { name: String, message: String },
    #[error("{path} lacks cuBLAS entry points gpuprobe calls: {}", missing.join(", "))]
    MissingSymbols { path: String, missing: Vec<String> },
}

impl Cublas {
    /// Loads the first candidate the dynamic loader finds.
    pub fn load() -> Result<Cublas, LoadError> {
        let mut tried = Vec::new();
        for name in CANDIDATES {
            // SAFETY: loading cuBLAS runs its initialisers, as in every
            // program that links it.
            match unsafe { Library::new(name) } {
                Ok(lib) => return Self::resolve(lib, name),
                Err(e) if is_not_found(&e) => tried.push((*name).to_string()),
                Err(e) => {
                    return Err(LoadError::Unloadable {
                        name: (*name).to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
        Err(LoadError::NotFound { tried })
    }

    #[allow(non_snake_case)]
    fn resolve(lib: Library, name: &str) -> Result<Cublas, LoadError> {
        let mut missing = Vec::new();
        macro_rules! symbol {
            ($name:ident) => {
                // SAFETY: the pointer type is cublas_api.h's prototype of
                // this symbol (`RawHandle` is repr(transparent) over its
                // handle pointer, device pointers as the assertion above
                // says); it is only called while `Cublas` keeps `lib`
                // loaded.
                unsafe { lib.get(concat!(stringify!($name), "\0").as_bytes()) }
                    .map(|s| *s)
                    .inspect_err(|_| missing.push(stringify!($name).to_string()))
                    .ok()
            };
        }
        let cublasCreate_v2 = symbol!(cublasCreate_v2);
        let cublasDestroy_v2 = symbol!(cublasDestroy_v2);
        let cublasSetMathMode = symbol!(cublasSetMathMode);
        let cublasSgemm_v2 = symbol!(cublasSgemm_v2);
        debug_assert!(missing.iter().all(|m| SYMBOLS.contains(&m.as_str())));
        // SAFETY: only the symbol's address is used, to ask the loader for
        // the file it lives in.
        let path = unsafe { lib.get::<unsafe extern "C" fn()>(b"cublasCreate_v2\0") }
            .ok()
            .and_then(|s| loaded_path(*s as usize))
            .unwrap_or_else(|| name.to_string());
        match (
            cublasCreate_v2,
            cublasDestroy_v2,
            cublasSetMathMode,
            cublasSgemm_v2,
        ) {
            (
                Some(cublasCreate_v2),
                Some(cublasDestroy_v2),
                Some(cublasSetMathMode),
                Some(cublasSgemm_v2),
            ) => Ok(Cublas {
                api: Api {
                    cublasCreate_v2,
                    cublasDestroy_v2,
                    cublasSetMathMode,
                    cublasSgemm_v2,
                },
                path,
                _lib: lib,
            }),
            _ => Err(LoadError::MissingSymbols { path, missing }),
        }
    }

    /// Makes the cuBLAS call `f` (named `call`), recording it as under way
    /// for the watchdog.
    fn call(call: &'static str, f: impl FnOnce() -> Status) -> Result<(), CublasError> {
        let status = {
            let _in_flight = InFlight::enter(call);
            f()
        };
        if status == SUCCESS {
            Ok(())
        } else {
            Err(CublasError { call, status })
        }
    }
}

/// A cuBLAS call that did not return CUBLAS_STATUS_SUCCESS.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call} returned {status} ({})", status_name(*status))]
pub struct CublasError {
    pub call: &'static str,
    pub status: Status,
}

/// cublas_api.h's name of a `cublasStatus_t`.
#[must_use]
pub fn status_name(status: Status) -> &'static str {
    match status {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "a status this gpuprobe does not name",
    }
}

/// A cuBLAS handle on the context current on this thread, in
/// CUBLAS_DEFAULT_MATH. Like `Context`, not `Send`: it lives on the thread
/// whose context it was made on.
pub struct Handle<'c> {
    cublas: &'c Cublas,
    raw: RawHandle,
    _context: PhantomData<&'c Context<'c>>,
}

impl<'c> Handle<'c> {
    /// cublasCreate_v2 on `ctx` (current on this thread), then
    /// cublasSetMathMode(CUBLAS_DEFAULT_MATH).
    pub fn create(cublas: &'c Cublas, _ctx: &'c Context<'c>) -> Result<Self, CublasError> {
        let mut raw = RawHandle(std::ptr::null_mut());
        // SAFETY: the entry point has cublas_api.h's prototype and the
        // library is loaded while `cublas` lives; the out-parameter is a
        // live local.
        Cublas::call("cublasCreate_v2", || unsafe {
            (cublas.api.cublasCreate_v2)(&raw mut raw)
        })?;
        // From here on, dropping `handle` destroys it.
        let handle = Handle {
            cublas,
            raw,
            _context: PhantomData,
        };
        // SAFETY: as above; the handle was just created.
        Cublas::call("cublasSetMathMode", || unsafe {
            (cublas.api.cublasSetMathMode)(raw, DEFAULT_MATH)
        })?;
        Ok(handle)
    }

    /// C (m x n) = A (m x k) · B (k x n), all row-major, as gpuprobe's
    /// kernels compute it, on the default stream.
    ///
    /// cuBLAS is column-major: a row-major m x n matrix is, read
    /// column-major, its n x m transpose. So the call computes
    /// Cᵀ (n x m) = Bᵀ (n x k) · Aᵀ (k x m) with no operation on either
    /// input (CUBLAS_OP_N), leading dimensions n, k and n: cublasSgemm_v2
    /// computes C = α·op(A)·op(B) + β·C with op(A) m x k and op(B) k x n
    /// (cuBLAS Library, "cublas<t>gemm()"), here with its m, n, k = our
    /// n, m, k and α = 1, β = 0 (C is only written).
    ///
    /// # Safety
    /// `a`, `b` and `c` must point into allocations of this handle's
    /// context holding at least m*k, k*n and m*n floats.
    pub unsafe fn sgemm_row_major(
        &self,
        (m, n, k): (u32, u32, u32),
        [a, b, c]: [CuDevicePtr; 3],
    ) -> Result<(), CublasError> {
        let (alpha, beta) = (1f32, 0f32);
        let (m, n, k) = (m as c_int, n as c_int, k as c_int);
        // SAFETY: the entry point has cublas_api.h's prototype; α and β
        // are host values (the default CUBLAS_POINTER_MODE_HOST) live for
        // the call; the caller promises the buffers, whose extents the
        // leading dimensions describe: Bᵀ is n x k with ld n, Aᵀ is k x m
        // with ld k, Cᵀ is n x m with ld n.
        Cublas::call("cublasSgemm_v2", || unsafe {
            (self.cublas.api.cublasSgemm_v2)(
                self.raw,
                OP_N,
                OP_N,
                n,
                m,
                k,
                &raw const alpha,
                b,
                n,
                a,
                k,
                &raw const beta,
                c,
                n,
            )
        })
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // Nothing to report at this point; a failed destroy leaks only
        // cuBLAS's workspace, freed with the context.
        // SAFETY: created by `create`, destroyed once.
        let _ = unsafe { (self.cublas.api.cublasDestroy_v2)(self.raw) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_named_as_cublas_api_h_names_them() {
        assert_eq!(status_name(7), "CUBLAS_STATUS_INVALID_VALUE");
        assert_eq!(status_name(13), "CUBLAS_STATUS_EXECUTION_FAILED");
        assert_eq!(status_name(2), "a status this gpuprobe does not name");
        let e = CublasError {
            call: "cublasSgemm_v2",
            status: 8,
        };
        assert_eq!(
            e.to_string(),
            "cublasSgemm_v2 returned 8 (CUBLAS_STATUS_ARCH_MISMATCH)"
        );
    }

    /// No cuBLAS on a library path that holds none (this machine may
    /// still have one in its system folders: then it must load whole).
    #[test]
    fn a_missing_cublas_is_not_found_not_a_crash() {
        match Cublas::load() {
            Err(LoadError::NotFound { tried }) => assert_eq!(tried, CANDIDATES),
            // A system cuBLAS without its libcublasLt beside it.
            Err(LoadError::Unloadable { name, .. }) => assert!(CANDIDATES.contains(&name.as_str())),
            Err(e @ LoadError::MissingSymbols { .. }) => panic!("{e}"),
            Ok(found) => assert!(!found.path.is_empty()),
        }
    }
}
