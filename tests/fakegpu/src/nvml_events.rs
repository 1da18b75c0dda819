//! NVML's event API, from the scenario's `devices[].nvml.events` and
//! `lost_after_ms`: event sets, registration, and nvmlEventSetWait.
//!
//! As NVML documents it (NVML API Reference, "Event Handling Methods"):
//! nvmlDeviceRegisterEvents adds a GPU's event types to a set, and
//! nvmlEventSetWait(_v2) blocks until one of them arrives, answering
//! NVML_ERROR_TIMEOUT when none does in time; an event that happened before
//! the registration is never delivered. A GPU that has fallen off the bus
//! answers NVML_ERROR_GPU_IS_LOST. The wait holds no driver lock while it
//! sleeps (a real one waits in the kernel on an event, not on the lock).
//!
//! Time is wall time from NVML's first initialisation in the process.
//!
//! Every pointer argument comes from the caller and is valid as nvml.h
//! requires: that is the contract of each exported function.
#![allow(clippy::missing_safety_doc, non_snake_case)]
use std::collections::HashMap;
use std::ffi::{c_uint, c_ulonglong, c_void};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::nvml::{self, NvmlReturn};
use crate::scenario::{Device, EventKind};

const SUCCESS: NvmlReturn = 0;
const INVALID_ARGUMENT: NvmlReturn = 2;
const NOT_SUPPORTED: NvmlReturn = 3;
const TIMEOUT: NvmlReturn = 10;
const GPU_IS_LOST: NvmlReturn = 15;

/// When NVML was first initialised in this process.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Marks NVML's first initialisation (nvmlInit_v2 calls it).
pub fn start_clock() {
    EPOCH.get_or_init(Instant::now);
}

fn now_ms() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

/// Whether the scenario's GPU has fallen off the bus by now.
#[must_use]
pub fn lost(gpu: &Device) -> bool {
    gpu.nvml.lost_after_ms.is_some_and(|t| now_ms() >= t)
}

/// One event set: per registered GPU (scenario index), its types and when
/// it was registered, and the events already delivered.
#[derive(Default)]
struct Set {
    registered: Vec<(usize, u64, f64)>,
    delivered: Vec<(usize, usize)>,
    lost_said: Vec<usize>,
}

fn sets() -> std::sync::MutexGuard<'static, HashMap<usize, Set>> {
    static SETS: OnceLock<Mutex<HashMap<usize, Set>>> = OnceLock::new();
    SETS.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The kinds a GPU supports: all four, without the ECC ones where ECC is
/// off (nvmlDeviceGetSupportedEventTypes).
fn supported(gpu: &Device) -> u64 {
    let ecc = if gpu.nvml.ecc_enabled {
        EventKind::SingleBitEcc.bit() | EventKind::DoubleBitEcc.bit()
    } else {
        0
    };
    EventKind::CriticalXid.bit() | EventKind::ClockChange.bit() | ecc
}

#[no_mangle]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut *mut c_void) -> NvmlReturn {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    if set.is_null() {
        return INVALID_ARGUMENT;
    }
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sets().insert(id, Set::default());
    // SAFETY: checked non-null; the caller's nvmlEventSet_t (nvml.h).
    unsafe { *set = id as *mut c_void };
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlEventSetFree(set: *mut c_void) -> NvmlReturn {
    match sets().remove(&(set as usize)) {
        Some(_) => SUCCESS,
        None => INVALID_ARGUMENT,
    }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetSupportedEventTypes(
    device: *mut c_void,
    out: *mut c_ulonglong,
) -> NvmlReturn {
    nvml::gpu_call(device, nvml::Field::Events, |_, gpu| {
        if out.is_null() {
            return INVALID_ARGUMENT;
        }
        // SAFETY: checked non-null; the caller's unsigned long long.
        unsafe { *out = supported(gpu) };
        SUCCESS
    })
}

#[no_mangle]
pub extern "C" fn nvmlDeviceRegisterEvents(
    device: *mut c_void,
    types: c_ulonglong,
    set: *mut c_void,
) -> NvmlReturn {
    nvml::gpu_call(device, nvml::Field::Events, |index, gpu| {
        if types & !supported(gpu) != 0 {
            return NOT_SUPPORTED;
        }
        match sets().get_mut(&(set as usize)) {
            Some(s) => {
                s.registered.push((index, types, now_ms()));
                SUCCESS
            }
            None => INVALID_ARGUMENT,
        }
    })
}

/// nvml.h's nvmlEventData_t.
#[repr(C)]
#[allow(clippy::struct_field_names, reason = "nvml.h's names")]
pub struct EventData {
    device: *mut c_void,
    event_type: c_ulonglong,
    event_data: c_ulonglong,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
}

/// What a wait finds now: an event to deliver, a lost GPU, or how long
/// until the next event (`None`: none to come).
enum Next {
    Event { gpu: usize, event: usize },
    Lost(usize),
    After(Option<f64>),
}

fn next(set: &Set, devices: &[Device], now: f64) -> Next {
    let mut soonest: Option<f64> = None;
    let mut due: Option<(f64, usize, usize)> = None;
    for &(gpu, types, since) in &set.registered {
        let Some(d) = devices.get(gpu) else { continue };
        if lost(d) && !set.lost_said.contains(&gpu) {
            // Events due before the loss come first.
            let t = d.nvml.lost_after_ms.unwrap_or(0.0);
            if due.is_none_or(|(at, _, _)| t < at) {
                due = Some((t, gpu, usize::MAX));
            }
        }
        for (i, e) in d.nvml.events.iter().enumerate() {
            if e.kind.bit() & types == 0 || e.after_ms < since || set.delivered.contains(&(gpu, i))
            {
                continue;
            }
            if e.after_ms <= now {
                if due.is_none_or(|(at, _, _)| e.after_ms <= at) {
                    due = Some((e.after_ms, gpu, i));
                }
            } else {
                soonest = Some(soonest.map_or(e.after_ms, |s: f64| s.min(e.after_ms)));
            }
        }
    }
    match due {
        Some((_, gpu, usize::MAX)) => Next::Lost(gpu),
        Some((_, gpu, event)) => Next::Event { gpu, event },
        None => Next::After(soonest),
    }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    set: *mut c_void,
    data: *mut EventData,
    timeout_ms: c_uint,
) -> NvmlReturn {
    if data.is_null() {
        return INVALID_ARGUMENT;
    }
    let Ok(devices) = nvml::scenario_devices() else {
        return INVALID_ARGUMENT;
    };
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    loop {
        let now = now_ms();
        let found = {
            let mut all = sets();
            let Some(s) = all.get_mut(&(set as usize)) else {
                return INVALID_ARGUMENT;
            };
            match next(s, &devices, now) {
                Next::Event { gpu, event } => {
                    s.delivered.push((gpu, event));
                    Ok((gpu, event))
                }
                Next::Lost(gpu) => {
                    s.lost_said.push(gpu);
                    return GPU_IS_LOST;
                }
                Next::After(at) => Err(at),
            }
        };
        match found {
            Ok((gpu, event)) => {
                let e = devices[gpu].nvml.events[event];
                // SAFETY: checked non-null; the caller's nvmlEventData_t.
                unsafe {
                    *data = EventData {
                        device: nvml::handle(gpu),
                        event_type: e.kind.bit(),
                        event_data: e.xid.unwrap_or(0),
                        gpu_instance_id: u32::MAX,
                        compute_instance_id: u32::MAX,
                    };
                }
                return SUCCESS;
            }
            Err(at) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return TIMEOUT;
                }
                // Sleep until the next event is due or the timeout, in
                // slices, so a GPU lost meanwhile is said promptly.
                let until = at.map_or(left, |t| {
                    Duration::from_secs_f64(((t - now) / 1e3).max(0.0)).min(left)
                });
                std::thread::sleep(until.min(Duration::from_millis(50)));
            }
        }
    }
}

/// The older entry point, the same without the MIG instance ids.
#[no_mangle]
pub unsafe extern "C" fn nvmlEventSetWait(
    set: *mut c_void,
    data: *mut EventData,
    timeout_ms: c_uint,
) -> NvmlReturn {
    // SAFETY: as nvmlEventSetWait_v2 (the caller's pointers, nvml.h); the
    // v1 struct is the v2 one without its last two fields, which this
    // writes only through a v2-sized copy.
    unsafe {
        let mut full = std::mem::zeroed::<EventData>();
        let r = nvmlEventSetWait_v2(set, &raw mut full, timeout_ms);
        if r == SUCCESS && !data.is_null() {
            std::ptr::copy_nonoverlapping((&raw const full).cast::<u8>(), data.cast::<u8>(), 3 * 8);
        }
        r
    }
}
