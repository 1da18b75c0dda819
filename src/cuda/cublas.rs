//! cuBLAS, when the image has it: `gpuprobe bench` measures its SGEMM beside
//! gpuprobe's own kernels, so a user sees how far those are from NVIDIA's.
//!
//! gpuprobe itself never needs cuBLAS: the library is looked for at run time
//! only by `bench`, and its absence is a line in the output, not an error.
//! As with the driver (src/cuda/driver.rs), every entry point is resolved up
//! front, so a library lacking one is a finding rather than a crash. This
//! module loads one candidate, by name or by path; where `bench` looks, and
//! in which order, is src/checks/bench/cublas.rs.
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
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::Library;

use super::driver::{is_not_found, loaded_path, CuDevicePtr};
use super::error::InFlight;
use super::Context;

/// Library names the dynamic loader is asked for, in order: the CUDA 13,
/// 12 and 11 SONAMEs, then the development symlink.
#[cfg(not(windows))]
pub const CANDIDATES: &[&str] = &[
    "libcublas.so.13",
    "libcublas.so.12",
    "libcublas.so.11",
    "libcublas.so",
];
/// Library names the DLL search order is asked for, in order (the CUDA 13,
/// 12 and 11 DLLs).
#[cfg(windows)]
pub const CANDIDATES: &[&str] = &["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"];

/// A cuBLAS to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A library name the dynamic loader looks up on its own path
    /// (LD_LIBRARY_PATH, /etc/ld.so.cache, the system folders; on Windows
    /// the DLL search order).
    Name(&'static str),
    /// A file, loaded by its full path. Its own dependencies (libcublasLt,
    /// which cuBLAS 11 and later need) are looked for beside it: on Linux
    /// through the library's RUNPATH or RPATH of `$ORIGIN`, which the pip
    /// wheels' libcublas carries (src/checks/bench/cublas.rs), on Windows by
    /// LOAD_WITH_ALTERED_SEARCH_PATH.
    File(PathBuf),
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Candidate::Name(name) => f.write_str(name),
            Candidate::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The cuBLAS file `bench --cublas` or GPUPROBE_CUBLAS names, set by the
/// command (src/modes/bench.rs) before its probe runs and read by the
/// probe's `cublas` check. A setting of the process, as the library it
/// names is: cuBLAS is loaded once per process and never unloaded.
static EXPLICIT: OnceLock<PathBuf> = OnceLock::new();

/// Makes `path` the only cuBLAS `bench` tries in this process; the first
/// call wins.
pub fn use_explicit(path: PathBuf) {
    let _ = EXPLICIT.set(path);
}

/// The cuBLAS `bench --cublas` or GPUPROBE_CUBLAS named, if either did.
#[must_use]
pub fn explicit() -> Option<&'static Path> {
    EXPLICIT.get().map(PathBuf::as_path)
}

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
    /// Nothing at any candidate tried.
    #[error("no cuBLAS library found (tried {})", tried.join(", "))]
    NotFound { tried: Vec<String> },
    /// A library is there, but the loader refused it (a dependency such as
    /// libcublasLt missing, the wrong architecture, not a library).
    #[error("{name} was found but could not be loaded: {message}")]
    Unloadable { name: String, message: String },
    /// Loaded, but it lacks an entry point gpuprobe calls.
    #[error("{path} lacks cuBLAS entry points gpuprobe calls: {}", missing.join(", "))]
    MissingSymbols { path: String, missing: Vec<String> },
}

impl Cublas {
    /// Loads `candidate`. `LoadError::NotFound` means nothing is there
    /// (the next candidate may be tried); any other error is about a
    /// library that is there.
    pub fn load(candidate: &Candidate) -> Result<Cublas, LoadError> {
        let label = candidate.to_string();
        let loaded = match candidate {
            Candidate::Name(name) => {
                // SAFETY: loading cuBLAS runs its initialisers, as in every
                // program that links it.
                match unsafe { Library::new(name) } {
                    Err(e) if is_not_found(&e) && names_itself(&e.to_string(), name) => {
                        return Err(LoadError::NotFound { tried: vec![label] })
                    }
                    other => other,
                }
            }
            // A path that names no file is nothing there; dlopen would say
            // the same ("No such file") of a dependency that is missing.
            Candidate::File(path) if !path.is_file() => {
                return Err(LoadError::NotFound { tried: vec![label] })
            }
            Candidate::File(path) => open_file(path),
        };
        match loaded {
            Ok(lib) => Self::resolve(lib, &label),
            Err(e) => Err(LoadError::Unloadable {
                name: label,
                message: e.to_string(),
            }),
        }
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

/// Whether a loader's "No such file" is about `name` itself rather than a
/// library it needs: glibc's dlerror names the file it could not open
/// first ("libcublasLt.so.13: cannot open shared object file: No such file
/// or directory" when only cuBLAS's dependency is missing), musl's after
/// "Error loading shared library", with "(needed by ...)" for a
/// dependency. Windows does not tell the two apart (ERROR_MOD_NOT_FOUND
/// either way): there every such error counts as not found.
fn names_itself(message: &str, name: &str) -> bool {
    if cfg!(windows) {
        return true;
    }
    let named = format!("{name}:");
    (message.starts_with(&named) || message.contains(&format!(" {named}")))
        && !message.contains("needed by")
}

/// Loads the library file at `path` (absolute, or relative to the current
/// folder; never looked up on a search path).
#[cfg(not(windows))]
fn open_file(path: &Path) -> Result<Library, libloading::Error> {
    // A name with a slash is loaded from that path only (dlopen(3)); a bare
    // file name would be looked up on the loader's path instead.
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(".").join(path)
    };
    // SAFETY: loading cuBLAS runs its initialisers, as in every program
    // that links it.
    unsafe { Library::new(path) }
}

/// Loads the library file at `path`, its dependencies (cublasLt64_NN.dll)
/// looked for in its own folder first: LOAD_WITH_ALTERED_SEARCH_PATH with
/// an absolute path (LoadLibraryEx, "Dynamic-Link Library Search Order").
#[cfg(windows)]
fn open_file(path: &Path) -> Result<Library, libloading::Error> {
    use libloading::os::windows;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // SAFETY: loading cuBLAS runs its initialisers, as in every program
    // that links it; the flag only changes where its dependencies are
    // looked for.
    unsafe { windows::Library::load_with_flags(&path, windows::LOAD_WITH_ALTERED_SEARCH_PATH) }
        .map(Library::from)
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
        for name in CANDIDATES {
            match Cublas::load(&Candidate::Name(name)) {
                Err(LoadError::NotFound { tried }) => assert_eq!(tried, [*name]),
                // A system cuBLAS without its libcublasLt beside it.
                Err(LoadError::Unloadable { name: n, .. }) => assert_eq!(n, *name),
                Err(e @ LoadError::MissingSymbols { .. }) => panic!("{e}"),
                Ok(found) => assert!(!found.path.is_empty()),
            }
        }
    }

    #[test]
    fn a_path_with_no_file_is_not_found_and_a_file_that_is_no_library_unloadable() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("libcublas.so.13");
        match Cublas::load(&Candidate::File(absent.clone())) {
            Err(LoadError::NotFound { tried }) => {
                assert_eq!(tried, [absent.display().to_string()]);
            }
            other => panic!("{:?}", other.err()),
        }
        std::fs::write(&absent, b"not a library").unwrap();
        match Cublas::load(&Candidate::File(absent.clone())) {
            Err(e @ LoadError::Unloadable { .. }) => {
                assert!(e.to_string().contains(&absent.display().to_string()), "{e}");
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_missing_dependency_is_no_missing_library() {
        let glibc = "libcublasLt.so.13: cannot open shared object file: No such file or directory";
        let musl = "Error loading shared library libcublasLt.so.13: No such file or directory \
                    (needed by /usr/lib/libcublas.so.13)";
        for message in [glibc, musl] {
            assert_eq!(names_itself(message, "libcublas.so.13"), cfg!(windows));
        }
        for message in [
            "libcublas.so.13: cannot open shared object file: No such file or directory",
            "Error loading shared library libcublas.so.13: No such file or directory",
        ] {
            assert!(names_itself(message, "libcublas.so.13"), "{message}");
        }
    }
}
