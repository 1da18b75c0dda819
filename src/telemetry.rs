//! NVML: the driver's view of each GPU (temperature, power, clocks, PCIe
//! link, ECC and row remapping, throttling) and of the machine.
//!
//! NVML is loaded at run time through nvml-wrapper (libnvidia-ml.so.1 /
//! nvml.dll). A missing library is a finding, not an error: the container
//! toolkit injects it only with the `utility` capability. A reading a GPU
//! does not support is reported as `not_supported`, never as zero. NVML
//! devices are matched to CUDA devices by UUID, then by PCI bus id; NVML sees
//! every GPU given to the container, so a CUDA process restricted by
//! CUDA_VISIBLE_DEVICES seeing fewer is normal.
use std::ffi::{c_uint, c_void};
use std::sync::OnceLock;

use nvml_wrapper::enum_wrappers::device::{
    Clock, ComputeMode as NvmlComputeMode, EccCounter, MemoryError, TemperatureSensor,
};
use nvml_wrapper::error::{Bits, NvmlError};
use nvml_wrapper::{Device, Nvml};

use crate::report::{
    ComputeMode, FabricState, GpuFabric, LinkState, NvmlInfo, NvmlStatus, Reading, RecoveryAction,
    Telemetry, ThrottleReason, Unavailable,
};

mod counters;
mod device;
pub use counters::{Before, Counts};
pub use device::{find, NvmlDevice};

/// NVML, initialised once per process (watch mode probes repeatedly).
pub struct Loaded {
    pub nvml: Nvml,
    pub info: NvmlInfo,
    /// nvmlDeviceGetRemappedRows, resolved once (nvml-wrapper does not wrap
    /// it); `None` on drivers that predate it.
    remapped_rows: Option<RemappedRows>,
    /// nvmlDeviceGetGpuFabricInfoV (R550 on) and nvmlDeviceGetGpuFabricInfo
    /// (R535 on), resolved once likewise.
    fabric_info: FabricInfoCalls,
    /// nvmlDeviceGetSramEccErrorStatus (R535 on), resolved once likewise.
    sram_ecc: Option<counters::SramEccStatus>,
    /// nvmlDeviceGetUnrepairableMemoryFlag_v1 (R590 on), likewise.
    unrepairable: Option<counters::UnrepairableFlag>,
    // Keeps the calls above valid.
    _lib: Option<libloading::Library>,
}

type RemappedRows =
    unsafe extern "C" fn(*mut c_void, *mut c_uint, *mut c_uint, *mut c_uint, *mut c_uint) -> i32;

/// nvml.h's nvmlGpuFabricInfo_t (v1, nvmlDeviceGetGpuFabricInfo).
#[repr(C)]
#[derive(Default)]
struct RawFabricV1 {
    cluster_uuid: [u8; 16],
    status: i32,
    clique_id: c_uint,
    state: u8,
}

/// nvml.h's nvmlGpuFabricInfo_v2_t (nvmlDeviceGetGpuFabricInfoV): v1 with a
/// version first and the health mask last.
#[repr(C)]
#[derive(Default)]
struct RawFabricV2 {
    version: c_uint,
    cluster_uuid: [u8; 16],
    status: i32,
    clique_id: c_uint,
    state: u8,
    health_mask: c_uint,
}

/// nvml.h's NVML_STRUCT_VERSION(GpuFabricInfo, 2): the struct's size with
/// the version in the top byte.
const FABRIC_INFO_V2: c_uint = size_of::<RawFabricV2>() as c_uint | (2 << 24);

type FabricInfoV = unsafe extern "C" fn(*mut c_void, *mut RawFabricV2) -> i32;
type FabricInfoV1 = unsafe extern "C" fn(*mut c_void, *mut RawFabricV1) -> i32;

#[derive(Default)]
struct FabricInfoCalls {
    v2: Option<FabricInfoV>,
    v1: Option<FabricInfoV1>,
}

/// NVML_FI_DEV_GET_GPU_RECOVERY_ACTION (nvml.h, drivers from R565).
const FI_GPU_RECOVERY_ACTION: u32 = 230;

/// The NVML library to load: its SONAME on Linux; on Windows nvml.dll where
/// a container has it (System32, or the driver package's folder in the
/// host driver store: `environment::windows_nvml_dll`), else by name.
fn library() -> std::ffi::OsString {
    if cfg!(windows) {
        crate::environment::windows_nvml_dll(&crate::environment::root())
            .map_or_else(|| "nvml.dll".into(), std::path::PathBuf::into_os_string)
    } else {
        "libnvidia-ml.so.1".into()
    }
}

/// Takes another reference to the NVML nvml-wrapper loaded, for what the
/// wrapper does not offer: the file's path and nvmlDeviceGetRemappedRows.
fn reopen() -> Option<libloading::Library> {
    // SAFETY: nvml-wrapper has already loaded this library, so its
    // initialisers have run; dlopen only takes another reference to it.
    unsafe { libloading::Library::new(library()) }.ok()
}

/// Loads and initialises NVML, or says why not. Never panics: nvml-wrapper
/// returns errors for a missing library or symbol.
pub fn load() -> Result<&'static Loaded, Box<NvmlInfo>> {
    static NVML: OnceLock<Result<Loaded, Box<NvmlInfo>>> = OnceLock::new();
    NVML.get_or_init(init).as_ref().map_err(Clone::clone)
}

fn init() -> Result<Loaded, Box<NvmlInfo>> {
    let library = library();
    match Nvml::builder().lib_path(&library).init() {
        Ok(nvml) => {
            let lib = reopen();
            // SAFETY: `RemappedRows` is nvml.h's prototype of
            // nvmlDeviceGetRemappedRows (the device handle as an opaque
            // pointer), and the copied pointer is only called while `Loaded`
            // keeps `lib` loaded.
            let remapped_rows = lib
                .as_ref()
                .and_then(|l| unsafe { l.get::<RemappedRows>(b"nvmlDeviceGetRemappedRows\0") }.ok())
                .map(|f| *f);
            // SAFETY: `FabricInfoV` and `FabricInfoV1` are nvml.h's
            // prototypes of the two calls (the device handle as an opaque
            // pointer, the structs laid out as nvml.h's: see RawFabricV1/V2),
            // called only while `Loaded` keeps `lib` loaded.
            let fabric_info = FabricInfoCalls {
                v2: lib.as_ref().and_then(|l| {
                    unsafe { l.get::<FabricInfoV>(b"nvmlDeviceGetGpuFabricInfoV\0") }
                        .ok()
                        .map(|f| *f)
                }),
                v1: lib.as_ref().and_then(|l| {
                    unsafe { l.get::<FabricInfoV1>(b"nvmlDeviceGetGpuFabricInfo\0") }
                        .ok()
                        .map(|f| *f)
                }),
            };
            // SAFETY: `SramEccStatus` is nvml.h's prototype of the call
            // (see counters.rs), called only while `Loaded` keeps `lib`.
            let sram_ecc = lib.as_ref().and_then(|l| {
                unsafe { l.get::<counters::SramEccStatus>(b"nvmlDeviceGetSramEccErrorStatus\0") }
                    .ok()
                    .map(|f| *f)
            });
            // SAFETY: `UnrepairableFlag` is nvml.h's prototype of the call
            // (see counters.rs), called only while `Loaded` keeps `lib`.
            let unrepairable = lib.as_ref().and_then(|l| {
                unsafe {
                    l.get::<counters::UnrepairableFlag>(b"nvmlDeviceGetUnrepairableMemoryFlag_v1\0")
                }
                .ok()
                .map(|f| *f)
            });
            let mut info = NvmlInfo {
                status: NvmlStatus::Loaded,
                library_path: lib.as_ref().and_then(library_path),
                driver_version: nvml.sys_driver_version().ok(),
                nvml_version: nvml.sys_nvml_version().ok(),
                ..NvmlInfo::default()
            };
            let count = nvml.device_count().unwrap_or(0);
            for index in 0..count {
                match nvml.device_by_index(index).and_then(|d| d.uuid()) {
                    Ok(uuid) => info.device_uuids.push(uuid),
                    Err(NvmlError::GpuLost) => info.lost_devices.push(index),
                    Err(_) => {}
                }
            }
            Ok(Loaded {
                nvml,
                info,
                remapped_rows,
                fabric_info,
                sram_ecc,
                unrepairable,
                _lib: lib,
            })
        }
        // Absent, by the OS's own answer (cuda::driver::is_not_found); a
        // library that is there but cannot be loaded is a failed init.
        Err(NvmlError::LibloadingError(e)) if crate::cuda::driver::is_not_found(&e) => {
            Err(Box::new(NvmlInfo {
                status: NvmlStatus::NotFound,
                error: Some(e.to_string()),
                ..NvmlInfo::default()
            }))
        }
        Err(e) => Err(Box::new(NvmlInfo {
            status: NvmlStatus::InitFailed,
            error: Some(e.to_string()),
            error_code: nvml_code(e),
            library_path: reopen().as_ref().and_then(library_path),
            ..NvmlInfo::default()
        })),
    }
}

/// The file libnvidia-ml was loaded from, as the loader resolved it.
fn library_path(lib: &libloading::Library) -> Option<String> {
    // SAFETY: only the symbol's address is used, never called, so its type
    // does not matter.
    let symbol = unsafe { lib.get::<unsafe extern "C" fn()>(b"nvmlInit_v2\0") }.ok()?;
    crate::cuda::driver::loaded_path(*symbol as usize)
}

/// The NVML return code behind an error, for diagnoses: nvml-wrapper's own
/// mapping back to nvmlReturn_t (nvml.h). `None` for the wrapper's errors
/// that no NVML call returned (a missing library or symbol, bad UTF-8).
#[must_use]
pub fn nvml_code(e: NvmlError) -> Option<i32> {
    match e {
        NvmlError::Utf8Error(_)
        | NvmlError::NulError(_)
        | NvmlError::LibloadingError(_)
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::StringTooLong { .. }
        | NvmlError::IncorrectBits(_)
        | NvmlError::SetReleaseFailed
        | NvmlError::GetPciInfoFailed
        | NvmlError::PciInfoToCFailed => None,
        nvml => i32::try_from(u32::from(nvml)).ok(),
    }
}

fn reading<T>(r: Result<T, NvmlError>) -> Reading<T> {
    match r {
        Ok(v) => Reading::Value(v),
        Err(NvmlError::NotSupported) => Reading::Unavailable(Unavailable::NotSupported),
        Err(NvmlError::NoPermission) => Reading::Unavailable(Unavailable::NoPermission),
        Err(NvmlError::GpuLost) => Reading::Unavailable(Unavailable::GpuLost),
        Err(_) => Reading::Unavailable(Unavailable::Error),
    }
}

/// A PCIe link's current generation and width.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub generation: Reading<u32>,
    pub width: Reading<u32>,
}

/// The PCIe link as it is now (nvmlDeviceGetCurrPcieLinkGeneration/Width:
/// the current state, which drops when the GPU idles).
#[must_use]
pub fn pcie_link(device: &Device<'_>) -> Link {
    Link {
        generation: reading(device.current_pcie_link_gen()),
        width: reading(device.current_pcie_link_width()),
    }
}

/// What a sustained run (`burn`) reads of a GPU at each interval: a few
/// cheap calls, each `None` when NVML cannot say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub sm_clock_mhz: Option<u32>,
    pub sm_clock_max_mhz: Option<u32>,
    pub temperature_celsius: Option<u32>,
    pub power_draw_watts: Option<f64>,
    /// nvmlClocksThrottleReasons, as `Telemetry::throttle_reasons`
    /// (empty: none); `None` when NVML cannot say.
    pub throttle_reasons: Option<Vec<ThrottleReason>>,
    /// The volatile ECC counters (since the driver loaded).
    pub ecc_corrected_volatile: Option<u64>,
    pub ecc_uncorrected_volatile: Option<u64>,
}

/// Reads a `Sample` of `device`.
#[must_use]
pub fn sample(device: &Device<'_>) -> Sample {
    Sample {
        sm_clock_mhz: device.clock_info(Clock::SM).ok(),
        sm_clock_max_mhz: device.max_clock_info(Clock::SM).ok(),
        temperature_celsius: device.temperature(TemperatureSensor::Gpu).ok(),
        power_draw_watts: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        throttle_reasons: throttle_reasons(device).ok(),
        ecc_corrected_volatile: device
            .total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile)
            .ok(),
        ecc_uncorrected_volatile: device
            .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
            .ok(),
    }
}

/// What gpuprobe reads of a GPU while its timed work runs: the PCIe link,
/// and the SM clock, its reasons and the power draw that the matmul's
/// efficiency is judged by (six cheap calls: no ECC counters, no
/// temperature, so a poll costs the GPU nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct AtWork {
    pub link: Link,
    pub sm_clock_mhz: Option<u32>,
    pub power_draw_watts: Option<f64>,
    /// As `Sample::throttle_reasons`.
    pub throttle_reasons: Option<Vec<ThrottleReason>>,
}

/// Reads an `AtWork` of `device`.
#[must_use]
pub fn at_work(device: &Device<'_>) -> AtWork {
    AtWork {
        link: pcie_link(device),
        sm_clock_mhz: device.clock_info(Clock::SM).ok(),
        power_draw_watts: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        throttle_reasons: throttle_reasons(device).ok(),
    }
}

impl Link {
    /// The link at work, from readings taken while gpuprobe's work had run
    /// long enough for the link to ramp up: the generation from the highest
    /// reading (it follows the performance state, which only rises with
    /// load), the width from the lowest (a width that drops under load is
    /// the fault). A getter NVML never answered keeps the first reading's
    /// reason; `None` without readings.
    #[must_use]
    pub fn at_work<'a>(readings: impl IntoIterator<Item = &'a Link>) -> Option<Link> {
        let mut readings = readings.into_iter();
        let mut link = readings.next()?.clone();
        for r in readings {
            link.generation = pick(&link.generation, &r.generation, Ord::max);
            link.width = pick(&link.width, &r.width, Ord::min);
        }
        Some(link)
    }
}

/// `better` of two readings where both have a value, else the one that has.
fn pick(a: &Reading<u32>, b: &Reading<u32>, better: fn(u32, u32) -> u32) -> Reading<u32> {
    match (a, b) {
        (Reading::Value(x), Reading::Value(y)) => Reading::Value(better(*x, *y)),
        (Reading::Value(_), _) => a.clone(),
        _ => b.clone(),
    }
}

/// The PCIe link at its best: the highest generation and widest link the
/// GPU and its slot support (nvmlDeviceGetMaxPcieLinkGeneration/Width).
#[must_use]
pub fn pcie_link_max(device: &Device<'_>) -> Link {
    Link {
        generation: reading(device.max_pcie_link_gen()),
        width: reading(device.max_pcie_link_width()),
    }
}

/// NVML's memory clock now, in MHz (nvmlDeviceGetClockInfo, memory).
#[must_use]
pub fn memory_clock(device: &Device<'_>) -> Option<u32> {
    device.clock_info(Clock::Memory).ok()
}

/// NVML's (free, used) device memory in bytes (nvmlDeviceGetMemoryInfo_v2),
/// which needs no CUDA context; `None` when NVML cannot say.
#[must_use]
pub fn memory(device: &Device<'_>) -> Option<(u64, u64)> {
    device.memory_info().ok().map(|m| (m.free, m.used))
}

/// The processes NVML lists with a compute context on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processes {
    pub count: u32,
    /// The device memory of those whose memory NVML could read.
    pub bytes: u64,
    /// Whether NVML could not read some process's memory
    /// (NVML_VALUE_NOT_AVAILABLE, as under WDDM): `bytes` is then a floor.
    pub some_unknown: bool,
}

/// How many processes hold a compute context on the GPU and the device
/// memory they hold (nvmlDeviceGetComputeRunningProcesses_v3, drivers from
/// 510; needs no CUDA context).
pub fn compute_processes(device: &Device<'_>) -> Result<Processes, NvmlError> {
    let listed = device.running_compute_processes()?;
    let mut p = Processes {
        count: u32::try_from(listed.len()).unwrap_or(u32::MAX),
        bytes: 0,
        some_unknown: false,
    };
    for process in &listed {
        match process.used_gpu_memory {
            nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => p.bytes += b,
            nvml_wrapper::enums::device::UsedGpuMemory::Unavailable => p.some_unknown = true,
        }
    }
    Ok(p)
}

/// The reasons NVML holds the clocks down for
/// (nvmlDeviceGetCurrentClocksThrottleReasons), every bit it sets kept:
/// nvml-wrapper's `current_throttle_reasons` drops the bits it does not
/// name (`from_bits_truncate`), so the strict call is made, whose
/// `IncorrectBits` error carries the whole mask when NVML sets such a bit.
fn throttle_reasons(device: &Device<'_>) -> Result<Vec<ThrottleReason>, NvmlError> {
    let bits = match device.current_throttle_reasons_strict() {
        Ok(named) => named.bits(),
        Err(NvmlError::IncorrectBits(Bits::U64(all))) => all,
        Err(e) => return Err(e),
    };
    Ok(ThrottleReason::from_bits(bits))
}

impl From<NvmlComputeMode> for ComputeMode {
    fn from(mode: NvmlComputeMode) -> Self {
        match mode {
            NvmlComputeMode::Default => ComputeMode::Default,
            NvmlComputeMode::ExclusiveThread => ComputeMode::ExclusiveThread,
            NvmlComputeMode::Prohibited => ComputeMode::Prohibited,
            NvmlComputeMode::ExclusiveProcess => ComputeMode::ExclusiveProcess,
        }
    }
}

impl<T: Clone> Reading<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Reading<U> {
        match self {
            Reading::Value(v) => Reading::Value(f(v)),
            Reading::Unavailable(u) => Reading::Unavailable(u),
        }
    }
}

/// The health mask's "degraded bandwidth" field
/// (NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_DEGRADED_BW 0, width 2: 1 degraded,
/// 2 not degraded, 0 not supported).
fn bandwidth_degraded(mask: u32) -> Option<bool> {
    match mask & 0b11 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

/// What the driver says the GPU needs (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION,
/// through nvmlDeviceGetFieldValues). Drivers before R565 do not know the
/// field: their answer for it (NOT_SUPPORTED or INVALID_ARGUMENT in the
/// field's own return) is `not_supported`.
fn recovery_action(device: &Device<'_>) -> Reading<RecoveryAction> {
    use nvml_wrapper::enums::device::SampleValue;
    use nvml_wrapper::structs::device::FieldId;
    let sample = device
        .field_values_for(&[FieldId(FI_GPU_RECOVERY_ACTION)])
        .and_then(|mut v| v.pop().ok_or(NvmlError::Unknown))
        .and_then(|s| s.and_then(|s| s.value));
    let value = match sample {
        Ok(SampleValue::U32(v)) => Ok(v),
        Ok(SampleValue::U64(v)) => u32::try_from(v).map_err(|_| NvmlError::Unknown),
        Ok(SampleValue::I64(v)) => u32::try_from(v).map_err(|_| NvmlError::Unknown),
        Ok(_) => Err(NvmlError::Unknown),
        Err(NvmlError::InvalidArg) => Err(NvmlError::NotSupported),
        Err(e) => Err(e),
    };
    reading(value.map(RecoveryAction::from_value))
}

/// Persistence mode exists only in the Linux driver.
#[cfg(unix)]
fn persistence_mode(device: &Device<'_>) -> Reading<bool> {
    reading(device.is_in_persistent_mode())
}

#[cfg(not(unix))]
fn persistence_mode(_device: &Device<'_>) -> Reading<bool> {
    Reading::Unavailable(Unavailable::NotSupported)
}

impl Loaded {
    /// Reads every telemetry field of one device: each from the device's
    /// own handle, or its GPU's where a MIG device answers NOT_SUPPORTED
    /// (`NvmlDevice::reading`), so a MIG instance reports its GPU's
    /// sensors and never a reading missing for it alone.
    #[must_use]
    pub fn read(&self, device: &NvmlDevice<'_>) -> Telemetry {
        let ecc_mode = device.reading(|d| reading(d.is_ecc_enabled()));
        let ecc = ecc_mode.clone().map(|e| e.currently_enabled);
        let mig = device.reading(|d| reading(d.mig_mode()));
        let remapped = device.reading(|d| self.remapped_rows(d));
        let processes = match device.own() {
            Some(own) => reading(compute_processes(own)),
            // The GPU's list would count other instances' processes.
            None => Reading::Unavailable(Unavailable::NotSupported),
        };
        let utilization = device.reading(|d| reading(d.utilization_rates()));
        let watts = |mw: u32| f64::from(mw) / 1000.0;
        Telemetry {
            temperature_celsius: device.reading(|d| reading(d.temperature(TemperatureSensor::Gpu))),
            power_draw_watts: device.reading(|d| reading(d.power_usage().map(watts))),
            power_limit_watts: device.reading(|d| reading(d.enforced_power_limit().map(watts))),
            power_default_limit_watts: device
                .reading(|d| reading(d.power_management_limit_default().map(watts))),
            utilization_gpu_percent: utilization.clone().map(|u| u.gpu),
            utilization_memory_percent: utilization.map(|u| u.memory),
            sm_clock_mhz: device.reading(|d| reading(d.clock_info(Clock::SM))),
            sm_clock_max_mhz: device.reading(|d| reading(d.max_clock_info(Clock::SM))),
            memory_clock_mhz: device.reading(|d| reading(d.clock_info(Clock::Memory))),
            memory_clock_max_mhz: device.reading(|d| reading(d.max_clock_info(Clock::Memory))),
            memory_bus_width_bits: device.reading(|d| reading(d.memory_bus_width())),
            pcie_generation: device.reading(|d| reading(d.current_pcie_link_gen())),
            pcie_generation_max: device.reading(|d| reading(d.max_pcie_link_gen())),
            pcie_width_lanes: device.reading(|d| reading(d.current_pcie_link_width())),
            pcie_width_max_lanes: device.reading(|d| reading(d.max_pcie_link_width())),
            // Read after gpuprobe's work, or with none (`list`); the probe
            // puts its reading under load in its place (checks/pipeline.rs).
            pcie_link_state: Some(LinkState::Idle),
            ecc_uncorrected_volatile: device.reading(|d| {
                reading(d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile))
            }),
            ecc_uncorrected_aggregate: device.reading(|d| {
                reading(d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate))
            }),
            ecc_corrected_volatile: device.reading(|d| {
                reading(d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile))
            }),
            ecc_enabled: ecc,
            retired_pages_pending: device.reading(|d| reading(d.are_pages_pending_retired())),
            remapped_rows_pending: remapped.clone().map(|r| r.2),
            remapped_rows_failure: remapped.clone().map(|r| r.3),
            remapped_rows_uncorrectable: remapped.map(|r| r.1),
            throttle_reasons: device.reading(|d| reading(throttle_reasons(d))),
            persistence_mode: device.reading(persistence_mode),
            compute_mode: device.reading(|d| reading(d.compute_mode().map(ComputeMode::from))),
            mig_enabled: mig.clone().map(|m| m.current == 1),
            mig_pending_enabled: mig.map(|m| m.pending == 1),
            ecc_pending_enabled: ecc_mode.map(|e| e.pending_enabled),
            applications_clock_mhz: device
                .reading(|d| reading(d.applications_clock(Clock::Graphics))),
            applications_clock_default_mhz: device
                .reading(|d| reading(d.default_applications_clock(Clock::Graphics))),
            applications_memory_clock_mhz: device
                .reading(|d| reading(d.applications_clock(Clock::Memory))),
            applications_memory_clock_default_mhz: device
                .reading(|d| reading(d.default_applications_clock(Clock::Memory))),
            recovery_action: device.reading(recovery_action),
            unrepairable_memory: device.reading(|d| self.unrepairable_memory(d)),
            compute_processes: processes.clone().map(|p| p.count),
            // A floor when some process's memory is unknown: reported as
            // not readable then, never as a smaller number.
            compute_processes_memory_bytes: match processes {
                Reading::Value(p) if p.some_unknown => {
                    Reading::Unavailable(crate::report::Unavailable::NotSupported)
                }
                other => other.map(|p| p.bytes),
            },
        }
    }

    /// The fabric registration of every GPU NVML sees that is on an NVLink
    /// fabric (NVSwitch systems): read anew at each call, since it changes
    /// as the fabric manager works; empty where no GPU is on one.
    #[must_use]
    pub fn fabric(&self) -> Vec<GpuFabric> {
        let count = self.nvml.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|index| {
                let device = self.nvml.device_by_index(index).ok()?;
                let mut fabric = self.fabric_info(&device)?;
                fabric.index = index;
                fabric.uuid = device.uuid().ok();
                Some(fabric)
            })
            .collect()
    }

    /// One GPU's fabric registration: the v2 call where the driver has it
    /// (with the health mask), else v1; `None` where the GPU is on no
    /// fabric (NVML_GPU_FABRIC_STATE_NOT_SUPPORTED), the call answers an
    /// error (NOT_SUPPORTED before Hopper), or the driver lacks both calls.
    fn fabric_info(&self, device: &Device<'_>) -> Option<GpuFabric> {
        // SAFETY: the raw handle of a device of this NVML, passed to NVML
        // below while the device (and `self`) live; never freed here.
        let handle: *mut c_void = unsafe { device.handle() }.cast();
        let (state, status, health_mask) = if let Some(f) = self.fabric_info.v2 {
            let mut raw = RawFabricV2 {
                version: FABRIC_INFO_V2,
                ..RawFabricV2::default()
            };
            // SAFETY: `f` is valid while `self` keeps the library loaded;
            // `handle` is a device of this NVML; `raw` is a live
            // nvmlGpuFabricInfo_v2_t with its version set, as the call asks.
            (unsafe { f(handle, &raw mut raw) } == 0).then_some((
                raw.state,
                raw.status,
                Some(raw.health_mask),
            ))?
        } else {
            let f = self.fabric_info.v1?;
            let mut raw = RawFabricV1::default();
            // SAFETY: as above, with a live nvmlGpuFabricInfo_t.
            (unsafe { f(handle, &raw mut raw) } == 0).then_some((raw.state, raw.status, None))?
        };
        let state = match state {
            1 => FabricState::NotStarted,
            2 => FabricState::InProgress,
            3 => FabricState::Completed,
            // 0, NVML_GPU_FABRIC_STATE_NOT_SUPPORTED: on no fabric.
            _ => return None,
        };
        Some(GpuFabric {
            index: 0,
            uuid: None,
            state,
            // "Must be checked only if state returns complete" (nvml.h).
            status: (state == FabricState::Completed).then_some(status),
            health_mask,
            bandwidth_degraded: health_mask.and_then(bandwidth_degraded),
        })
    }

    /// nvmlDeviceGetRemappedRows (Ampere and newer):
    /// (corrected, uncorrected, pending, failure).
    fn remapped_rows(&self, device: &Device<'_>) -> Reading<(u32, u32, bool, bool)> {
        let Some(f) = self.remapped_rows else {
            return Reading::Unavailable(Unavailable::NotSupported);
        };
        let (mut corrected, mut uncorrected, mut pending, mut failure) = (0, 0, 0, 0);
        // SAFETY: `f` is valid while `self` keeps the library loaded;
        // `device` is a handle of this NVML, initialised while `self` lives;
        // the four out-parameters are live locals of nvml.h's types.
        let code = unsafe {
            f(
                device.handle().cast(),
                &raw mut corrected,
                &raw mut uncorrected,
                &raw mut pending,
                &raw mut failure,
            )
        };
        match code {
            0 => Reading::Value((corrected, uncorrected, pending != 0, failure != 0)),
            3 => Reading::Unavailable(Unavailable::NotSupported),
            4 => Reading::Unavailable(Unavailable::NoPermission),
            15 => Reading::Unavailable(Unavailable::GpuLost),
            _ => Reading::Unavailable(Unavailable::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvml_wrapper::bitmasks::device::ThrottleReasons;

    #[test]
    fn the_link_at_work_takes_the_highest_generation_and_the_lowest_width() {
        let link = |g: Reading<u32>, w: Reading<u32>| Link {
            generation: g,
            width: w,
        };
        let lost = || Reading::Unavailable(Unavailable::GpuLost);
        assert_eq!(Link::at_work(&[]), None);
        let readings = [
            link(Reading::Value(1), Reading::Value(16)),
            link(Reading::Value(5), Reading::Value(8)),
            link(lost(), lost()),
            link(Reading::Value(4), Reading::Value(16)),
        ];
        assert_eq!(
            Link::at_work(&readings),
            Some(link(Reading::Value(5), Reading::Value(8)))
        );
        // A getter that never answered keeps the first reading's reason.
        assert_eq!(
            Link::at_work(&[
                link(lost(), Reading::Value(16)),
                link(lost(), Reading::Value(4))
            ]),
            Some(link(lost(), Reading::Value(4)))
        );
    }

    #[test]
    fn throttle_reasons_keep_their_report_names() {
        // The words docs/report.md promises are nvml-wrapper's flag names in
        // lower case, as the report wrote them before it had its own type;
        // the bits are the same nvml.h constants.
        let mut named = 0;
        for (name, flag) in ThrottleReasons::all().iter_names() {
            let reasons = ThrottleReason::from_bits(flag.bits());
            assert_eq!(reasons.len(), 1, "{name}");
            assert_eq!(reasons[0].word(), name.to_ascii_lowercase());
            named |= flag.bits();
        }
        assert_eq!(named, 0x1ff);
    }

    #[test]
    fn nvml_codes_are_nvml_h_numbers() {
        assert_eq!(nvml_code(NvmlError::LibRmVersionMismatch), Some(18));
        assert_eq!(nvml_code(NvmlError::NoPermission), Some(4));
        assert_eq!(nvml_code(NvmlError::Unknown), Some(999));
        assert_eq!(nvml_code(NvmlError::UnexpectedVariant(1234)), Some(1234));
        assert_eq!(nvml_code(NvmlError::SetReleaseFailed), None);
    }
}
