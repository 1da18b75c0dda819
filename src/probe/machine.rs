//! The stages that concern the whole machine rather than one GPU: loading
//! NVML and the CUDA driver, identifying and selecting devices, reading
//! telemetry, and the CPU reference.
use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::ending::NoGpu;
use super::{Selection, Selector};
use crate::checks::progress::{Done, Failed, Progress, Scope};
use crate::checks::SAMPLE_SALT;
use crate::cpu::{self, Repeat};
use crate::cuda::{self, Driver, LoadError};
use crate::report::{
    CheckStatus, CpuLimit, CpuReport, DeviceReport, DeviceStatus, DriverLoadFailure,
};
use crate::stage::Stage;
use crate::telemetry;
use crate::units::flops;
use crate::verify::{Inputs, Reference};

/// Loads NVML, recording what was found; a missing NVML is a finding.
pub(super) fn load_nvml(progress: &Progress) -> Option<&'static telemetry::Loaded> {
    progress
        .stage(Scope::Machine, Stage::Nvml, || match telemetry::load() {
            Ok(loaded) => {
                let detail = format!(
                    "NVML {} (driver {}) sees {} GPU(s)",
                    loaded.info.nvml_version.as_deref().unwrap_or("?"),
                    loaded.info.driver_version.as_deref().unwrap_or("?"),
                    loaded.info.device_uuids.len() + loaded.info.lost_devices.len()
                );
                progress.update(|r| r.nvml = loaded.info.clone());
                Ok(Done::pass(Some(loaded), detail))
            }
            Err(info) => {
                let detail = format!(
                    "no NVML telemetry: {} ({})",
                    info.status,
                    info.error.as_deref().unwrap_or("")
                );
                progress.update(|r| r.nvml = *info);
                Ok(Done::skip(None, detail, None))
            }
        })
        .flatten()
}

/// The driver, loaded once per process: watch mode probes again and again,
/// and a CUDA driver is not meant to be unloaded and reloaded.
pub(super) fn cached_driver() -> Result<Arc<Driver>, LoadError> {
    static DRIVER: std::sync::OnceLock<Result<Arc<Driver>, LoadError>> = std::sync::OnceLock::new();
    DRIVER.get_or_init(|| Driver::load().map(Arc::new)).clone()
}

/// The driver, or why there is none to use.
pub(super) fn load_driver(progress: &Progress) -> Result<Arc<Driver>, NoGpu> {
    progress.update(|r| {
        r.driver.library_candidates = cuda::driver::CANDIDATES
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        r.driver.search_path = cuda::driver::search_path();
    });
    let loaded = progress.stage(Scope::Machine, Stage::LoadDriver, || {
        match cached_driver() {
            Ok(driver) => {
                let detail = format!("loaded {}", driver.path);
                Ok(Done::pass(Ok(driver), detail))
            }
            Err(e) => {
                let detail = e.to_string();
                // Recorded as a failed stage; the error itself is kept for the summary.
                Ok(Done {
                    value: Err(e),
                    detail,
                    status: CheckStatus::Fail,
                    error: None,
                })
            }
        }
    });
    // The stage records a failure to load as its own failed check and
    // always returns, so there is a result to match.
    let Some(loaded) = loaded else {
        return Err(NoGpu::DriverNotFound);
    };
    match loaded {
        Ok(driver) => {
            progress.update(|r| {
                r.driver.library_path = Some(driver.path.clone());
                r.driver.missing_optional_symbols = driver
                    .api
                    .missing_optional()
                    .into_iter()
                    .map(String::from)
                    .collect();
            });
            Ok(driver)
        }
        Err(e) => Err(no_driver(progress, e)),
    }
}

/// Why the driver could not be loaded, recorded in the report.
fn no_driver(progress: &Progress, e: LoadError) -> NoGpu {
    let failure = match &e {
        LoadError::NotFound { .. } => DriverLoadFailure::NotFound,
        LoadError::Unloadable { .. } => DriverLoadFailure::Unloadable,
        LoadError::MissingSymbols { .. } => DriverLoadFailure::MissingSymbols,
    };
    progress.update(|r| r.driver.load_failure = Some(failure));
    match e {
        LoadError::NotFound { .. } => NoGpu::DriverNotFound,
        LoadError::Unloadable { .. } => NoGpu::DriverBroken(e.to_string()),
        LoadError::MissingSymbols { path, missing } => {
            progress.update(|r| {
                r.driver.library_path = Some(path.clone());
                r.driver.missing_symbols.clone_from(&missing);
            });
            NoGpu::DriverTooOld { path, missing }
        }
    }
}

/// cuDriverGetVersion, cuInit and cuDeviceGetCount: the number of GPUs this
/// process sees, or why it sees none.
pub(super) fn initialise(progress: &Progress, driver: &Driver) -> Result<u32, NoGpu> {
    if let Some(v) = progress.stage(Scope::Machine, Stage::DriverVersion, || {
        let v = driver.version()?;
        Ok(Done::pass(
            v,
            format!("driver supports CUDA {}", cuda_version(v)),
        ))
    }) {
        progress.update(|r| {
            r.driver.cuda_version = Some(cuda_version(v));
            r.driver.cuda_version_raw = Some(v);
        });
    }
    let initialised = progress.stage(Scope::Machine, Stage::CuInit, || {
        driver.init()?;
        Ok(Done::pass((), "driver initialised"))
    });
    if initialised.is_none() {
        let error = progress.update(|r| {
            r.checks
                .last()
                .map(|c| c.detail.clone())
                .unwrap_or_default()
        });
        return Err(NoGpu::InitRefused(error));
    }
    let Some(count) = progress.stage(Scope::Machine, Stage::Enumerate, || {
        let n = driver.device_count()?;
        Ok(Done::pass(n, format!("{n} GPU(s) visible to this process")))
    }) else {
        return Err(NoGpu::CountFailed);
    };
    progress.update(|r| r.driver.device_count = Some(count));
    if count == 0 {
        return Err(NoGpu::NoDevice);
    }
    Ok(count)
}

/// "12.4" from 12040.
pub(super) fn cuda_version(raw: i32) -> String {
    cuda::CudaVersion::from_driver(raw).map_or_else(|| raw.to_string(), |v| v.to_string())
}

/// Adds device `ordinal` to the report with what the driver says of it.
pub(super) fn identify(
    driver: &Driver,
    progress: &Progress,
    ordinal: u32,
) -> Option<cuda::CuDevice> {
    let slot = progress.update(|r| {
        r.devices.push(DeviceReport::new(ordinal));
        r.devices.len() - 1
    });
    let found = progress.stage(Scope::Device(slot), Stage::Identify, || {
        let dev = driver.device(ordinal)?;
        let name = driver.device_name(dev)?;
        let identity = driver.device_uuid(dev)?;
        let pci = driver.device_pci_bus_id(dev)?;
        let major =
            driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor =
            driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let sms = driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let clock_khz = driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)?;
        let total = driver.device_total_memory(dev)?;
        let uuid = identity.uuid;
        let detail = match &identity.mig_parent {
            Some(gpu) => format!(
                "{name}, {uuid} (a MIG instance of {gpu}), compute capability {major}.{minor}"
            ),
            None => format!("{name}, {uuid}, compute capability {major}.{minor}"),
        };
        progress.update(|r| {
            let d = &mut r.devices[slot];
            d.name = Some(name);
            d.uuid = Some(uuid);
            d.mig_parent_uuid = identity.mig_parent;
            d.pci_bus_id = Some(pci);
            d.compute_capability = Some(format!("{major}.{minor}"));
            d.multiprocessors = Some(sms.max(0) as u32);
            d.clock_mhz = Some((clock_khz.max(0) / 1000) as u32);
            d.memory_total_bytes = Some(total);
        });
        Ok(Done::pass(dev, detail))
    });
    if found.is_none() {
        progress.update(|r| r.devices[slot].status = DeviceStatus::Fail);
    }
    found
}

/// Resolves `--devices` against the enumerated devices; slots to probe.
pub(super) fn select(progress: &Progress, selection: &Selection) -> Vec<usize> {
    let devices: Vec<(u32, Option<String>, Option<String>)> = progress.update(|r| {
        r.devices
            .iter()
            .map(|d| (d.index, d.uuid.clone(), d.mig_parent_uuid.clone()))
            .collect()
    });
    let Selection::List(list) = selection else {
        return (0..devices.len()).collect();
    };
    let mut slots = Vec::new();
    let mut unknown = Vec::new();
    for selector in list {
        let found: Vec<usize> = devices
            .iter()
            .enumerate()
            .filter(|(_, (index, uuid, parent))| match selector {
                Selector::Index(i) => index == i,
                Selector::Uuid(prefix) => uuid
                    .as_deref()
                    .is_some_and(|u| u.starts_with(prefix.as_str())),
                // CUDA does not say which GPU and compute instance a MIG
                // device is, only its parent GPU: the entry matches when its
                // GPU has exactly one instance here (CUDA enumerates one MIG
                // device per process: NVIDIA MIG User Guide, "CUDA Device
                // Enumeration").
                Selector::MigInstance { gpu, .. } => parent.as_deref() == Some(gpu.as_str()),
            })
            .map(|(slot, _)| slot)
            .collect();
        match found.as_slice() {
            [slot] => {
                if !slots.contains(slot) {
                    slots.push(*slot);
                }
            }
            _ => unknown.push(selector.to_string()),
        }
    }
    let visible = devices.len();
    progress.stage(Scope::Machine, Stage::SelectDevices, || {
        if unknown.is_empty() {
            Ok(Done::pass(
                (),
                format!("probing {} of {visible} visible GPU(s)", slots.len()),
            ))
        } else {
            Err(Failed::new(format!(
                "--devices names {} but this process sees {visible} GPU(s) (indices 0-{})",
                unknown.join(", "),
                visible.saturating_sub(1)
            )))
        }
    });
    slots
}

/// Edge of the GEMM timed to project the CPU reference's time.
const CALIBRATION: u32 = 256;

/// Whether the CPU reference product of an n x n x n GEMM can be made in
/// three quarters of what is left before `deadline`, projected from a
/// 256³ product on the same threads (larger products run at least as fast
/// per flop, so the projection errs long). When it cannot, the
/// `cpu_reference` check fails saying so, before any input is made or any
/// GPU is touched.
pub(super) fn cpu_reference_fits(
    progress: &Progress,
    n: u32,
    threads: usize,
    deadline: Option<Instant>,
) -> bool {
    let Some(deadline) = deadline else {
        return true;
    };
    if n <= CALIBRATION {
        return true;
    }
    let edge = CALIBRATION as usize;
    let ones = vec![1f32; edge * edge];
    let started = Instant::now();
    let _ = cpu::product(edge, edge, edge, &ones, &ones, threads);
    let projected = started
        .elapsed()
        .mul_f64((f64::from(n) / f64::from(CALIBRATION)).powi(3));
    let left = deadline
        .saturating_duration_since(Instant::now())
        .mul_f64(0.75);
    if projected <= left {
        return true;
    }
    progress.stage(
        Scope::Machine,
        Stage::CpuReference,
        || -> Result<Done<()>, Failed> {
            Err(Failed::new(format!(
                "not run: the CPU reference of the {n}x{n}x{n} matmul would take about {:.1} s on \
             {threads} thread(s), and three quarters of what is left before the deadline is \
             {:.1} s; use a smaller --size or a longer --timeout",
                projected.as_secs_f64(),
                left.as_secs_f64()
            )))
        },
    );
    false
}

/// The CPU product the GPUs' results are checked against, published in
/// `reference`; computed beside the GPUs' stages and not timed.
pub(super) fn cpu_reference(
    progress: &Progress,
    inputs: &Inputs,
    threads: usize,
    reference: &std::sync::OnceLock<Reference>,
) -> Option<Duration> {
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let (product, took) = progress.stage(Scope::Machine, Stage::CpuReference, || {
        let started = Instant::now();
        let product = cpu::product(m, n, k, &inputs.a, &inputs.b, threads);
        let took = started.elapsed();
        let detail = format!(
            "the product on {threads} thread(s) in {:.3} ms",
            took.as_secs_f64() * 1e3
        );
        Ok(Done::pass((product, took), detail))
    })?;
    // The sample changes every run: it is drawn from the run's seed, itself
    // fresh unless --seed fixed it.
    let sample_seed = inputs.seed ^ SAMPLE_SALT;
    // The only publication in this run, so `set` cannot find it taken.
    let _ = reference.set(Reference::new(inputs, product, sample_seed));
    Some(took)
}

/// The CPU baseline, timed while no GPU stage runs: a warm-up run and at
/// least one timed run, if both fit in half of what is left before
/// `deadline` (`estimate` is one run's time, from the product).
pub(super) fn cpu_baseline(
    progress: &Progress,
    inputs: &Inputs,
    repeat: Repeat,
    cpus: cpu::Cpus,
    estimate: Duration,
    deadline: Option<Instant>,
) {
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let budget = deadline.map(|d| d.saturating_duration_since(Instant::now()) / 2);
    if let Some(budget) = budget.filter(|b| *b < 2 * estimate) {
        progress.skip(
            Scope::Machine,
            Stage::CpuBaseline,
            format!(
                "not timed: a warm-up and one run take about {:.0} ms, and half of what is left \
                 before the deadline is {:.0} ms; no speedup_vs_cpu",
                2.0 * estimate.as_secs_f64() * 1e3,
                budget.as_secs_f64() * 1e3
            ),
        );
        return;
    }
    let until = budget.map(|b| (Instant::now() + b, estimate));
    let measured = progress.stage(Scope::Machine, Stage::CpuBaseline, || {
        let measured = cpu::measure(m, n, k, &inputs.a, &inputs.b, cpus.count, repeat, until);
        let gflops = cpu::gflops(m, n, k, measured.mean);
        let detail = format!(
            "{} on {} thread(s) ({} CPU(s) granted, set by {}), {:.3} ms per run, timed with no GPU stage running",
            flops(gflops),
            measured.threads,
            cpus.count,
            limit_name(cpus.limited_by),
            measured.mean.as_secs_f64() * 1e3
        );
        Ok(Done::pass(measured, detail))
    });
    let Some(measured) = measured else { return };
    progress.update(|r| {
        r.cpu = Some(CpuReport {
            library: cpu::LIBRARY.into(),
            threads: measured.threads as u32,
            available_cpus: cpus.count as u32,
            threads_limited_by: Some(cpus.limited_by),
            iterations: measured.iterations,
            time_ms: measured.mean.as_secs_f64() * 1e3,
            gflops: cpu::gflops(m, n, k, measured.mean),
        });
    });
}

fn limit_name(limit: CpuLimit) -> &'static str {
    match limit {
        CpuLimit::Affinity => "the affinity mask",
        CpuLimit::CgroupCpuMax => "the cgroup's cpu.max",
        CpuLimit::CgroupCfsQuota => "the cgroup's cpu.cfs_quota_us",
        CpuLimit::Platform => "the platform",
    }
}
