//! The fake must catch the mistakes a real GPU would: these drive its API
//! directly, the way a buggy caller might, and expect the real driver's
//! answers. One test function, because the fake's state is per process and
//! the order (calls before cuInit first) matters.
use std::ffi::{c_void, CString};

use fakegpu::cuda::*;

const NOT_INITIALIZED: i32 = 3;
const INVALID_VALUE: i32 = 1;
const INVALID_CONTEXT: i32 = 201;
const INVALID_HANDLE: i32 = 400;
const ILLEGAL_ADDRESS: i32 = 700;

fn ptx() -> CString {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../kernels/matmul.ptx"
    ))
    .unwrap();
    CString::new(text).unwrap()
}

/// Runs the sgemm kernel with the given launch on n x n inputs of ones and
/// returns C, or the launch's error.
unsafe fn sgemm(n: usize, grid: [u32; 3], block: [u32; 3], m_arg: i32) -> Result<Vec<f32>, i32> {
    let mut module: *mut c_void = std::ptr::null_mut();
    assert_eq!(
        unsafe { cuModuleLoadData(&raw mut module, ptx().as_ptr().cast()) },
        0
    );
    let mut f: *mut c_void = std::ptr::null_mut();
    assert_eq!(
        unsafe { cuModuleGetFunction(&raw mut f, module, c"gpuprobe_sgemm_tiled".as_ptr()) },
        0
    );
    let ones = vec![1f32; n * n];
    let (mut a, mut b, mut c) = (0u64, 0u64, 0u64);
    for p in [&mut a, &mut b, &mut c] {
        assert_eq!(unsafe { cuMemAlloc_v2(p, n * n * 4) }, 0);
    }
    assert_eq!(
        unsafe { cuMemcpyHtoD_v2(a, ones.as_ptr().cast(), n * n * 4) },
        0
    );
    assert_eq!(
        unsafe { cuMemcpyHtoD_v2(b, ones.as_ptr().cast(), n * n * 4) },
        0
    );
    let (mut m, mut nn, mut k) = (m_arg, n as i32, n as i32);
    let mut params: [*mut c_void; 6] = [
        (&raw mut m).cast(),
        (&raw mut nn).cast(),
        (&raw mut k).cast(),
        (&raw mut a).cast(),
        (&raw mut b).cast(),
        (&raw mut c).cast(),
    ];
    let r = unsafe {
        cuLaunchKernel(
            f,
            grid[0],
            grid[1],
            grid[2],
            block[0],
            block[1],
            block[2],
            0,
            std::ptr::null_mut(),
            params.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    };
    let mut out = vec![0f32; n * n];
    let r = if r == 0 {
        unsafe { cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), c, n * n * 4) }
    } else {
        r
    };
    r.eq(&0).then_some(out).ok_or(r)
}

#[test]
#[allow(clippy::float_cmp, reason = "sums of ones are exact in f32")]
fn the_fake_answers_as_the_driver_would() {
    std::env::set_var(
        "FAKEGPU_SCENARIO",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/multi-gpu-one-corrupt.json"
        ),
    );
    // In this order: the fake's state is per process.
    unsafe {
        initialisation_and_devices();
        let mut ctx: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuDevicePrimaryCtxRetain(&raw mut ctx, 0), 0);
        assert_eq!(cuCtxSetCurrent(ctx), 0);
        launches_within_the_hardware_limits();
        events_without_timing_cannot_be_timed();
        unloading_a_module_invalidates_its_functions();
        copies_stay_inside_and_a_bad_write_sticks();
        // Another device is unaffected, and corrupts its copies as configured.
        assert_eq!(cuDevicePrimaryCtxRetain(&raw mut ctx, 2), 0);
        assert_eq!(cuCtxSetCurrent(ctx), 0);
        let c = sgemm(20, [2, 2, 1], [16, 16, 1], 20).unwrap();
        assert_eq!(
            c.iter().filter(|x| **x != 20.0).count(),
            1,
            "GPU 2 corrupts one element"
        );
    }
}

/// Calls before cuInit fail; the devices' bus ids are CUDA's; nothing is
/// allocated without a context.
unsafe fn initialisation_and_devices() {
    unsafe {
        let mut count = 0;
        assert_eq!(
            cuDeviceGetCount(&raw mut count),
            NOT_INITIALIZED,
            "calls before cuInit"
        );
        assert_eq!(cuInit(0), 0);
        assert_eq!(cuDeviceGetCount(&raw mut count), 0);
        assert_eq!(count, 4);

        // CUDA's bus id has a 4-digit domain; the scenario (NVML's form)
        // an 8-digit one.
        let mut bus = [0 as std::ffi::c_char; 32];
        assert_eq!(cuDeviceGetPCIBusId(bus.as_mut_ptr(), 32, 0), 0);
        let bus = std::ffi::CStr::from_ptr(bus.as_ptr()).to_string_lossy();
        assert_eq!(bus.len(), "0000:18:00.0".len(), "{bus}");
        assert!(bus.starts_with("0000:"), "{bus}");

        let mut ptr = 0u64;
        assert_eq!(
            cuMemAlloc_v2(&raw mut ptr, 64),
            INVALID_CONTEXT,
            "allocation without a context"
        );
    }
}

/// A correct launch computes n for every element of ones x ones (exactly:
/// sums of ones); a short grid shows; the hardware limits are enforced.
#[allow(clippy::float_cmp, reason = "sums of ones are exact in f32")]
unsafe fn launches_within_the_hardware_limits() {
    let all_n = |c: &[f32]| c.iter().all(|x| *x == 20.0);
    unsafe {
        let c = sgemm(20, [2, 2, 1], [16, 16, 1], 20).unwrap();
        assert!(all_n(&c), "correct launch");
        // A grid one block short leaves the last tile unwritten.
        let c = sgemm(20, [1, 2, 1], [16, 16, 1], 20).unwrap();
        assert!(!all_n(&c), "short grid must show");
        assert_eq!(
            sgemm(20, [2, 2, 1], [64, 32, 1], 20).unwrap_err(),
            INVALID_VALUE,
            "1024-thread block limit"
        );
        assert_eq!(
            sgemm(20, [0, 2, 1], [16, 16, 1], 20).unwrap_err(),
            INVALID_VALUE,
            "empty grid"
        );
    }
}

unsafe fn events_without_timing_cannot_be_timed() {
    unsafe {
        let (mut e0, mut e1) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(cuEventCreate(&raw mut e0, 2), 0);
        assert_eq!(cuEventCreate(&raw mut e1, 2), 0);
        assert_eq!(cuEventRecord(e0, std::ptr::null_mut()), 0);
        assert_eq!(cuEventRecord(e1, std::ptr::null_mut()), 0);
        let mut ms = 0f32;
        assert_eq!(cuEventElapsedTime(&raw mut ms, e0, e1), INVALID_HANDLE);
    }
}

unsafe fn unloading_a_module_invalidates_its_functions() {
    unsafe {
        let mut module: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuModuleLoadData(&raw mut module, ptx().as_ptr().cast()), 0);
        let mut f: *mut c_void = std::ptr::null_mut();
        let name = c"gpuprobe_sgemm_tiled";
        assert_eq!(cuModuleGetFunction(&raw mut f, module, name.as_ptr()), 0);
        assert_eq!(cuModuleUnload(module), 0);
        let mut params = [std::ptr::null_mut::<c_void>(); 6];
        assert_eq!(
            cuLaunchKernel(
                f,
                1,
                1,
                1,
                16,
                16,
                1,
                0,
                std::ptr::null_mut(),
                params.as_mut_ptr(),
                std::ptr::null_mut(),
            ),
            INVALID_HANDLE,
            "a function of an unloaded module"
        );
        assert_eq!(
            cuModuleGetFunction(&raw mut f, module, name.as_ptr()),
            INVALID_HANDLE
        );
        assert_eq!(cuModuleUnload(module), INVALID_HANDLE, "unloaded twice");
    }
}

/// Copies must stay inside their allocation; writing past C (m one row too
/// many) is an illegal address, and the context stays broken, as on a GPU.
unsafe fn copies_stay_inside_and_a_bad_write_sticks() {
    unsafe {
        let mut small = 0u64;
        assert_eq!(cuMemAlloc_v2(&raw mut small, 16), 0);
        let buf = [0u8; 32];
        assert_eq!(
            cuMemcpyHtoD_v2(small, buf.as_ptr().cast(), 32),
            INVALID_VALUE
        );
        assert_eq!(
            sgemm(16, [1, 2, 1], [16, 16, 1], 17).unwrap_err(),
            ILLEGAL_ADDRESS
        );
        let mut ptr = 0u64;
        assert_eq!(
            cuMemAlloc_v2(&raw mut ptr, 64),
            ILLEGAL_ADDRESS,
            "sticky error"
        );
    }
}
