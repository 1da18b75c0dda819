//! The fake libcublas.so.12: the four cuBLAS calls `gpuprobe bench` makes,
//! placed beside the fake driver only when the scenario says `"cublas":
//! true`.
//!
//! Like the real library, which runs on the driver the process loaded
//! (libcuda.so.1) and launches kernels of its own there, cublasSgemm_v2 is a
//! launch through that driver of the library's kernel
//! (emu/libraries/cublas.cu, loaded into the handle's context by
//! cublasCreate_v2). So its GPU time follows the driver's one rule for
//! launches (the scenario's `launch_ns_per_thread`, else what the emulation
//! took): a GEMM never looks faster on the events than the work the fake
//! does for it, and a loop sized from those events fits its deadline. It is
//! a separate shared library with its own copy of this crate's statics, and
//! never reaches into the fake driver's state.
//!
//! Semantics follow the cuBLAS Library documentation, "cublas<t>gemm()":
//! column-major C = α·op(A)·op(B) + β·C with op(A) m x k and op(B) k x n,
//! each matrix at its leading dimension; β = 0 means C need not be valid on
//! input (BLAS convention); the listed argument checks return
//! CUBLAS_STATUS_INVALID_VALUE, a handle not made by cublasCreate
//! CUBLAS_STATUS_NOT_INITIALIZED, a launch the driver refuses
//! CUBLAS_STATUS_EXECUTION_FAILED. cublasCreate_v2 starts in
//! CUBLAS_DEFAULT_MATH ("cublasCreate", "cublasSetMathMode");
//! CUBLAS_TF32_TENSOR_OP_MATH lets an SGEMM round its inputs to TF32 (10
//! mantissa bits), which this fake always does in that mode.
//!
//! Every `unsafe` block dereferences a pointer the caller passed, valid as
//! cublas_api.h requires (the fake rejects null where the real one does), or
//! calls the driver with arguments cuda.h documents.
#![allow(clippy::missing_safety_doc, non_snake_case)]

use std::ffi::{c_int, c_uint, c_void};

type Status = c_int;

const SUCCESS: Status = 0;
const NOT_INITIALIZED: Status = 1;
const INVALID_VALUE: Status = 7;
const EXECUTION_FAILED: Status = 13;

/// cublasOperation_t.
const OP_N: c_int = 0;
const OP_T: c_int = 1;
const OP_C: c_int = 2;
/// cublasMath_t: CUBLAS_DEFAULT_MATH, CUBLAS_TENSOR_OP_MATH (deprecated),
/// CUBLAS_PEDANTIC_MATH, CUBLAS_TF32_TENSOR_OP_MATH; the flag
/// CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION may be or-ed in.
const TF32_TENSOR_OP_MATH: c_int = 3;
const DISALLOW_REDUCED_PRECISION_REDUCTION: c_int = 16;

type ModuleLoadData = unsafe extern "C" fn(*mut *mut c_void, *const c_void) -> c_int;
type ModuleGetFunction =
    unsafe extern "C" fn(*mut *mut c_void, *mut c_void, *const std::ffi::c_char) -> c_int;
type ModuleUnload = unsafe extern "C" fn(*mut c_void) -> c_int;
type LaunchKernel = unsafe extern "C" fn(
    *mut c_void,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    c_uint,
    *mut c_void,
    *mut *mut c_void,
    *mut *mut c_void,
) -> c_int;

/// The library's kernel image, as cuModuleLoadData takes it: the entry the
/// fake driver's emulator runs (emu/libraries/cublas.cu), with its 14
/// parameters. PTX ISA 4.1 for sm_52, which every driver and GPU the fake
/// models accepts, as the real cuBLAS carries code for every architecture
/// it supports.
const IMAGE: &std::ffi::CStr = c".version 4.1
.target sm_52
.address_size 64
.visible .entry fakecublas_sgemm(
.param .u32 m, .param .u32 n, .param .u32 k, .param .f32 alpha,
.param .u64 a, .param .u32 lda, .param .u32 transa,
.param .u64 b, .param .u32 ldb, .param .u32 transb,
.param .f32 beta, .param .u64 c, .param .u32 ldc, .param .u32 tf32
)
{
ret;
}
";

/// The kernel's block: 16 x 16 threads, one element of C each.
const TILE: c_uint = 16;

/// A handle: the library's kernel in the context it was made in, the
/// driver's entry points it uses, and the math mode.
struct Handle {
    /// Keeps libcuda.so.1 referenced while the handle lives.
    _cuda: libloading::Library,
    launch: LaunchKernel,
    unload: ModuleUnload,
    module: *mut c_void,
    sgemm: *mut c_void,
    math: c_int,
    /// Tells a handle of this library from any other pointer.
    magic: u64,
}

const MAGIC: u64 = 0x0C0B_1A5F_4CE0_0001;

/// The handle behind `raw`, if it is one of ours.
unsafe fn handle<'a>(raw: *mut c_void) -> Option<&'a mut Handle> {
    if raw.is_null() {
        return None;
    }
    // SAFETY: a handle is a pointer cublasCreate_v2 returned (cublas_api.h).
    let h = unsafe { &mut *raw.cast::<Handle>() };
    (h.magic == MAGIC).then_some(h)
}

#[no_mangle]
pub unsafe extern "C" fn cublasCreate_v2(out: *mut *mut c_void) -> Status {
    if out.is_null() {
        return INVALID_VALUE;
    }
    // cuBLAS runs on the driver the process has loaded: the same library,
    // by its SONAME.
    // SAFETY: loading the (fake) driver runs no initialiser of consequence.
    let Ok(cuda) = (unsafe { libloading::Library::new("libcuda.so.1") }) else {
        return NOT_INITIALIZED;
    };
    // SAFETY: the prototypes of cuda.h.
    let symbols = unsafe {
        (
            cuda.get::<ModuleLoadData>(b"cuModuleLoadData\0")
                .map(|s| *s),
            cuda.get::<ModuleGetFunction>(b"cuModuleGetFunction\0")
                .map(|s| *s),
            cuda.get::<ModuleUnload>(b"cuModuleUnload\0").map(|s| *s),
            cuda.get::<LaunchKernel>(b"cuLaunchKernel\0").map(|s| *s),
        )
    };
    let (Ok(load), Ok(get_function), Ok(unload), Ok(launch)) = symbols else {
        return NOT_INITIALIZED;
    };
    // The kernel goes into the context current on this thread, as
    // cublasCreate's handle is tied to the current device ("cublasCreate").
    let mut module = std::ptr::null_mut();
    let mut sgemm = std::ptr::null_mut();
    // SAFETY: out-pointers to locals and a NUL-terminated image and name,
    // as cuda.h requires.
    let loaded = unsafe {
        load(&raw mut module, IMAGE.as_ptr().cast()) == 0
            && get_function(&raw mut sgemm, module, c"fakecublas_sgemm".as_ptr()) == 0
    };
    if !loaded {
        return NOT_INITIALIZED;
    }
    let h = Box::new(Handle {
        _cuda: cuda,
        launch,
        unload,
        module,
        sgemm,
        math: 0,
        magic: MAGIC,
    });
    // SAFETY: `out` is non-null (checked), as cublas_api.h requires.
    unsafe { *out = Box::into_raw(h).cast() };
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cublasDestroy_v2(raw: *mut c_void) -> Status {
    // SAFETY: see `handle`.
    if unsafe { handle(raw) }.is_none() {
        return NOT_INITIALIZED;
    }
    // SAFETY: made by Box::into_raw in cublasCreate_v2, destroyed once.
    let mut h = unsafe { Box::from_raw(raw.cast::<Handle>()) };
    h.magic = 0;
    // SAFETY: the module cublasCreate_v2 loaded, unloaded once.
    unsafe { (h.unload)(h.module) };
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cublasSetMathMode(raw: *mut c_void, mode: c_int) -> Status {
    // SAFETY: see `handle`.
    let Some(h) = (unsafe { handle(raw) }) else {
        return NOT_INITIALIZED;
    };
    if !(0..=TF32_TENSOR_OP_MATH).contains(&(mode & !DISALLOW_REDUCED_PRECISION_REDUCTION)) {
        return INVALID_VALUE;
    }
    h.math = mode;
    SUCCESS
}

#[no_mangle]
#[allow(
    clippy::similar_names,
    reason = "transa and transb are cublas<t>gemm's own parameter names"
)]
pub unsafe extern "C" fn cublasSgemm_v2(
    raw: *mut c_void,
    transa: c_int,
    transb: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: *const f32,
    a: u64,
    lda: c_int,
    b: u64,
    ldb: c_int,
    beta: *const f32,
    c: u64,
    ldc: c_int,
) -> Status {
    // SAFETY: see `handle`.
    let Some(h) = (unsafe { handle(raw) }) else {
        return NOT_INITIALIZED;
    };
    let ops = [OP_N, OP_T, OP_C];
    let at_least = |ld: c_int, rows: c_int| ld >= rows.max(1);
    let (a_rows, b_rows) = (
        if transa == OP_N { m } else { k },
        if transb == OP_N { k } else { n },
    );
    if m < 0
        || n < 0
        || k < 0
        || !ops.contains(&transa)
        || !ops.contains(&transb)
        || !at_least(lda, a_rows)
        || !at_least(ldb, b_rows)
        || !at_least(ldc, m)
        || alpha.is_null()
        || beta.is_null()
    {
        return INVALID_VALUE;
    }
    if m == 0 || n == 0 {
        return SUCCESS;
    }
    // SAFETY: non-null (checked), host pointers in the default pointer mode.
    let (mut alpha, mut beta) = unsafe { (*alpha, *beta) };
    let mut tf32 =
        c_int::from(h.math & !DISALLOW_REDUCED_PRECISION_REDUCTION == TF32_TENSOR_OP_MATH);
    let (mut m, mut n, mut k) = (m, n, k);
    let (mut lda, mut ldb, mut ldc) = (lda, ldb, ldc);
    let (mut a, mut b, mut c) = (a, b, c);
    let (mut transa, mut transb) = (c_int::from(transa != OP_N), c_int::from(transb != OP_N));
    let mut params: [*mut c_void; 14] = [
        (&raw mut m).cast(),
        (&raw mut n).cast(),
        (&raw mut k).cast(),
        (&raw mut alpha).cast(),
        (&raw mut a).cast(),
        (&raw mut lda).cast(),
        (&raw mut transa).cast(),
        (&raw mut b).cast(),
        (&raw mut ldb).cast(),
        (&raw mut transb).cast(),
        (&raw mut beta).cast(),
        (&raw mut c).cast(),
        (&raw mut ldc).cast(),
        (&raw mut tf32).cast(),
    ];
    let grid = |x: c_int| (x as c_uint).div_ceil(TILE);
    // SAFETY: the kernel's parameters, each a pointer to a live local of
    // the kernel's type, on the default stream, as cuLaunchKernel requires.
    let r = unsafe {
        (h.launch)(
            h.sgemm,
            grid(m),
            grid(n),
            1,
            TILE,
            TILE,
            1,
            0,
            std::ptr::null_mut(),
            params.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    };
    if r == 0 {
        SUCCESS
    } else {
        EXECUTION_FAILED
    }
}

/// Every symbol the fake libcublas exports: all of them cublas_api.h's.
pub const EXPORTS: &[&str] = &[
    "cublasCreate_v2",
    "cublasDestroy_v2",
    "cublasSetMathMode",
    "cublasSgemm_v2",
];
