//! The fake libnvidia-ml.so.1: the NVML calls gpuprobe makes (through
//! nvml-wrapper), answering from the same scenario file as the fake libcuda.
//!
//! NVML sees every GPU given to the container; CUDA_VISIBLE_DEVICES does not
//! apply to it (it is a CUDA runtime setting), exactly as with the real one.
//!
//! Every `unsafe` block here dereferences a pointer the caller passed: an
//! out-parameter to write, or an input buffer, name or parameter array to
//! read. nvml.h requires the caller to pass valid pointers of the documented
//! size, as the real library does; the fake rejects null where the real one
//! does and, like it, trusts the caller for the rest.
#![allow(clippy::missing_safety_doc, non_snake_case)]

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr};
use std::sync::{Mutex, OnceLock};

use crate::scenario::{Device, DeviceNvml, Link, Scenario};

mod counters;
mod mig;
use mig::{decode, find_mig_device, mig_gpu_lacks, own_instance_of, MIG_HANDLE_FIELDS};

pub(crate) type NvmlReturn = c_int;
const SUCCESS: NvmlReturn = 0;
const UNINITIALIZED: NvmlReturn = 1;
const INVALID_ARGUMENT: NvmlReturn = 2;
const NOT_SUPPORTED: NvmlReturn = 3;
const NOT_FOUND: NvmlReturn = 6;
const INSUFFICIENT_SIZE: NvmlReturn = 7;
const GPU_IS_LOST: NvmlReturn = 15;
const VERSION_MISMATCH: NvmlReturn = 25;
const UNKNOWN: NvmlReturn = 999;

struct State {
    scenario: Scenario,
    initialized: bool,
}

static STATE: OnceLock<Result<Mutex<State>, String>> = OnceLock::new();

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, NvmlReturn> {
    // NVML shares the kernel module's lock with libcuda (driver_lock.rs).
    let _held = crate::driver_lock::acquire();
    read_state(f)
}

/// `with_state` without the driver lock, for lookups that never reach the
/// driver (nvmlErrorString is a table in the library).
fn read_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, NvmlReturn> {
    let cell = STATE.get_or_init(|| {
        let path = std::env::var("FAKEGPU_SCENARIO")
            .map_err(|_| "FAKEGPU_SCENARIO is not set".to_string())?;
        Scenario::load(&path).map(|scenario| {
            Mutex::new(State {
                scenario,
                initialized: false,
            })
        })
    });
    match cell {
        Ok(m) => Ok(f(&mut m
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))),
        Err(e) => {
            eprintln!("fakegpu: {e}");
            Err(UNKNOWN)
        }
    }
}

/// GPU `index`'s handle; its low four bits are zero.
pub(crate) fn handle(index: usize) -> *mut c_void {
    ((index + 1) << 4) as *mut c_void
}

crate::names::closed_set! {
    /// A reading of one device that a scenario can make unsupported
    /// (`devices[].nvml.not_supported`): its getters then return
    /// NVML_ERROR_NOT_SUPPORTED, as on a GPU or driver without it. Each
    /// getter below names the one it answers for, so this list and the
    /// getters cannot drift apart.
    pub enum Field: "NVML field" {
        /// nvmlDeviceGetUUID.
        Uuid = "uuid",
        /// nvmlDeviceGetTemperature.
        TemperatureCelsius = "temperature_celsius",
        /// nvmlDeviceGetPowerUsage.
        PowerDrawWatts = "power_draw_watts",
        /// nvmlDeviceGetEnforcedPowerLimit.
        PowerLimitWatts = "power_limit_watts",
        /// nvmlDeviceGetPowerManagementDefaultLimit.
        PowerDefaultLimitWatts = "power_default_limit_watts",
        /// nvmlDeviceGetUtilizationRates.
        Utilization = "utilization",
        /// nvmlDeviceGetClockInfo and nvmlDeviceGetMaxClockInfo.
        Clocks = "clocks",
        /// nvmlDeviceGetMemoryBusWidth.
        MemoryBusWidthBits = "memory_bus_width_bits",
        /// nvmlDeviceGetCurrPcieLinkGeneration/Width and
    /// nvmlDeviceGetMaxPcieLinkGeneration/Width.
        Pcie = "pcie",
        /// nvmlDeviceGetMemoryInfo_v2.
        Memory = "memory",
        /// nvmlDeviceGetComputeMode.
        ComputeMode = "compute_mode",
        /// nvmlDeviceGetComputeRunningProcesses_v3.
        ComputeProcesses = "compute_processes",
        /// nvmlDeviceGetEccMode and nvmlDeviceGetTotalEccErrors.
        Ecc = "ecc",
        /// nvmlDeviceGetRetiredPagesPendingStatus.
        RetiredPages = "retired_pages",
        /// nvmlDeviceGetRemappedRows.
        RemappedRows = "remapped_rows",
        /// nvmlDeviceGetCurrentClocksThrottleReasons.
        ThrottleReasons = "throttle_reasons",
        /// nvmlDeviceGetPersistenceMode.
        PersistenceMode = "persistence_mode",
        /// nvmlDeviceGetMigMode.
        MigMode = "mig_mode",
        /// nvmlDeviceGetApplicationsClock and
        /// nvmlDeviceGetDefaultApplicationsClock (GeForce boards before
        /// Maxwell, and laptop parts, answer NOT_SUPPORTED).
        ApplicationsClocks = "applications_clocks",
        /// nvmlDeviceGetGpuFabricInfo and nvmlDeviceGetGpuFabricInfoV.
        Fabric = "fabric",
        /// nvmlDeviceGetFieldValues.
        FieldValues = "field_values",
        /// nvmlDeviceGetSupportedEventTypes and nvmlDeviceRegisterEvents
        /// (crate::nvml_events).
        Events = "events",
    }
}

/// Runs a getter for one device: initialisation, GPU lost and
/// not-supported rules first.
fn device_call(
    device: *mut c_void,
    field: Field,
    f: impl FnOnce(&DeviceNvml) -> NvmlReturn,
) -> NvmlReturn {
    gpu_call(device, field, |index, d| {
        let rm = crate::rm::read(index);
        // The readings of the phase the GPU's work so far has reached, as
        // an idle GPU reports them when nothing is queued on it.
        let n = d.nvml_after(rm.worked_ms);
        if rm.busy {
            f(&n)
        } else {
            f(&n.idle())
        }
    })
}

/// `device_call` for getters that need the whole device and its scenario
/// index (what the kernel module knows of it: `crate::rm`).
pub(crate) fn gpu_call(
    device: *mut c_void,
    field: Field,
    f: impl FnOnce(usize, &Device) -> NvmlReturn,
) -> NvmlReturn {
    with_state(|state| {
        if !state.initialized {
            return UNINITIALIZED;
        }
        let Some((index, mig)) = decode(device).filter(|(i, m)| {
            state
                .scenario
                .devices
                .get(*i)
                .is_some_and(|d| m.is_none_or(|m| m < d.mig_instances.len()))
        }) else {
            return INVALID_ARGUMENT;
        };
        let gpu = &state.scenario.devices[index];
        if gpu.nvml.lost || crate::nvml_events::lost(gpu) {
            return GPU_IS_LOST;
        }
        if mig.is_some() && !MIG_HANDLE_FIELDS.contains(&field) {
            return NOT_SUPPORTED;
        }
        if gpu.nvml.not_supported.contains(&field) || mig_gpu_lacks(gpu, field) {
            return NOT_SUPPORTED;
        }
        f(index, gpu)
    })
    .unwrap_or(UNKNOWN)
}

unsafe fn put<T>(out: *mut T, value: T) -> NvmlReturn {
    if out.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    unsafe { out.write(value) };
    SUCCESS
}

unsafe fn put_str(out: *mut c_char, len: c_uint, text: &str) -> NvmlReturn {
    if out.is_null() {
        return INVALID_ARGUMENT;
    }
    if text.len() + 1 > len as usize {
        return INSUFFICIENT_SIZE;
    }
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), out, text.len());
        *out.add(text.len()) = 0;
    }
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlInit_v2() -> NvmlReturn {
    crate::nvml_events::start_clock();
    with_state(|s| {
        let r = s.scenario.nvml.init_result;
        if r == SUCCESS {
            s.initialized = true;
        }
        r
    })
    .unwrap_or(UNKNOWN)
}

#[no_mangle]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> NvmlReturn {
    nvmlInit_v2()
}

#[no_mangle]
pub extern "C" fn nvmlShutdown() -> NvmlReturn {
    with_state(|s| {
        s.initialized = false;
        SUCCESS
    })
    .unwrap_or(UNKNOWN)
}

/// The texts of the driver branch the scenario stands for (`crate::errors`);
/// callable before nvmlInit, as the real one is.
#[no_mangle]
pub extern "C" fn nvmlErrorString(result: NvmlReturn) -> *const c_char {
    let branch = read_state(|s| {
        s.scenario
            .nvml
            .driver_version
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    })
    .unwrap_or(u32::MAX);
    crate::errors::NVML
        .iter()
        .find(|(code, since, _)| *code == result && *since <= branch)
        .map_or(crate::errors::NVML_UNKNOWN, |(_, _, text)| *text)
        .as_ptr()
}

fn system_string(out: *mut c_char, len: c_uint, f: impl FnOnce(&Scenario) -> String) -> NvmlReturn {
    with_state(|s| {
        if !s.initialized {
            return UNINITIALIZED;
        }
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        unsafe { put_str(out, len, &f(&s.scenario)) }
    })
    .unwrap_or(UNKNOWN)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(out: *mut c_char, len: c_uint) -> NvmlReturn {
    system_string(out, len, |s| s.nvml.driver_version.clone())
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(out: *mut c_char, len: c_uint) -> NvmlReturn {
    system_string(out, len, |s| format!("12.{}", s.nvml.driver_version))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> NvmlReturn {
    with_state(|s| {
        if s.initialized {
            // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
            unsafe { put(count, s.scenario.devices.len() as c_uint) }
        } else {
            UNINITIALIZED
        }
    })
    .unwrap_or(UNKNOWN)
}

fn find_device(
    out: *mut *mut c_void,
    pred: impl Fn(&crate::scenario::Device) -> bool,
) -> NvmlReturn {
    with_state(|s| {
        if !s.initialized {
            return UNINITIALIZED;
        }
        match s.scenario.devices.iter().position(pred) {
            // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
            Some(i) => unsafe { put(out, handle(i)) },
            None => NOT_FOUND,
        }
    })
    .unwrap_or(UNKNOWN)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    out: *mut *mut c_void,
) -> NvmlReturn {
    with_state(|s| {
        if !s.initialized {
            return UNINITIALIZED;
        }
        if (index as usize) < s.scenario.devices.len() {
            // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
            unsafe { put(out, handle(index as usize)) }
        } else {
            INVALID_ARGUMENT
        }
    })
    .unwrap_or(UNKNOWN)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    out: *mut *mut c_void,
) -> NvmlReturn {
    if uuid.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    let wanted = unsafe { CStr::from_ptr(uuid) }
        .to_string_lossy()
        .into_owned();
    if wanted.starts_with("MIG-") {
        return find_mig_device(out, &wanted);
    }
    find_device(out, |d| d.uuid.eq_ignore_ascii_case(&wanted))
}

/// "0000:18:00.0" and "00000000:18:00.0" name the same device.
fn normal_bus_id(id: &str) -> String {
    let id = id.to_ascii_lowercase();
    match id.split_once(':') {
        Some((domain, rest)) => format!("{:0>8}:{rest}", domain.trim_start_matches('0')),
        None => id,
    }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByPciBusId_v2(
    bus: *const c_char,
    out: *mut *mut c_void,
) -> NvmlReturn {
    if bus.is_null() {
        return INVALID_ARGUMENT;
    }
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    let wanted = normal_bus_id(&unsafe { CStr::from_ptr(bus) }.to_string_lossy());
    find_device(out, |d| normal_bus_id(&d.pci_bus_id) == wanted)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: *mut c_void,
    out: *mut c_char,
    len: c_uint,
) -> NvmlReturn {
    // A MIG device handle's UUID is the instance's (`MIG-…`).
    let uuid = with_state(|s| {
        let (gpu, mig) = decode(device)?;
        let d = s.scenario.devices.get(gpu)?;
        match mig {
            Some(m) => d.mig_instances.get(m).map(|m| m.uuid.clone()),
            None => Some(d.uuid.clone()),
        }
    });
    device_call(device, Field::Uuid, |_| match &uuid {
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        Ok(Some(u)) => unsafe { put_str(out, len, u) },
        _ => INVALID_ARGUMENT,
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: *mut c_void,
    sensor: c_uint,
    out: *mut c_uint,
) -> NvmlReturn {
    device_call(device, Field::TemperatureCelsius, |n| {
        if sensor != 0 {
            return INVALID_ARGUMENT;
        }
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        unsafe { put(out, n.temperature_celsius) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(
    device: *mut c_void,
    milliwatts: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::PowerDrawWatts, |n| unsafe {
        put(milliwatts, (n.power_draw_watts * 1000.0) as c_uint)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetEnforcedPowerLimit(
    device: *mut c_void,
    milliwatts: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::PowerLimitWatts, |n| unsafe {
        put(milliwatts, (n.power_limit_watts * 1000.0) as c_uint)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerManagementDefaultLimit(
    device: *mut c_void,
    milliwatts: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::PowerDefaultLimitWatts, |n| unsafe {
        let watts = n.power_default_limit_watts.unwrap_or(n.power_limit_watts);
        put(milliwatts, (watts * 1000.0) as c_uint)
    })
}

#[repr(C)]
pub struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: *mut c_void,
    out: *mut Utilization,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::Utilization, |n| unsafe {
        put(
            out,
            Utilization {
                gpu: n.utilization_gpu_percent,
                memory: n.utilization_memory_percent,
            },
        )
    })
}

/// nvmlClockType_t: GRAPHICS 0, SM 1, MEM 2, VIDEO 3.
fn clock(n: &DeviceNvml, kind: c_uint, max: bool) -> Option<c_uint> {
    match (kind, max) {
        (0 | 1, false) => Some(n.sm_clock_mhz),
        (0 | 1, true) => Some(n.sm_clock_max_mhz),
        (2, false) => Some(n.memory_clock_mhz),
        (2, true) => Some(n.memory_clock_max_mhz),
        _ => None,
    }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: *mut c_void,
    kind: c_uint,
    out: *mut c_uint,
) -> NvmlReturn {
    device_call(device, Field::Clocks, |n| {
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        clock(n, kind, false).map_or(INVALID_ARGUMENT, |v| unsafe { put(out, v) })
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMaxClockInfo(
    device: *mut c_void,
    kind: c_uint,
    out: *mut c_uint,
) -> NvmlReturn {
    device_call(device, Field::Clocks, |n| {
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        clock(n, kind, true).map_or(INVALID_ARGUMENT, |v| unsafe { put(out, v) })
    })
}

/// The applications clock of a clock type (nvmlClockType_t: GRAPHICS 0
/// and SM 1 share the graphics clock, MEM 2), now or by default.
fn applications_clock(n: &DeviceNvml, kind: c_uint, default: bool) -> Option<c_uint> {
    let graphics_default = n
        .applications_clock_default_mhz
        .unwrap_or(n.sm_clock_max_mhz);
    match (kind, default) {
        (0 | 1, false) => Some(n.applications_clock_mhz.unwrap_or(graphics_default)),
        (0 | 1, true) => Some(graphics_default),
        (2, false) => Some(
            n.applications_memory_clock_mhz
                .unwrap_or(n.memory_clock_max_mhz),
        ),
        (2, true) => Some(n.memory_clock_max_mhz),
        _ => None,
    }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetApplicationsClock(
    device: *mut c_void,
    kind: c_uint,
    out: *mut c_uint,
) -> NvmlReturn {
    device_call(device, Field::ApplicationsClocks, |n| {
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        applications_clock(n, kind, false).map_or(INVALID_ARGUMENT, |v| unsafe { put(out, v) })
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetDefaultApplicationsClock(
    device: *mut c_void,
    kind: c_uint,
    out: *mut c_uint,
) -> NvmlReturn {
    device_call(device, Field::ApplicationsClocks, |n| {
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        applications_clock(n, kind, true).map_or(INVALID_ARGUMENT, |v| unsafe { put(out, v) })
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryBusWidth(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::MemoryBusWidthBits, |n| unsafe {
        put(out, n.memory_bus_width_bits)
    })
}

macro_rules! uint_getter {
    ($name:ident, $field:ident, $value:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(device: *mut c_void, out: *mut c_uint) -> NvmlReturn {
            // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
            device_call(device, Field::$field, |n| unsafe { put(out, n.$value) })
        }
    };
}

/// The link as it is now: trained up once work has been queued on the GPU
/// for the link's ramp time (`Pcie::ramp_ms`), the scenario's idle state
/// otherwise (nvidia-smi(1): the current generation and width "may be
/// reduced when the GPU is not in use").
fn current_link(index: usize, gpu: &Device) -> Link {
    let rm = crate::rm::read(index);
    let pcie = &gpu.nvml.pcie;
    if rm.busy && rm.busy_for_ms() >= pcie.ramp_ms {
        pcie.load
    } else {
        pcie.idle
    }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrPcieLinkGeneration(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    gpu_call(device, Field::Pcie, |index, gpu| unsafe {
        put(out, current_link(index, gpu).generation)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrPcieLinkWidth(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    gpu_call(device, Field::Pcie, |index, gpu| unsafe {
        put(out, current_link(index, gpu).width)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMaxPcieLinkGeneration(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::Pcie, |n| unsafe {
        put(out, n.pcie.max.generation)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMaxPcieLinkWidth(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::Pcie, |n| unsafe {
        put(out, n.pcie.max.width)
    })
}

/// nvmlMemory_v2_t (nvml.h).
#[repr(C)]
pub struct MemoryV2 {
    version: c_uint,
    total: c_ulonglong,
    reserved: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

/// Memory as the kernel module sees it: what other processes hold
/// (`memory_used_bytes`) and what this process's contexts and allocations
/// take (`crate::rm`); no context is needed to ask.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: *mut c_void,
    out: *mut MemoryV2,
) -> NvmlReturn {
    let own = own_instance_of(device);
    gpu_call(device, Field::Memory, |index, gpu| {
        if out.is_null() {
            return INVALID_ARGUMENT;
        }
        // nvml.h: the version word is the struct's size | 2 << 24.
        let version = (size_of::<MemoryV2>() | (2 << 24)) as c_uint;
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        if unsafe { (*out).version } != version {
            return VERSION_MISMATCH;
        }
        // A MIG device handle: the instance's memory, of which this
        // process's context and allocations are all that is used when
        // CUDA enumerated this instance (others' use of it is not modelled).
        let (total, used) = match decode(device).and_then(|(_, m)| m) {
            Some(m) => {
                let used = if own == Some(m) {
                    crate::rm::read(index).used_bytes
                } else {
                    0
                };
                let total = gpu.mig_instances[m].memory_bytes;
                (total, used.min(total))
            }
            None => (
                gpu.memory_bytes,
                (gpu.memory_used_bytes + crate::rm::read(index).used_bytes).min(gpu.memory_bytes),
            ),
        };
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        unsafe {
            put(
                out,
                MemoryV2 {
                    version,
                    total,
                    reserved: 0,
                    free: total - used,
                    used,
                },
            )
        }
    })
}

uint_getter!(nvmlDeviceGetComputeMode, ComputeMode, compute_mode);

/// nvmlProcessInfo_t (nvml.h; nvmlProcessInfo_v2_st): what
/// nvmlDeviceGetComputeRunningProcesses_v3 fills.
#[repr(C)]
pub struct ProcessInfo {
    pub pid: c_uint,
    pub used_gpu_memory: u64,
    pub gpu_instance_id: c_uint,
    pub compute_instance_id: c_uint,
}

/// nvml.h, nvmlDeviceGetComputeRunningProcesses_v3: the processes with a
/// compute context on the GPU, the scenario's `other_processes` and this
/// process once its context holds memory (the kernel module's view, rm.rs);
/// `*count` in, the array's room, out, the number listed; a null array or
/// too little room answers NVML_ERROR_INSUFFICIENT_SIZE with the number
/// needed (0 processes and a null array: SUCCESS). Instance IDs are
/// 0xFFFFFFFF off MIG ("NVML_VALUE_NOT_AVAILABLE").
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: *mut c_void,
    count: *mut c_uint,
    infos: *mut ProcessInfo,
) -> NvmlReturn {
    let own_instance = own_instance_of(device);
    gpu_call(device, Field::ComputeProcesses, |index, d| {
        if count.is_null() {
            return INVALID_ARGUMENT;
        }
        let own = crate::rm::read(index).used_bytes;
        // A MIG device handle lists the processes on its instance: this
        // process's, when its context is there (the scenario's other
        // processes are not placed on instances, so they are listed on the
        // GPU's handle only).
        let mig = decode(device).and_then(|(_, m)| m);
        let mut listed: Vec<ProcessInfo> = if mig.is_some() {
            Vec::new()
        } else {
            d.other_processes
                .iter()
                .map(|p| ProcessInfo {
                    pid: p.pid,
                    used_gpu_memory: p.used_memory_bytes,
                    gpu_instance_id: u32::MAX,
                    compute_instance_id: u32::MAX,
                })
                .collect()
        };
        if own > 0 && mig.is_none_or(|m| own_instance == Some(m)) {
            // Instance IDs name where the process runs on a MIG GPU.
            let (gi, ci) = own_instance.map_or((u32::MAX, u32::MAX), |m| {
                let inst = &d.mig_instances[m];
                (inst.gpu_instance_id, inst.compute_instance_id)
            });
            listed.push(ProcessInfo {
                pid: std::process::id(),
                used_gpu_memory: own,
                gpu_instance_id: gi,
                compute_instance_id: ci,
            });
        }
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        let room = unsafe { *count } as usize;
        // SAFETY: as above.
        unsafe { *count = listed.len() as c_uint };
        if listed.is_empty() {
            return SUCCESS;
        }
        if infos.is_null() || room < listed.len() {
            return INSUFFICIENT_SIZE;
        }
        for (i, p) in listed.into_iter().enumerate() {
            // SAFETY: `infos` holds `room` >= listed entries (checked).
            unsafe { infos.add(i).write(p) };
        }
        SUCCESS
    })
}

fn enabled(b: bool) -> c_uint {
    c_uint::from(b)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetEccMode(
    device: *mut c_void,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::Ecc, |n| unsafe {
        let r = put(current, enabled(n.ecc_enabled));
        if r == SUCCESS {
            put(pending, enabled(n.ecc_pending.unwrap_or(n.ecc_enabled)))
        } else {
            r
        }
    })
}

/// error type: CORRECTED 0, UNCORRECTED 1; counter: VOLATILE 0, AGGREGATE 1.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: *mut c_void,
    error_type: c_uint,
    counter: c_uint,
    out: *mut c_ulonglong,
) -> NvmlReturn {
    device_call(device, Field::Ecc, |n| {
        if !n.ecc_enabled {
            return NOT_SUPPORTED;
        }
        let v = match (error_type, counter) {
            (1, 0) => n.ecc_uncorrected_volatile,
            (1, 1) => n.ecc_uncorrected_aggregate,
            // One corrected count in the scenario: volatile and
            // aggregate alike.
            (0, 0 | 1) => n.ecc_corrected_volatile,
            _ => return INVALID_ARGUMENT,
        };
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        unsafe { put(out, v) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPagesPendingStatus(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::RetiredPages, |n| unsafe {
        put(out, enabled(n.retired_pages_pending))
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRemappedRows(
    device: *mut c_void,
    corrected: *mut c_uint,
    uncorrected: *mut c_uint,
    pending: *mut c_uint,
    failure: *mut c_uint,
) -> NvmlReturn {
    // Row remapping is an Ampere-and-newer feature (NVML reference,
    // nvmlDeviceGetRemappedRows: "For Ampere or newer fully supported
    // devices"; NVIDIA, GPU Memory Error Management: "not supported on
    // pre-Ampere GPUs"); older GPUs retire pages instead.
    let remaps = gpu_call(device, Field::RemappedRows, |_, d| {
        if d.compute_capability[0] >= 8 {
            SUCCESS
        } else {
            NOT_SUPPORTED
        }
    });
    if remaps != SUCCESS {
        return remaps;
    }
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::RemappedRows, |n| unsafe {
        for r in [
            put(corrected, 0),
            put(uncorrected, n.remapped_rows_uncorrectable),
            put(pending, enabled(n.remapped_rows_pending)),
            put(failure, enabled(n.remapped_rows_failure)),
        ] {
            if r != SUCCESS {
                return r;
            }
        }
        SUCCESS
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksThrottleReasons(
    device: *mut c_void,
    out: *mut c_ulonglong,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::ThrottleReasons, |n| unsafe {
        put(out, n.throttle_reasons)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPersistenceMode(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::PersistenceMode, |n| unsafe {
        put(out, enabled(n.persistence_mode))
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: *mut c_void,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::MigMode, |n| unsafe {
        let r = put(current, enabled(n.mig_mode));
        if r == SUCCESS {
            put(pending, enabled(n.mig_pending.unwrap_or(n.mig_mode)))
        } else {
            r
        }
    })
}

/// The scenario's devices, as NVML indexes them (for the event wait, which
/// holds no driver lock while it sleeps).
pub(crate) fn scenario_devices() -> Result<Vec<Device>, NvmlReturn> {
    read_state(|s| s.scenario.devices.clone())
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetIndex(device: *mut c_void, out: *mut c_uint) -> NvmlReturn {
    gpu_call(device, Field::Uuid, |index, _| {
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        unsafe { put(out, index as c_uint) }
    })
}

/// The driver branch the scenario's NVML stands for (550 of "550.54.15").
fn branch() -> u32 {
    read_state(|s| {
        s.scenario
            .nvml
            .driver_version
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    })
    .unwrap_or(u32::MAX)
}

/// nvml.h's nvmlGpuFabricInfo_t.
#[repr(C)]
pub struct FabricInfoV1 {
    cluster_uuid: [u8; 16],
    status: NvmlReturn,
    clique_id: c_uint,
    state: u8,
}

/// nvml.h's nvmlGpuFabricInfo_v2_t.
#[repr(C)]
pub struct FabricInfoV2 {
    version: c_uint,
    cluster_uuid: [u8; 16],
    status: NvmlReturn,
    clique_id: c_uint,
    state: u8,
    health_mask: c_uint,
}

/// NVML_STRUCT_VERSION(GpuFabricInfo, 2).
const FABRIC_INFO_V2: c_uint = std::mem::size_of::<FabricInfoV2>() as c_uint | (2 << 24);
/// NVML_ERROR_ARGUMENT_VERSION_MISMATCH: a versioned struct of another version.
const ARGUMENT_VERSION_MISMATCH: NvmlReturn = 25;

/// A GPU's fabric state, status and health mask: NOT_SUPPORTED before
/// Hopper ("for Hopper or newer fully supported devices", NVML API
/// Reference), state NOT_SUPPORTED (0) on a Hopper on no fabric.
fn fabric_of(gpu: &Device) -> Result<(u8, NvmlReturn, c_uint), NvmlReturn> {
    if gpu.compute_capability[0] < 9 {
        return Err(NOT_SUPPORTED);
    }
    Ok(gpu.nvml.fabric.map_or((0, SUCCESS, 0), |f| {
        (f.state.value(), f.status, f.health_mask)
    }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuFabricInfo(
    device: *mut c_void,
    out: *mut FabricInfoV1,
) -> NvmlReturn {
    gpu_call(device, Field::Fabric, |_, gpu| match fabric_of(gpu) {
        Err(e) => e,
        // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
        Ok((state, status, _)) => unsafe {
            put(
                out,
                FabricInfoV1 {
                    cluster_uuid: [0; 16],
                    status,
                    clique_id: 0,
                    state,
                },
            )
        },
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuFabricInfoV(
    device: *mut c_void,
    out: *mut FabricInfoV2,
) -> NvmlReturn {
    gpu_call(device, Field::Fabric, |_, gpu| {
        if out.is_null() {
            return INVALID_ARGUMENT;
        }
        // SAFETY: non-null, and the caller's nvmlGpuFabricInfo_v2_t (module doc).
        if unsafe { (*out).version } != FABRIC_INFO_V2 {
            return ARGUMENT_VERSION_MISMATCH;
        }
        match fabric_of(gpu) {
            Err(e) => e,
            // SAFETY: as above.
            Ok((state, status, health_mask)) => unsafe {
                put(
                    out,
                    FabricInfoV2 {
                        version: FABRIC_INFO_V2,
                        cluster_uuid: [0; 16],
                        status,
                        clique_id: 0,
                        state,
                        health_mask,
                    },
                )
            },
        }
    })
}

/// nvml.h's nvmlFieldValue_t.
#[repr(C)]
pub struct FieldValue {
    field_id: c_uint,
    scope_id: c_uint,
    timestamp: i64,
    latency_usec: i64,
    value_type: c_uint,
    nvml_return: NvmlReturn,
    value: u64,
}

/// NVML_FI_DEV_GET_GPU_RECOVERY_ACTION (nvml.h, from R565).
const FI_GPU_RECOVERY_ACTION: c_uint = 230;
/// NVML_VALUE_TYPE_UNSIGNED_INT.
const VALUE_TYPE_UNSIGNED_INT: c_uint = 1;

/// The fields a scenario models: the GPU recovery action, known to drivers
/// from R565 (older ones answer the field NVML_ERROR_NOT_SUPPORTED); every
/// other field answers NOT_SUPPORTED in its own return, as NVML does for a
/// field a GPU lacks, while the call itself succeeds.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetFieldValues(
    device: *mut c_void,
    count: c_int,
    values: *mut FieldValue,
) -> NvmlReturn {
    let branch = branch();
    gpu_call(device, Field::FieldValues, |_, gpu| {
        let Ok(count) = usize::try_from(count) else {
            return INVALID_ARGUMENT;
        };
        if values.is_null() {
            return INVALID_ARGUMENT;
        }
        // SAFETY: the caller's array of `count` nvmlFieldValue_t (module doc).
        let values = unsafe { std::slice::from_raw_parts_mut(values, count) };
        for v in values {
            (v.nvml_return, v.value_type, v.value) =
                if v.field_id == FI_GPU_RECOVERY_ACTION && branch >= 565 {
                    (
                        SUCCESS,
                        VALUE_TYPE_UNSIGNED_INT,
                        u64::from(gpu.nvml.recovery_action.unwrap_or(0)),
                    )
                } else {
                    (NOT_SUPPORTED, 0, 0)
                };
        }
        SUCCESS
    })
}

/// Every symbol this library exports as NVML.
/// Exports that older NVML libraries lack, with the first driver branch
/// among the pinned real ones (470, 535, 550) that has them (or, for a
/// call newer than all of them, the branch NVML's change log names): the
/// fake for an older `nvml.driver_version` leaves them out, so a call through
/// nvml-wrapper fails to find the symbol as it would on that driver.
/// tests/real_driver.rs checks the fake's exports against each real one.
pub const NEWER_EXPORTS: &[(&str, u32)] = &[
    ("nvmlDeviceGetMemoryBusWidth", 535),
    ("nvmlDeviceGetMemoryInfo_v2", 535),
    // The _v3 process list came with the 510 drivers (nvml.h of CUDA 11.6).
    ("nvmlDeviceGetComputeRunningProcesses_v3", 510),
    ("nvmlDeviceGetGpuFabricInfo", 535),
    ("nvmlDeviceGetGpuFabricInfoV", 550),
    ("nvmlDeviceGetSramEccErrorStatus", 535),
    // NVML's changes between v580 and v590.
    ("nvmlDeviceGetUnrepairableMemoryFlag_v1", 590),
];

/// What the fake NVML of driver `version` (e.g. "470.256.02") exports.
#[must_use]
pub fn exports_for(version: &str) -> Vec<&'static str> {
    let branch = version
        .split('.')
        .next()
        .and_then(|b| b.parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    EXPORTS
        .iter()
        .copied()
        .filter(|name| {
            NEWER_EXPORTS
                .iter()
                .all(|(newer, since)| newer != name || *since <= branch)
        })
        .collect()
}

pub const EXPORTS: &[&str] = &[
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlErrorString",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceGetHandleByPciBusId_v2",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetPowerManagementDefaultLimit",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetMaxClockInfo",
    "nvmlDeviceGetApplicationsClock",
    "nvmlDeviceGetDefaultApplicationsClock",
    "nvmlDeviceGetMemoryBusWidth",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetMaxPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth",
    "nvmlDeviceGetMaxPcieLinkWidth",
    "nvmlDeviceGetComputeMode",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetEccMode",
    "nvmlDeviceGetTotalEccErrors",
    "nvmlDeviceGetPcieReplayCounter",
    "nvmlDeviceGetSramEccErrorStatus",
    "nvmlDeviceGetUnrepairableMemoryFlag_v1",
    "nvmlDeviceGetRetiredPagesPendingStatus",
    "nvmlDeviceGetRemappedRows",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetPersistenceMode",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetGpuFabricInfo",
    "nvmlDeviceGetGpuFabricInfoV",
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetIndex",
    "nvmlEventSetCreate",
    "nvmlEventSetFree",
    "nvmlEventSetWait",
    "nvmlEventSetWait_v2",
    "nvmlDeviceRegisterEvents",
    "nvmlDeviceGetSupportedEventTypes",
];
