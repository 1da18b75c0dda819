//! The error counters a GPU adds to while it works: the PCIe replay counter
//! and the SRAM ECC counts (the DRAM ones are nvmlDeviceGetTotalEccErrors,
//! in nvml.rs), whose values grow with the GPU's work as the scenario's
//! `counters_per_work_second` says (`Device::nvml_after`); and the driver's
//! flag for memory it cannot repair. Its `unsafe` blocks write
//! out-parameters the caller passed, as nvml.rs's (see there).
use std::ffi::{c_uint, c_ulonglong, c_void};

use super::{device_call, put, Field, NvmlReturn, INVALID_ARGUMENT, NOT_SUPPORTED};

/// nvml.h's nvmlEccSramErrorStatus_v1_t.
#[repr(C)]
pub struct EccSramErrorStatus {
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
const SRAM_STATUS_V1: c_uint = std::mem::size_of::<EccSramErrorStatus>() as c_uint | (1 << 24);

/// NVML_ERROR_ARGUMENT_VERSION_MISMATCH (nvml.h).
const ARGUMENT_VERSION_MISMATCH: NvmlReturn = 25;

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPcieReplayCounter(
    device: *mut c_void,
    out: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::Pcie, |n| unsafe {
        put(
            out,
            c_uint::try_from(n.pcie_replay_counter).unwrap_or(c_uint::MAX),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetSramEccErrorStatus(
    device: *mut c_void,
    status: *mut EccSramErrorStatus,
) -> NvmlReturn {
    device_call(device, Field::Ecc, |n| {
        if status.is_null() {
            return INVALID_ARGUMENT;
        }
        // SAFETY: the caller's struct (module doc); only its version is
        // read before it is known to be a v1 struct.
        let version = unsafe { (*status).version };
        if version != SRAM_STATUS_V1 {
            return ARGUMENT_VERSION_MISMATCH;
        }
        // ECC counts need ECC on, as nvmlDeviceGetTotalEccErrors's.
        if !n.ecc_enabled {
            return NOT_SUPPORTED;
        }
        let value = EccSramErrorStatus {
            version,
            aggregate_unc_parity: 0,
            aggregate_unc_sec_ded: n.sram_uncorrected_volatile,
            aggregate_cor: n.sram_corrected_volatile,
            volatile_unc_parity: 0,
            volatile_unc_sec_ded: n.sram_uncorrected_volatile,
            volatile_cor: n.sram_corrected_volatile,
            aggregate_unc_bucket_l2: 0,
            aggregate_unc_bucket_sm: 0,
            aggregate_unc_bucket_pcie: 0,
            aggregate_unc_bucket_mcu: 0,
            aggregate_unc_bucket_other: n.sram_uncorrected_volatile,
            threshold_exceeded: 0,
        };
        // SAFETY: as above; a v1 struct by its version.
        unsafe { put(status, value) }
    })
}

/// nvml.h's nvmlUnrepairableMemoryStatus_v1_t (NVML API Reference: one
/// field, `bUnrepairableMemory`).
#[repr(C)]
pub struct UnrepairableMemoryStatus {
    unrepairable: c_uint,
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUnrepairableMemoryFlag_v1(
    device: *mut c_void,
    status: *mut UnrepairableMemoryStatus,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
    device_call(device, Field::Ecc, |n| unsafe {
        put(
            status,
            UnrepairableMemoryStatus {
                unrepairable: c_uint::from(n.unrepairable_memory),
            },
        )
    })
}
