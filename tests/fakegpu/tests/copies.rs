//! The fake's copies and pinned host memory answer as the driver does: a
//! copy outside an allocation, an unknown host allocation or a stream the
//! fake never made are refused; copies from and to pinned memory run on
//! the stream (their events complete when the host waits), copies from
//! pageable memory have finished when the call returns; the events time
//! each copy at the scenario's rates. One test function, because the
//! fake's state is per process.
use std::ffi::c_void;

use fakegpu::cuda::*;

const INVALID_VALUE: i32 = 1;
const INVALID_CONTEXT: i32 = 201;
const INVALID_HANDLE: i32 = 400;
const NOT_READY: i32 = 600;

/// Milliseconds between two fresh timing events around `work`, and whether
/// the end event was complete before the host waited for it.
unsafe fn timed(work: impl FnOnce()) -> (f32, bool) {
    let (mut e0, mut e1) = (std::ptr::null_mut(), std::ptr::null_mut());
    unsafe {
        assert_eq!(cuEventCreate(&raw mut e0, 0), 0);
        assert_eq!(cuEventCreate(&raw mut e1, 0), 0);
        assert_eq!(cuEventRecord(e0, std::ptr::null_mut()), 0);
        work();
        assert_eq!(cuEventRecord(e1, std::ptr::null_mut()), 0);
        let done_early = match cuEventQuery(e1) {
            0 => true,
            NOT_READY => false,
            other => panic!("cuEventQuery: {other}"),
        };
        assert_eq!(cuEventSynchronize(e1), 0);
        let mut ms = 0f32;
        assert_eq!(cuEventElapsedTime(&raw mut ms, e0, e1), 0);
        assert_eq!(cuEventDestroy_v2(e0), 0);
        assert_eq!(cuEventDestroy_v2(e1), 0);
        (ms, done_early)
    }
}

#[test]
fn copies_and_pinned_memory_behave_as_the_driver_does() {
    const BYTES: usize = 64 << 20;
    // The healthy H100: memory 90% of 2 x 2619 MHz x 5120 bits / 8, host
    // copies 85% of a Gen5 x16 link.
    std::env::set_var(
        "FAKEGPU_SCENARIO",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/healthy.json"),
    );
    let memory = 0.9 * 2.0 * 2619e6 * 5120.0 / 8.0;
    let link = 0.85 * 32e9 * 128.0 / 130.0 * 16.0 / 8.0;
    unsafe {
        assert_eq!(cuInit(0), 0);
        let mut host: *mut c_void = std::ptr::null_mut();
        assert_eq!(
            cuMemAllocHost_v2(&raw mut host, 64),
            INVALID_CONTEXT,
            "pinned memory needs a context"
        );
        let mut ctx: *mut c_void = std::ptr::null_mut();
        assert_eq!(cuDevicePrimaryCtxRetain(&raw mut ctx, 0), 0);
        assert_eq!(cuCtxSetCurrent(ctx), 0);

        let (mut a, mut b) = (0u64, 0u64);
        assert_eq!(cuMemAlloc_v2(&raw mut a, BYTES), 0);
        assert_eq!(cuMemAlloc_v2(&raw mut b, BYTES), 0);
        assert_eq!(cuMemAllocHost_v2(&raw mut host, BYTES), 0);
        assert_eq!(host as usize % 4096, 0, "page-aligned");
        // The pinned bytes, looked at only while no copy uses them.
        let pinned = || std::slice::from_raw_parts_mut(host.cast::<u8>(), BYTES);
        for (i, x) in pinned().iter_mut().enumerate() {
            *x = i as u8;
        }

        // Outside an allocation, on a stream the fake never made.
        assert_eq!(cuMemcpyDtoD_v2(b, a, BYTES + 1), INVALID_VALUE);
        assert_eq!(cuMemcpyDtoD_v2(b + 1, a, BYTES), INVALID_VALUE);
        assert_eq!(
            cuMemcpyHtoDAsync_v2(a, host, BYTES, 0x10 as *mut c_void),
            INVALID_HANDLE
        );

        // Host to device from pinned memory: on the stream, at the link's
        // rate.
        let (ms, early) = timed(|| {
            assert_eq!(
                cuMemcpyHtoDAsync_v2(a, host, BYTES, std::ptr::null_mut()),
                0
            );
        });
        assert!(!early, "a pinned copy runs after the call returns");
        let want = BYTES as f64 / link * 1e3;
        assert!(
            (f64::from(ms) - want).abs() < 1e-3 * want,
            "{ms} ms, want {want}"
        );

        // Device to device: reads and writes at the memory's rate.
        let (ms, early) = timed(|| assert_eq!(cuMemcpyDtoD_v2(b, a, BYTES), 0));
        assert!(!early);
        let want = 2.0 * BYTES as f64 / memory * 1e3;
        assert!(
            (f64::from(ms) - want).abs() < 1e-3 * want,
            "{ms} ms, want {want}"
        );

        // Back to the host: pinned, then pageable, which has finished when
        // the call returns; both bring the bytes back.
        pinned().fill(0);
        let (_, early) = timed(|| {
            assert_eq!(
                cuMemcpyDtoHAsync_v2(host, b, BYTES, std::ptr::null_mut()),
                0
            );
        });
        assert!(!early);
        assert!(pinned().iter().enumerate().all(|(i, x)| *x == i as u8));
        let mut pageable = vec![0u8; BYTES];
        let (_, early) = timed(|| {
            assert_eq!(
                cuMemcpyDtoHAsync_v2(pageable.as_mut_ptr().cast(), b, BYTES, std::ptr::null_mut()),
                0
            );
        });
        assert!(early, "a pageable copy has finished when it returns");
        assert_eq!(&pageable[..], &pinned()[..]);

        // Only what cuMemAllocHost returned is freed, once.
        assert_eq!(cuMemFreeHost(pageable.as_mut_ptr().cast()), INVALID_VALUE);
        assert_eq!(cuMemFreeHost(host), 0);
        assert_eq!(cuMemFreeHost(host), INVALID_VALUE);
        assert_eq!(cuMemFree_v2(a), 0);
        assert_eq!(cuMemFree_v2(b), 0);
    }
}
