//! gpuprobe's driver owners (src/cuda) called directly, in-process, against
//! the fake driver: a device buffer refuses a host slice larger than itself
//! in either direction instead of copying part of it; an allocation whose
//! byte count overflows is refused, not wrapped or panicked on; pinned
//! memory of another context is refused by the asynchronous copies; NVML
//! answers a MIG device by its own handle, and gpuprobe finds both it and
//! its GPU; peer access is what the scenario offers, enabling it twice is
//! no error, and a kernel's store into a GPU without it faults.
//!
//! The loader reads LD_LIBRARY_PATH when a process starts, so the outer test
//! runs this test binary again with the scenario's environment, asking it
//! for the one `#[ignore]`d inner test (ignored so that a plain run, which
//! has no fake driver on its path, does not run it by itself).
#![cfg(target_os = "linux")]
mod common;

use gpuprobe::cuda::{kernels, peer, Buffer, Context, CopyError, Driver, Module, Pinned};

#[test]
fn buffer_copies_refuse_host_slices_larger_than_the_allocation() {
    common::run_inner("healthy", "inner_buffer_copies");
}

#[test]
#[ignore = "needs the fake driver on its library path; run by buffer_copies_refuse_host_slices_larger_than_the_allocation"]
#[allow(clippy::float_cmp, reason = "a copy is bit-exact")]
fn inner_buffer_copies() {
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        // `--run-ignored all` runs it on its own too; its assertions run in
        // the outer test, which gives it the fake driver.
        eprintln!(
            "inner test: runs inside buffer_copies_refuse_host_slices_larger_than_the_allocation"
        );
        return;
    }
    let driver = Driver::load().expect("the fake driver loads");
    driver.init().unwrap();
    let device = driver.device(0).unwrap();
    let ctx = Context::bind(&driver, device).unwrap();
    let buffer = Buffer::alloc(&ctx, 4).unwrap();

    let too_large = buffer.upload(&[1.0; 5]).unwrap_err();
    assert!(
        matches!(
            too_large,
            CopyError::TooLarge {
                host: 5,
                device: 4,
                ..
            }
        ),
        "{too_large}"
    );
    buffer.upload(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut out = [0.0f32; 5];
    assert!(matches!(
        buffer.download(&mut out).unwrap_err(),
        CopyError::TooLarge { host: 5, .. }
    ));
    assert_eq!(out, [0.0; 5], "a refused download writes nothing");
    let mut out = [0.0f32; 4];
    buffer.download(&mut out).unwrap();
    assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    // A shorter slice is a partial copy, which is what was asked for.
    buffer.upload(&[9.0]).unwrap();
    let mut first = [0.0f32; 1];
    buffer.download(&mut first).unwrap();
    assert_eq!(first, [9.0]);
}

#[test]
fn allocations_and_async_copies_refuse_what_they_cannot_do_safely() {
    common::run_inner("healthy", "inner_refusals");
}

#[test]
#[ignore = "needs the fake driver on its library path; run by allocations_and_async_copies_refuse_what_they_cannot_do_safely"]
fn inner_refusals() {
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside allocations_and_async_copies_refuse_what_they_cannot_do_safely");
        return;
    }
    let driver = Driver::load().expect("the fake driver loads");
    driver.init().unwrap();
    let device = driver.device(0).unwrap();
    let ctx = Context::bind(&driver, device).unwrap();
    // More floats than a byte count in usize can hold.
    let huge = usize::MAX / 2;
    assert!(matches!(
        Buffer::alloc(&ctx, huge),
        Err(CopyError::Overflow { floats, .. }) if floats == huge
    ));
    assert!(matches!(
        Pinned::alloc(&ctx, huge),
        Err(CopyError::Overflow { floats, .. }) if floats == huge
    ));
    // The same device's primary context, through another `Context`: its
    // pinned memory is waited for on that one, so the copies refuse it.
    let other = Context::bind(&driver, device).unwrap();
    let buffer = Buffer::alloc(&ctx, 4).unwrap();
    let foreign = Pinned::alloc(&other, 4).unwrap();
    assert!(matches!(
        buffer.upload_async(&foreign, 4),
        Err(CopyError::OtherContext { .. })
    ));
    assert!(matches!(
        buffer.download_async(&foreign, 4),
        Err(CopyError::OtherContext { .. })
    ));
    let own = Pinned::alloc(&ctx, 4).unwrap();
    buffer.upload_async(&own, 4).unwrap();
    buffer.download_async(&own, 4).unwrap();
}

#[test]
fn nvml_answers_a_mig_device_by_its_own_handle_and_its_gpu_by_the_parents() {
    common::run_inner("mig", "inner_mig_handles");
}

#[test]
#[ignore = "needs the fake driver on its library path; run by nvml_answers_a_mig_device_by_its_own_handle_and_its_gpu_by_the_parents"]
fn inner_mig_handles() {
    use gpuprobe::report::Reading;
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    use nvml_wrapper::error::NvmlError;
    const INSTANCE: &str = "MIG-2f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f2";
    const GPU: &str = "GPU-7e1a2b3c-4d5e-4f60-8a71-92b3c4d5e6f7";
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside nvml_answers_a_mig_device_by_its_own_handle_and_its_gpu_by_the_parents");
        return;
    }
    let loaded = gpuprobe::telemetry::load().expect("the fake NVML loads");
    let nvml = &loaded.nvml;
    let mig = nvml.device_by_uuid(INSTANCE).expect("a MIG device handle");
    assert_eq!(mig.uuid().unwrap(), INSTANCE);
    assert_eq!(mig.memory_info().unwrap().total, 10_200_547_328);
    assert!(matches!(
        mig.temperature(TemperatureSensor::Gpu),
        Err(NvmlError::NotSupported)
    ));
    let parent = mig.mig_parent_device().expect("the MIG device's GPU");
    assert_eq!(parent.uuid().unwrap(), GPU);
    assert_eq!(parent.temperature(TemperatureSensor::Gpu).unwrap(), 34);
    assert_eq!(parent.memory_info().unwrap().total, 85_899_345_920);
    assert!(matches!(
        parent.utilization_rates(),
        Err(NvmlError::NotSupported)
    ));
    assert!(
        parent.mig_parent_device().is_err(),
        "a GPU is no MIG device"
    );
    // The older form names the same instance.
    let legacy = nvml
        .device_by_uuid(format!("MIG-{GPU}/2/0"))
        .expect("the MIG-GPU-<uuid>/<gi>/<ci> form");
    assert_eq!(legacy.uuid().unwrap(), INSTANCE);
    assert!(nvml.device_by_uuid(format!("MIG-{GPU}/3/0")).is_err());

    // gpuprobe's lookup holds both handles and reads each where it answers.
    let found = gpuprobe::telemetry::find(nvml, Some(INSTANCE), Some("0000:07:00.0"))
        .expect("found by its MIG UUID");
    assert_eq!(found.own().unwrap().uuid().unwrap(), INSTANCE);
    assert_eq!(found.gpu().uuid().unwrap(), GPU);
    let t = loaded.read(&found);
    assert_eq!(t.temperature_celsius, Reading::Value(34));
    assert_eq!(t.mig_enabled, Reading::Value(true));
}

#[test]
fn peer_access_is_what_the_scenario_offers_and_a_store_without_it_faults() {
    common::run_inner("peer-iommu-corrupts", "inner_peer_access");
    common::run_inner("multi-gpu-one-corrupt", "inner_no_peer_access");
}

/// GPU 1's buffer, lent to GPU 0's thread by address, as the peer check
/// lends its landing buffers; `body` runs on GPU 0's thread with it.
fn with_gpu1_buffer(driver: &Driver, body: impl FnOnce(peer::PeerBuffer) + Send) {
    let (lent, take) = std::sync::mpsc::channel();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let ctx = Context::bind(driver, driver.device(1).unwrap()).unwrap();
            let buffer = Buffer::alloc(&ctx, 1024).unwrap();
            lent.send(peer::PeerBuffer {
                ptr: buffer.ptr,
                words: 1024,
            })
            .unwrap();
            // Kept until GPU 0's thread is done with it.
            let _ = finished.recv();
        });
        let peer = take.recv().unwrap();
        body(peer);
        done.send(()).unwrap();
    });
}

#[test]
#[ignore = "needs the fake driver on its library path; run by peer_access_is_what_the_scenario_offers_and_a_store_without_it_faults"]
fn inner_peer_access() {
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside peer_access_is_what_the_scenario_offers_and_a_store_without_it_faults");
        return;
    }
    let driver = Driver::load().expect("the fake driver loads");
    driver.init().unwrap();
    let (d0, d1) = (driver.device(0).unwrap(), driver.device(1).unwrap());
    assert!(peer::can_access_peer(&driver, d0, d1).unwrap());
    assert!(
        !peer::can_access_peer(&driver, d0, d0).unwrap(),
        "never a GPU itself"
    );
    with_gpu1_buffer(&driver, |landing| {
        let ctx = Context::bind(&driver, d0).unwrap();
        let kernel = Module::load(&ctx, kernels::PEER_PTX)
            .unwrap()
            .kernel(kernels::PEER_WRITE)
            .unwrap();
        // Enabling twice is no error to gpuprobe (the driver's 704).
        let access = peer::PeerAccess::enable(&ctx, d1).unwrap();
        drop(peer::PeerAccess::enable(&ctx, d1).unwrap());
        let source = Buffer::alloc(&ctx, 1024).unwrap();
        source.upload(&[1.5; 1024]).unwrap();
        // SAFETY: `landing` is GPU 1's live buffer of 1024 words, kept
        // until this closure returns, after the synchronise below.
        unsafe { access.copy_into(&source, landing) }.unwrap();
        // SAFETY: as above; the kernel is gpuprobe_peer_write.
        unsafe { access.store_into(&kernel, kernels::peer_launch(1024), landing, 7) }.unwrap();
        ctx.synchronize().unwrap();
        // A copy longer than its source is refused before the driver.
        let short = Buffer::alloc(&ctx, 16).unwrap();
        // SAFETY: refused before any copy is made.
        assert!(matches!(
            unsafe { access.copy_into(&short, landing) },
            Err(CopyError::TooLarge { .. })
        ));
    });
}

#[test]
#[ignore = "needs the fake driver on its library path; run by peer_access_is_what_the_scenario_offers_and_a_store_without_it_faults"]
fn inner_no_peer_access() {
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside peer_access_is_what_the_scenario_offers_and_a_store_without_it_faults");
        return;
    }
    let driver = Driver::load().expect("the fake driver loads");
    driver.init().unwrap();
    let (d0, d1) = (driver.device(0).unwrap(), driver.device(1).unwrap());
    assert!(!peer::can_access_peer(&driver, d0, d1).unwrap());
    with_gpu1_buffer(&driver, |landing| {
        let ctx = Context::bind(&driver, d0).unwrap();
        // cuCtxEnablePeerAccess refuses a pair CUDA offers no access for:
        // CUDA_ERROR_PEER_ACCESS_UNSUPPORTED.
        let refused = peer::PeerAccess::enable(&ctx, d1).err().expect("refused");
        assert_eq!(refused.code, 217, "{refused}");
        let kernel = Module::load(&ctx, kernels::PEER_PTX)
            .unwrap()
            .kernel(kernels::PEER_WRITE)
            .unwrap();
        let (mut n, mut dst, mut seed) = (1024u64, landing.ptr, 7u32);
        let mut params: [*mut std::ffi::c_void; 3] = [
            (&raw mut n).cast(),
            (&raw mut dst).cast(),
            (&raw mut seed).cast(),
        ];
        // A store into a GPU this one has no mapping for: the launch is
        // queued, and the wait meets the illegal address.
        // SAFETY: the kernel's parameters in order; the address is GPU 1's
        // live buffer, which the fake faults on rather than writes.
        unsafe { gpuprobe::cuda::launch(&ctx, &kernel, [4, 1, 1], [256, 1, 1], &mut params) }
            .unwrap();
        let fault = ctx.synchronize().unwrap_err();
        assert_eq!(fault.code, 700, "{fault}");
    });
}
