//! An uncorrectable ECC error that error containment keeps to one context
//! (a scenario's `under_load` `context_error`): the launch running when the
//! GPU reaches the phase is hit; the launch itself returns success (it is
//! queued), CUDA_ERROR_ECC_UNCORRECTABLE (214) surfaces at the next call that
//! waits for the GPU and stays (sticky); NVML's counters move at that same
//! moment; the process's context on the other GPU goes on (NVIDIA, GPU
//! Memory Error Management, "Error Containment").
use std::ffi::{c_uint, c_ulonglong, c_void, CString};

use fakegpu::cuda::*;
use fakegpu::nvml::*;

const ECC_UNCORRECTABLE: i32 = 214;

/// nvmlDeviceGetRemappedRows (uncorrectable rows, pending) and the volatile
/// and aggregate uncorrectable ECC counts of NVML device `index`.
fn memory_errors(index: u32) -> (c_uint, c_uint, c_ulonglong, c_ulonglong) {
    // SAFETY: every pointer is a live local; the fake is this process's NVML.
    unsafe {
        let mut device: *mut c_void = std::ptr::null_mut();
        assert_eq!(nvmlDeviceGetHandleByIndex_v2(index, &raw mut device), 0);
        let (mut corrected, mut uncorrected, mut pending, mut failure) = (0, 0, 0, 0);
        assert_eq!(
            nvmlDeviceGetRemappedRows(
                device,
                &raw mut corrected,
                &raw mut uncorrected,
                &raw mut pending,
                &raw mut failure
            ),
            0
        );
        assert_eq!(failure, 0);
        let (mut volatile, mut aggregate) = (0, 0);
        assert_eq!(
            nvmlDeviceGetTotalEccErrors(device, 1, 0, &raw mut volatile),
            0
        );
        assert_eq!(
            nvmlDeviceGetTotalEccErrors(device, 1, 1, &raw mut aggregate),
            0
        );
        (uncorrected, pending, volatile, aggregate)
    }
}

#[test]
fn the_context_hit_gets_214_sticky_and_nvml_counts_it_at_that_moment() {
    // Where libcuda tells NVML what the GPUs have worked (crate::rm).
    let rm = std::env::temp_dir().join(format!("fakegpu-ecc-contained-{}", std::process::id()));
    std::fs::create_dir_all(&rm).unwrap();
    std::env::set_var("FAKEGPU_RM", &rm);
    std::env::set_var(
        "FAKEGPU_SCENARIO",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/burn-ecc-contained.json"
        ),
    );
    let ptx = CString::new(
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../kernels/matmul.ptx"
        ))
        .unwrap(),
    )
    .unwrap();
    // SAFETY: every pointer is a live local or buffer of the size cuda.h
    // requires; the fake is this process's driver.
    unsafe {
        assert_eq!(nvmlInit_v2(), 0);
        assert_eq!(cuInit(0), 0);
        let mut other: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuDevicePrimaryCtxRetain(&raw mut other, 1), 0);
        let mut ctx: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuDevicePrimaryCtxRetain(&raw mut ctx, 0), 0);
        assert_eq!(cuCtxSetCurrent(ctx), 0);
        assert_eq!(memory_errors(0), (0, 0, 0, 0), "before the phase");
        let mut module: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuModuleLoadData(&raw mut module, ptx.as_ptr().cast()), 0);
        let mut f: *mut c_void = std::ptr::null_mut();
        assert_eq!(
            cuModuleGetFunction(&raw mut f, module, c"gpuprobe_sgemm_tiled".as_ptr()),
            0
        );
        let n = 256usize;
        let (mut a, mut b, mut c) = (0u64, 0u64, 0u64);
        for p in [&mut a, &mut b, &mut c] {
            assert_eq!(cuMemAlloc_v2(p, n * n * 4), 0);
        }
        let (mut m, mut nn, mut k) = (n as i32, n as i32, n as i32);
        let mut params: [*mut c_void; 6] = [
            (&raw mut m).cast(),
            (&raw mut nn).cast(),
            (&raw mut k).cast(),
            (&raw mut a).cast(),
            (&raw mut b).cast(),
            (&raw mut c).cast(),
        ];
        let launch = |params: &mut [*mut c_void; 6]| {
            cuLaunchKernel(
                f,
                16,
                16,
                1,
                16,
                16,
                1,
                0,
                std::ptr::null_mut(),
                params.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        // 65,536 threads at the scenario's 160 µs each: past its 2.5 s.
        assert_eq!(launch(&mut params), 0, "a launch is queued, not run");
        assert_eq!(
            memory_errors(0),
            (1, 1, 1, 1),
            "NVML's counters move as the error happens"
        );
        let mut event: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuEventCreate(&raw mut event, 0), 0);
        assert_eq!(cuEventRecord(event, std::ptr::null_mut()), 0);
        assert_eq!(cuCtxSynchronize(), ECC_UNCORRECTABLE);
        let mut out = vec![0f32; n * n];
        assert_eq!(
            cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), c, n * n * 4),
            ECC_UNCORRECTABLE,
            "sticky"
        );
        assert_eq!(launch(&mut params), 0);
        assert_eq!(cuCtxSynchronize(), ECC_UNCORRECTABLE, "still sticky");
        // The process's context on the other GPU goes on, and that GPU's
        // NVML counts nothing.
        assert_eq!(cuCtxSetCurrent(other), 0);
        let mut x = 0u64;
        assert_eq!(cuMemAlloc_v2(&raw mut x, 1024), 0);
        assert_eq!(cuCtxSynchronize(), 0);
        assert_eq!(memory_errors(1), (0, 0, 0, 0));
    }
    let _ = std::fs::remove_dir_all(rm);
}
