//! A kernel that runs past a display GPU's watchdog (WDDM's TDR) fails as
//! on a real one: the launch is queued and returns success, and
//! CUDA_ERROR_LAUNCH_TIMEOUT (702) surfaces at the next call that waits for
//! the GPU, sticky from then on (cuda.h; launches are asynchronous).
use std::ffi::{c_void, CString};

use fakegpu::cuda::*;

const LAUNCH_TIMEOUT: i32 = 702;

#[test]
fn a_launch_past_the_watchdog_fails_at_the_next_synchronising_call() {
    std::env::set_var(
        "FAKEGPU_SCENARIO",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/wddm-display.json"
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
        assert_eq!(cuInit(0), 0);
        let mut ctx: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuDevicePrimaryCtxRetain(&raw mut ctx, 0), 0);
        assert_eq!(cuCtxSetCurrent(ctx), 0);
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
        // 65,536 threads at the scenario's modelled pace: far past 2 s.
        let launched = cuLaunchKernel(
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
        );
        assert_eq!(launched, 0, "a launch is queued, not run, when it returns");
        // Queueing an event after it waits for nothing: still success.
        let mut event: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuEventCreate(&raw mut event, 0), 0);
        assert_eq!(cuEventRecord(event, std::ptr::null_mut()), 0);
        assert_eq!(cuCtxSynchronize(), LAUNCH_TIMEOUT);
        let mut out = vec![0f32; n * n];
        assert_eq!(
            cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), c, n * n * 4),
            LAUNCH_TIMEOUT,
            "sticky"
        );
    }
}
