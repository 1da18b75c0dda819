//! The stages that concern the whole machine rather than one GPU: loading
//! NVML and the CUDA driver, identifying and selecting devices, reading
//! telemetry, and the CPU reference.
use std::sync::Arc;

use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::ending::NoGpu;
use super::{Selection, Selector};
use crate::checks::progress::{Done, Failed, Progress, Scope};
use crate::cuda::{self, Driver, LoadError};
use crate::report::{
    CheckStatus, ComputeCapability, DeviceReport, DeviceStatus, DriverLoadFailure, NotRun,
};
use crate::stage::Stage;
use crate::telemetry;

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
                // The fabric changes as the fabric manager works: read at
                // every probe, also before (and whether or not) CUDA starts.
                let fabric = loaded.fabric();
                progress.update(|r| {
                    r.nvml = loaded.info.clone();
                    r.nvml.fabric = fabric;
                });
                Ok(Done::pass(Some(loaded), detail))
            }
            Err(info) => {
                let detail = format!(
                    "no NVML telemetry: {} ({})",
                    info.status,
                    info.error.as_deref().unwrap_or("")
                );
                progress.update(|r| r.nvml = *info);
                Ok(Done::skip(None, NotRun::Unavailable, detail, None))
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
                    not_run: None,
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
            // No driver returns a negative attribute; one would be unknown.
            d.compute_capability = u32::try_from(major)
                .ok()
                .zip(u32::try_from(minor).ok())
                .map(|(major, minor)| ComputeCapability::new(major, minor));
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
