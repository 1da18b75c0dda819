//! The fake libcublas.so.12: the four cuBLAS calls `gpuprobe bench` makes,
//! placed beside the fake driver only when the scenario says `"cublas":
//! true`.
//!
//! Like the real library, which runs on the driver the process loaded
//! (libcuda.so.1), it does its work through that driver: cublasSgemm_v2
//! reads A, B and C with cuMemcpyDtoH_v2 and writes C back with
//! cuMemcpyHtoD_v2, so the fake driver checks every pointer against its
//! allocations and the current context, as a kernel's accesses are on a GPU.
//! It is a separate shared library with its own copy of this crate's
//! statics, and never reaches into the fake driver's state.
//!
//! Semantics follow the cuBLAS Library documentation, "cublas<t>gemm()":
//! column-major C = α·op(A)·op(B) + β·C with op(A) m x k and op(B) k x n,
//! each matrix at its leading dimension; β = 0 means C need not be valid on
//! input (BLAS convention); the listed argument checks return
//! CUBLAS_STATUS_INVALID_VALUE, a handle not made by cublasCreate
//! CUBLAS_STATUS_NOT_INITIALIZED. cublasCreate_v2 starts in
//! CUBLAS_DEFAULT_MATH ("cublasCreate", "cublasSetMathMode");
//! CUBLAS_TF32_TENSOR_OP_MATH lets an SGEMM round its inputs to TF32 (10
//! mantissa bits), which this fake always does in that mode.
//!
//! Every `unsafe` block dereferences a pointer the caller passed, valid as
//! cublas_api.h requires (the fake rejects null where the real one does).
#![allow(clippy::missing_safety_doc, non_snake_case)]

use std::ffi::{c_int, c_void};

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

type Copy = unsafe extern "C" fn(*mut c_void, u64, usize) -> c_int;
type CopyIn = unsafe extern "C" fn(u64, *const c_void, usize) -> c_int;

/// A handle: the driver's copy entry points and the math mode.
struct Handle {
    /// Keeps libcuda.so.1 referenced while the handle lives.
    _cuda: libloading::Library,
    download: Copy,
    upload: CopyIn,
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
            cuda.get::<Copy>(b"cuMemcpyDtoH_v2\0").map(|s| *s),
            cuda.get::<CopyIn>(b"cuMemcpyHtoD_v2\0").map(|s| *s),
        )
    };
    let (Ok(download), Ok(upload)) = symbols else {
        return NOT_INITIALIZED;
    };
    let h = Box::new(Handle {
        _cuda: cuda,
        download,
        upload,
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

/// A column-major matrix on the device: its first element and leading
/// dimension, and the rows and columns it is stored with.
struct Stored {
    ptr: u64,
    ld: usize,
    rows: usize,
    cols: usize,
}

impl Stored {
    /// Elements from the first to the last one used.
    fn span(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            self.ld * (self.cols - 1) + self.rows
        }
    }

    fn read(&self, h: &Handle) -> Result<Vec<f32>, Status> {
        let mut host = vec![0f32; self.span()];
        // SAFETY: the driver's entry point, with a host buffer of the size
        // copied; the driver checks the device range.
        let r = unsafe { (h.download)(host.as_mut_ptr().cast(), self.ptr, host.len() * 4) };
        if r == 0 {
            Ok(host)
        } else {
            Err(EXECUTION_FAILED)
        }
    }
}

/// `x` rounded to TF32: 10 mantissa bits, to nearest even.
fn tf32(x: f32) -> f32 {
    let bits = x.to_bits();
    if !x.is_finite() {
        return x;
    }
    let round = 0x0fff + ((bits >> 13) & 1);
    f32::from_bits(bits.wrapping_add(round) & !0x1fff)
}

#[no_mangle]
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
    let (alpha, beta) = unsafe { (*alpha, *beta) };
    let (m, n, k) = (m as usize, n as usize, k as usize);
    let stored = |ptr, ld: c_int, op: c_int, rows: usize, cols: usize| Stored {
        ptr,
        ld: ld as usize,
        // op(X) is rows x cols; X itself is that, or its transpose.
        rows: if op == OP_N { rows } else { cols },
        cols: if op == OP_N { cols } else { rows },
    };
    let (sa, sb, sc) = (
        stored(a, lda, transa, m, k),
        stored(b, ldb, transb, k, n),
        stored(c, ldc, OP_N, m, n),
    );
    let run = || -> Result<(), Status> {
        let tf32_inputs = h.math & !DISALLOW_REDUCED_PRECISION_REDUCTION == TF32_TENSOR_OP_MATH;
        let input = |v: f32| if tf32_inputs { tf32(v) } else { v };
        let (ha, hb) = if k > 0 {
            (sa.read(h)?, sb.read(h)?)
        } else {
            (Vec::new(), Vec::new())
        };
        // C is read even when β = 0: the elements between its columns (rows
        // m..ldc) must come back as they were.
        let mut hc = sc.read(h)?;
        let op_a = |i: usize, p: usize| {
            input(if transa == OP_N {
                ha[i + p * sa.ld]
            } else {
                ha[p + i * sa.ld]
            })
        };
        let op_b = |p: usize, j: usize| {
            input(if transb == OP_N {
                hb[p + j * sb.ld]
            } else {
                hb[j + p * sb.ld]
            })
        };
        for j in 0..n {
            for i in 0..m {
                let mut sum = 0f32;
                for p in 0..k {
                    sum += op_a(i, p) * op_b(p, j);
                }
                let at = i + j * sc.ld;
                hc[at] = if beta == 0.0 {
                    alpha * sum
                } else {
                    alpha * sum + beta * hc[at]
                };
            }
        }
        // SAFETY: the driver's entry point, copying the host buffer read
        // from the same device range.
        let r = unsafe { (h.upload)(sc.ptr, hc.as_ptr().cast(), hc.len() * 4) };
        if r == 0 {
            Ok(())
        } else {
            Err(EXECUTION_FAILED)
        }
    };
    match run() {
        Ok(()) => SUCCESS,
        Err(status) => status,
    }
}

/// Every symbol the fake libcublas exports: all of them cublas_api.h's.
pub const EXPORTS: &[&str] = &[
    "cublasCreate_v2",
    "cublasDestroy_v2",
    "cublasSetMathMode",
    "cublasSgemm_v2",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf32_keeps_ten_mantissa_bits_rounding_to_nearest() {
        assert_eq!(tf32(1.0), 1.0);
        // 1 + 2^-10 is TF32; 1 + 2^-11 is halfway and rounds to even (1).
        assert_eq!(tf32(1.0 + 1.0 / 1024.0), 1.0 + 1.0 / 1024.0);
        assert_eq!(tf32(1.0 + 1.0 / 2048.0), 1.0);
        assert_eq!(tf32(1.0 + 3.0 / 2048.0), 1.0 + 2.0 / 1024.0);
        assert!(tf32(f32::NAN).is_nan());
    }
}
