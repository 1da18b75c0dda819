//! gpuprobe's driver owners (src/cuda) called directly, in-process, against
//! the fake driver: a device buffer refuses a host slice larger than itself
//! in either direction instead of copying part of it; an allocation whose
//! byte count overflows is refused, not wrapped or panicked on; pinned
//! memory of another context is refused by the asynchronous copies; NVML
//! answers a MIG device by its own handle, and gpuprobe finds both it and
//! its GPU.
//!
//! The loader reads LD_LIBRARY_PATH when a process starts, so the outer test
//! runs this test binary again with the scenario's environment, asking it
//! for the one `#[ignore]`d inner test (ignored so that a plain run, which
//! has no fake driver on its path, does not run it by itself).
#![cfg(target_os = "linux")]
mod common;

use gpuprobe::cuda::{Buffer, Context, CopyError, Driver, Pinned};

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
