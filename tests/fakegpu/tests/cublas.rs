//! The fake libcublas computes what cublasSgemm_v2 documents (column-major,
//! op(A) and op(B) as asked, α and β, TF32 inputs only in
//! CUBLAS_TF32_TENSOR_OP_MATH) through a launch on the fake driver, whose
//! events then time it. The libraries are used as gpuprobe uses them: laid
//! out by `fakegpu prepare` and loaded from there, cuBLAS finding the
//! driver already loaded under its SONAME (libcuda.so.1).
use std::ffi::{c_int, c_void};

use libloading::{Library, Symbol};

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

#[test]
fn sgemm_computes_what_cublas_documents_and_takes_gpu_time() {
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
    // SAFETY: the fake libraries run no initialiser of consequence; every
    // call below passes what cuda.h and cublas_api.h require.
    unsafe {
        let cuda = Library::new(dir.join("libcuda.so.1")).unwrap();
        let cublas = Library::new(dir.join("libcublas.so.12")).unwrap();
        let init: Symbol<unsafe extern "C" fn(u32) -> Res> = cuda.get(b"cuInit").unwrap();
        let retain: Symbol<unsafe extern "C" fn(*mut *mut c_void, c_int) -> Res> =
            cuda.get(b"cuDevicePrimaryCtxRetain").unwrap();
        let set: Symbol<unsafe extern "C" fn(*mut c_void) -> Res> =
            cuda.get(b"cuCtxSetCurrent").unwrap();
        let alloc: Symbol<unsafe extern "C" fn(*mut u64, usize) -> Res> =
            cuda.get(b"cuMemAlloc_v2").unwrap();
        let up: Symbol<unsafe extern "C" fn(u64, *const c_void, usize) -> Res> =
            cuda.get(b"cuMemcpyHtoD_v2").unwrap();
        let down: Symbol<unsafe extern "C" fn(*mut c_void, u64, usize) -> Res> =
            cuda.get(b"cuMemcpyDtoH_v2").unwrap();
        let event: Symbol<unsafe extern "C" fn(*mut *mut c_void, u32) -> Res> =
            cuda.get(b"cuEventCreate").unwrap();
        let record: Symbol<unsafe extern "C" fn(*mut c_void, *mut c_void) -> Res> =
            cuda.get(b"cuEventRecord").unwrap();
        let sync: Symbol<unsafe extern "C" fn(*mut c_void) -> Res> =
            cuda.get(b"cuEventSynchronize").unwrap();
        let elapsed: Symbol<unsafe extern "C" fn(*mut f32, *mut c_void, *mut c_void) -> Res> =
            cuda.get(b"cuEventElapsedTime").unwrap();
        let create: Symbol<unsafe extern "C" fn(*mut *mut c_void) -> Res> =
            cublas.get(b"cublasCreate_v2").unwrap();
        let math: Symbol<unsafe extern "C" fn(*mut c_void, c_int) -> Res> =
            cublas.get(b"cublasSetMathMode").unwrap();
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
        let sgemm: Symbol<Sgemm> = cublas.get(b"cublasSgemm_v2").unwrap();

        assert_eq!(init(0), 0);
        let mut ctx = std::ptr::null_mut();
        assert_eq!(retain(&raw mut ctx, 0), 0);
        assert_eq!(set(ctx), 0);
        let mut handle = std::ptr::null_mut();
        assert_eq!(create(&raw mut handle), 0);

        // op(A) 5 x 3 from A^T stored 3 x 5 (lda 4); op(B) 3 x 7 stored as
        // is (ldb 3); C 5 x 7 at ldc 6, the padding row left alone.
        let (m, n, k) = (5usize, 7usize, 3usize);
        let (lda, ldb, ldc) = (4usize, 3usize, 6usize);
        // Values with more than TF32's mantissa, so the math mode shows.
        let a: Vec<f32> = (0..lda * m).map(|i| 1.0 + i as f32 / 4096.0).collect();
        let b: Vec<f32> = (0..ldb * n).map(|i| 2.0 - i as f32 / 8192.0).collect();
        let c0: Vec<f32> = (0..ldc * n).map(|i| i as f32).collect();
        let buffer = |host: &[f32]| {
            let mut d = 0u64;
            assert_eq!(alloc(&raw mut d, host.len() * 4), 0);
            assert_eq!(up(d, host.as_ptr().cast(), host.len() * 4), 0);
            d
        };
        let (da, db) = (buffer(&a), buffer(&b));
        let (alpha, beta) = (1.5f32, 0.5f32);
        for (mode, round) in [(0, (|x| x) as fn(f32) -> f32), (3, tf32)] {
            assert_eq!(math(handle, mode), 0);
            let dc = buffer(&c0);
            let (mut e0, mut e1) = (std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!(event(&raw mut e0, 0), 0);
            assert_eq!(event(&raw mut e1, 0), 0);
            assert_eq!(record(e0, std::ptr::null_mut()), 0);
            let r = sgemm(
                handle,
                1,
                0,
                m as c_int,
                n as c_int,
                k as c_int,
                &alpha,
                da,
                lda as c_int,
                db,
                ldb as c_int,
                &beta,
                dc,
                ldc as c_int,
            );
            assert_eq!(r, 0);
            assert_eq!(record(e1, std::ptr::null_mut()), 0);
            assert_eq!(sync(e1), 0);
            let mut ms = 0f32;
            assert_eq!(elapsed(&raw mut ms, e0, e1), 0);
            assert!(ms > 0.0, "the GEMM is a launch, and takes GPU time");
            let mut got = vec![0f32; c0.len()];
            assert_eq!(down(got.as_mut_ptr().cast(), dc, got.len() * 4), 0);
            let mut want = c0.clone();
            reference(
                (m, n, k),
                &a,
                lda,
                true,
                &b,
                ldb,
                false,
                (alpha, beta),
                &mut want,
                ldc,
                round,
            );
            assert_eq!(got, want, "math mode {mode}");
        }
        // The two modes differ on these inputs: the TF32 rounding happened.
        let mut plain = c0.clone();
        reference(
            (m, n, k),
            &a,
            lda,
            true,
            &b,
            ldb,
            false,
            (alpha, beta),
            &mut plain,
            ldc,
            |x| x,
        );
        let mut rounded = c0.clone();
        reference(
            (m, n, k),
            &a,
            lda,
            true,
            &b,
            ldb,
            false,
            (alpha, beta),
            &mut rounded,
            ldc,
            tf32,
        );
        assert_ne!(plain, rounded);
        // Argument checks as cublas_api.h lists them.
        let bad = sgemm(handle, 0, 0, 5, 7, 3, &alpha, da, 4, db, 2, &beta, da, 6);
        assert_eq!(bad, 7, "ldb < k is CUBLAS_STATUS_INVALID_VALUE");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fakegpu-cublas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
