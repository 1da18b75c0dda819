//! The fake libcublas computes what cublasSgemm_v2 documents (column-major,
//! op(A) and op(B) as asked, α and β, TF32 inputs only in
//! CUBLAS_TF32_TENSOR_OP_MATH) through a launch on the fake driver, whose
//! events then time it. The libraries are used as gpuprobe uses them: laid
//! out by `fakegpu prepare` and loaded from there, cuBLAS finding the
//! driver already loaded under its SONAME (libcuda.so.1).
use std::ffi::{c_int, c_void};

use std::path::{Path, PathBuf};

use libloading::Library;

type Res = c_int;

/// Column-major reference: α·op(A)·op(B) + β·C, inputs through `round`.
#[allow(clippy::too_many_arguments)]
fn reference(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    ta: bool,
    b: &[f32],
    ldb: usize,
    tb: bool,
    (alpha, beta): (f32, f32),
    c: &mut [f32],
    ldc: usize,
    round: impl Fn(f32) -> f32,
) {
    for j in 0..n {
        for i in 0..m {
            let mut sum = 0f32;
            for p in 0..k {
                let x = if ta { a[p + i * lda] } else { a[i + p * lda] };
                let y = if tb { b[j + p * ldb] } else { b[p + j * ldb] };
                sum += round(x) * round(y);
            }
            c[i + j * ldc] = alpha * sum + beta * c[i + j * ldc];
        }
    }
}

/// TF32: 10 mantissa bits, to nearest even.
fn tf32(x: f32) -> f32 {
    let bits = x.to_bits();
    f32::from_bits(bits.wrapping_add(0x0fff + ((bits >> 13) & 1)) & !0x1fff)
}

type Sgemm = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    *const f32,
    u64,
    c_int,
    u64,
    c_int,
    *const f32,
    u64,
    c_int,
) -> Res;

/// The entry points the test calls, from the libraries `fakegpu prepare`
/// laid out.
struct Api {
    _cuda: Library,
    _cublas: Library,
    init: unsafe extern "C" fn(u32) -> Res,
    retain: unsafe extern "C" fn(*mut *mut c_void, c_int) -> Res,
    set: unsafe extern "C" fn(*mut c_void) -> Res,
    alloc: unsafe extern "C" fn(*mut u64, usize) -> Res,
    up: unsafe extern "C" fn(u64, *const c_void, usize) -> Res,
    down: unsafe extern "C" fn(*mut c_void, u64, usize) -> Res,
    event: unsafe extern "C" fn(*mut *mut c_void, u32) -> Res,
    record: unsafe extern "C" fn(*mut c_void, *mut c_void) -> Res,
    sync: unsafe extern "C" fn(*mut c_void) -> Res,
    elapsed: unsafe extern "C" fn(*mut f32, *mut c_void, *mut c_void) -> Res,
    create: unsafe extern "C" fn(*mut *mut c_void) -> Res,
    math: unsafe extern "C" fn(*mut c_void, c_int) -> Res,
    sgemm: Sgemm,
}

impl Api {
    /// # Safety
    /// `dir` holds the fake's libcuda.so.1 and libcublas.so.12, which run
    /// no initialiser of consequence; each signature is cuda.h's or
    /// cublas_api.h's.
    unsafe fn load(dir: &Path) -> Api {
        unsafe {
            let cuda = Library::new(dir.join("libcuda.so.1")).unwrap();
            let cublas = Library::new(dir.join("libcublas.so.12")).unwrap();
            Api {
                init: *cuda.get(b"cuInit").unwrap(),
                retain: *cuda.get(b"cuDevicePrimaryCtxRetain").unwrap(),
                set: *cuda.get(b"cuCtxSetCurrent").unwrap(),
                alloc: *cuda.get(b"cuMemAlloc_v2").unwrap(),
                up: *cuda.get(b"cuMemcpyHtoD_v2").unwrap(),
                down: *cuda.get(b"cuMemcpyDtoH_v2").unwrap(),
                event: *cuda.get(b"cuEventCreate").unwrap(),
                record: *cuda.get(b"cuEventRecord").unwrap(),
                sync: *cuda.get(b"cuEventSynchronize").unwrap(),
                elapsed: *cuda.get(b"cuEventElapsedTime").unwrap(),
                create: *cublas.get(b"cublasCreate_v2").unwrap(),
                math: *cublas.get(b"cublasSetMathMode").unwrap(),
                sgemm: *cublas.get(b"cublasSgemm_v2").unwrap(),
                _cuda: cuda,
                _cublas: cublas,
            }
        }
    }

    /// A device buffer holding `host`.
    unsafe fn buffer(&self, host: &[f32]) -> u64 {
        let mut d = 0u64;
        unsafe {
            assert_eq!((self.alloc)(&raw mut d, host.len() * 4), 0);
            assert_eq!((self.up)(d, host.as_ptr().cast(), host.len() * 4), 0);
        }
        d
    }
}

/// op(A) 5 x 3 from A^T stored 3 x 5 (lda 4); op(B) 3 x 7 stored as is
/// (ldb 3); C 5 x 7 at ldc 6, the padding row left alone. The values have
/// more than TF32's mantissa, so the math mode shows.
struct Problem {
    a: Vec<f32>,
    b: Vec<f32>,
    c0: Vec<f32>,
    alpha: f32,
    beta: f32,
}

const M: usize = 5;
const N: usize = 7;
const K: usize = 3;
const LDA: usize = 4;
const LDB: usize = 3;
const LDC: usize = 6;

impl Problem {
    fn new() -> Problem {
        Problem {
            a: (0..LDA * M).map(|i| 1.0 + i as f32 / 4096.0).collect(),
            b: (0..LDB * N).map(|i| 2.0 - i as f32 / 8192.0).collect(),
            c0: (0..LDC * N).map(|i| i as f32).collect(),
            alpha: 1.5,
            beta: 0.5,
        }
    }

    /// C as cuBLAS documents it, with the inputs through `round`.
    fn want(&self, round: fn(f32) -> f32) -> Vec<f32> {
        let mut c = self.c0.clone();
        reference(
            (M, N, K),
            &self.a,
            LDA,
            true,
            &self.b,
            LDB,
            false,
            (self.alpha, self.beta),
            &mut c,
            LDC,
            round,
        );
        c
    }
}

/// Runs the problem's GEMM in math `mode` between two events; C as it
/// came back, and the events' milliseconds.
unsafe fn timed_gemm(api: &Api, handle: *mut c_void, p: &Problem, mode: c_int) -> (Vec<f32>, f32) {
    unsafe {
        assert_eq!((api.math)(handle, mode), 0);
        let (da, db, dc) = (api.buffer(&p.a), api.buffer(&p.b), api.buffer(&p.c0));
        let (mut e0, mut e1) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!((api.event)(&raw mut e0, 0), 0);
        assert_eq!((api.event)(&raw mut e1, 0), 0);
        assert_eq!((api.record)(e0, std::ptr::null_mut()), 0);
        let r = (api.sgemm)(
            handle,
            1,
            0,
            M as c_int,
            N as c_int,
            K as c_int,
            &raw const p.alpha,
            da,
            LDA as c_int,
            db,
            LDB as c_int,
            &raw const p.beta,
            dc,
            LDC as c_int,
        );
        assert_eq!(r, 0);
        assert_eq!((api.record)(e1, std::ptr::null_mut()), 0);
        assert_eq!((api.sync)(e1), 0);
        let mut ms = 0f32;
        assert_eq!((api.elapsed)(&raw mut ms, e0, e1), 0);
        let mut got = vec![0f32; p.c0.len()];
        assert_eq!((api.down)(got.as_mut_ptr().cast(), dc, got.len() * 4), 0);
        (got, ms)
    }
}

/// Lays out the cublas scenario with `fakegpu prepare` and takes on the
/// environment it prepared.
fn prepared() -> PathBuf {
    // `prepare` links the fake's libraries from its static library, which
    // only `cargo build -p fakegpu` makes (a test build makes the rlib).
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "fakegpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(built.success(), "cargo build -p fakegpu");
    let dir = tempfile_dir();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/cublas.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fakegpu"))
        .args(["prepare", scenario])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in std::fs::read_to_string(dir.join("env")).unwrap().lines() {
        let (k, v) = line.split_once('=').unwrap();
        std::env::set_var(k, v);
    }
    dir
}

#[test]
fn sgemm_computes_what_cublas_documents_and_takes_gpu_time() {
    let dir = prepared();
    let p = Problem::new();
    // SAFETY: every call passes what cuda.h and cublas_api.h require.
    unsafe {
        let api = Api::load(&dir);
        assert_eq!((api.init)(0), 0);
        let mut ctx = std::ptr::null_mut();
        assert_eq!((api.retain)(&raw mut ctx, 0), 0);
        assert_eq!((api.set)(ctx), 0);
        let mut handle = std::ptr::null_mut();
        assert_eq!((api.create)(&raw mut handle), 0);
        for (mode, round) in [(0, (|x| x) as fn(f32) -> f32), (3, tf32)] {
            let (got, ms) = timed_gemm(&api, handle, &p, mode);
            assert!(ms > 0.0, "the GEMM is a launch, and takes GPU time");
            assert_eq!(got, p.want(round), "math mode {mode}");
        }
        // The two modes differ on these inputs: the TF32 rounding happened.
        assert_ne!(p.want(|x| x), p.want(tf32));
        // Argument checks as cublas_api.h lists them.
        let (da, db) = (api.buffer(&p.a), api.buffer(&p.b));
        let (alpha, beta) = (&raw const p.alpha, &raw const p.beta);
        let bad = (api.sgemm)(handle, 0, 0, 5, 7, 3, alpha, da, 4, db, 2, beta, da, 6);
        assert_eq!(bad, 7, "ldb < k is CUBLAS_STATUS_INVALID_VALUE");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fakegpu-cublas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
