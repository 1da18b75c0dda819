//! NVML's error counters of a GPU, read before and after gpuprobe's work
//! on it: the PCIe replay counter, the volatile ECC counts of device
//! memory, and those of on-chip SRAM where the driver has them
//! (nvmlDeviceGetSramEccErrorStatus, resolved optionally: drivers from
//! R535). The counters are the GPU's: on a MIG device they are its GPU's,
//! which NVML answers (a MIG device handle answers NOT_SUPPORTED), so they
//! count every instance's work. Beside them, the driver's flag for memory
//! it cannot repair (nvmlDeviceGetUnrepairableMemoryFlag_v1, R590 on), a
//! telemetry reading.
use std::ffi::{c_uint, c_ulonglong, c_void};
use std::time::Instant;

use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::Device;

use super::{reading, Loaded, NvmlDevice};
use crate::report::{CounterChange, Reading, RunCounters, Unavailable};

/// nvml.h's nvmlEccSramErrorStatus_v1_t (the NVML API Reference's struct:
/// a version, ten 64-bit counts, the threshold flag).
#[repr(C)]
#[derive(Default)]
pub(super) struct RawSramStatus {
    version: c_uint,
    aggregate_unc_parity: c_ulonglong,
    aggregate_unc_sec_ded: c_ulonglong,
    aggregate_cor: c_ulonglong,
    volatile_unc_parity: c_ulonglong,
    volatile_unc_sec_ded: c_ulonglong,
    volatile_cor: c_ulonglong,
    aggregate_unc_bucket_l2: c_ulonglong,
    aggregate_unc_bucket_sm: c_ulonglong,
    aggregate_unc_bucket_pcie: c_ulonglong,
    aggregate_unc_bucket_mcu: c_ulonglong,
    aggregate_unc_bucket_other: c_ulonglong,
    threshold_exceeded: c_uint,
}

/// nvml.h's nvmlEccSramErrorStatus_v1: NVML_STRUCT_VERSION(EccSramErrorStatus, 1),
/// the struct's size with the version in the top byte.
const SRAM_STATUS_V1: c_uint = size_of::<RawSramStatus>() as c_uint | (1 << 24);

/// nvmlDeviceGetSramEccErrorStatus's prototype (the device handle as an
/// opaque pointer).
pub(super) type SramEccStatus = unsafe extern "C" fn(*mut c_void, *mut RawSramStatus) -> i32;

/// nvml.h's nvmlUnrepairableMemoryStatus_v1_t (NVML API Reference: one
/// field, `bUnrepairableMemory`).
#[repr(C)]
#[derive(Default)]
pub(super) struct RawUnrepairable {
    unrepairable: c_uint,
}

/// nvmlDeviceGetUnrepairableMemoryFlag_v1's prototype.
pub(super) type UnrepairableFlag = unsafe extern "C" fn(*mut c_void, *mut RawUnrepairable) -> i32;

/// A call's nvmlReturn_t as a reading's reason (nvml.h's codes).
fn unavailable(code: i32) -> Unavailable {
    match code {
        3 => Unavailable::NotSupported,
        4 => Unavailable::NoPermission,
        15 => Unavailable::GpuLost,
        _ => Unavailable::Error,
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub pcie_replays: Reading<u64>,
    pub ecc_corrected: Reading<u64>,
    pub ecc_uncorrected: Reading<u64>,
    pub sram_corrected: Reading<u64>,
    pub sram_uncorrected: Reading<u64>,
}

/// The counters as read before the work, and when.
#[derive(Debug, Clone)]
pub struct Before {
    at: Instant,
    counts: Counts,
}

impl Loaded {
    /// Reads the counters of `device`'s GPU.
    #[must_use]
    pub fn counts(&self, device: &NvmlDevice<'_>) -> Counts {
        let gpu = device.gpu();
        let ecc = |kind| reading(gpu.total_ecc_errors(kind, EccCounter::Volatile));
        let sram = self.sram(gpu);
        Counts {
            pcie_replays: reading(gpu.pcie_replay_counter().map(u64::from)),
            ecc_corrected: ecc(MemoryError::Corrected),
            ecc_uncorrected: ecc(MemoryError::Uncorrected),
            sram_corrected: sram.clone().map(|s| s.0),
            sram_uncorrected: sram.map(|s| s.1),
        }
    }

    /// The counters before the work, timed from now.
    #[must_use]
    pub fn before(&self, device: &NvmlDevice<'_>) -> Before {
        Before {
            at: Instant::now(),
            counts: self.counts(device),
        }
    }

    /// The SRAM ECC counts (corrected, uncorrected: parity and SEC-DED),
    /// volatile; `not_supported` where the driver lacks the call.
    fn sram(&self, device: &Device<'_>) -> Reading<(u64, u64)> {
        let Some(f) = self.sram_ecc else {
            return Reading::Unavailable(Unavailable::NotSupported);
        };
        let mut raw = RawSramStatus {
            version: SRAM_STATUS_V1,
            ..RawSramStatus::default()
        };
        // SAFETY: `f` is valid while `self` keeps the library loaded;
        // `device` is a handle of this NVML, alive while `self` lives; `raw`
        // is a live nvmlEccSramErrorStatus_v1_t with its version set, as
        // the call asks.
        let code = unsafe { f(device.handle().cast(), &raw mut raw) };
        match code {
            0 => Reading::Value((
                raw.volatile_cor,
                raw.volatile_unc_parity
                    .saturating_add(raw.volatile_unc_sec_ded),
            )),
            other => Reading::Unavailable(unavailable(other)),
        }
    }

    /// Whether the driver flags memory it cannot repair; `not_supported`
    /// where the driver lacks the call (before R590).
    pub(super) fn unrepairable_memory(&self, device: &Device<'_>) -> Reading<bool> {
        let Some(f) = self.unrepairable else {
            return Reading::Unavailable(Unavailable::NotSupported);
        };
        let mut raw = RawUnrepairable::default();
        // SAFETY: `f` is valid while `self` keeps the library loaded;
        // `device` is a handle of this NVML, alive while `self` lives; `raw`
        // is a live nvmlUnrepairableMemoryStatus_v1_t.
        match unsafe { f(device.handle().cast(), &raw mut raw) } {
            0 => Reading::Value(raw.unrepairable != 0),
            other => Reading::Unavailable(unavailable(other)),
        }
    }
}

impl Before {
    /// What the run added: these counts against `after`, read now.
    #[must_use]
    pub fn until(self, after: Counts) -> RunCounters {
        let b = self.counts;
        RunCounters {
            seconds: self.at.elapsed().as_secs_f64(),
            pcie_replays: CounterChange::new(b.pcie_replays, after.pcie_replays),
            ecc_corrected: CounterChange::new(b.ecc_corrected, after.ecc_corrected),
            ecc_uncorrected: CounterChange::new(b.ecc_uncorrected, after.ecc_uncorrected),
            sram_corrected: CounterChange::new(b.sram_corrected, after.sram_corrected),
            sram_uncorrected: CounterChange::new(b.sram_uncorrected, after.sram_uncorrected),
        }
    }
}
