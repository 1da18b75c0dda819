//! NVML's NVLink calls, answered from the scenario's `nvml.nvlink`
//! (crate::nvlink says what real GPUs answer). Its `unsafe` blocks write
//! out-parameters the caller passed, as nvml.rs's (see there).
use std::ffi::{c_char, c_uint, c_ulonglong, c_void};

use super::{gpu_call, put, Field, NvmlReturn, INVALID_ARGUMENT, NOT_SUPPORTED, SUCCESS};
use crate::nvlink::NvLinks;

/// NVML_FEATURE_DISABLED / NVML_FEATURE_ENABLED.
const DISABLED: c_uint = 0;
const ENABLED: c_uint = 1;
/// NVML_NVLINK_DEVICE_TYPE_UNKNOWN.
const DEVICE_TYPE_UNKNOWN: c_uint = 255;

/// Runs `f` on the GPU's links and link `link`: NOT_SUPPORTED where the GPU
/// has no NVLink (a PCIe-only GPU), INVALID_ARGUMENT for a link it does not
/// have ("if device or link is invalid", nvml.h).
fn link_call(
    device: *mut c_void,
    link: c_uint,
    f: impl FnOnce(usize, &NvLinks) -> NvmlReturn,
) -> NvmlReturn {
    gpu_call(device, Field::Nvlink, |index, gpu| {
        let Some(links) = &gpu.nvml.nvlink else {
            return NOT_SUPPORTED;
        };
        if !links.has(link) {
            return INVALID_ARGUMENT;
        }
        f(index, links)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkState(
    device: *mut c_void,
    link: c_uint,
    is_active: *mut c_uint,
) -> NvmlReturn {
    link_call(device, link, |_, n| {
        let state = if n.active(link) { ENABLED } else { DISABLED };
        // SAFETY: pointers from the caller, valid as nvml.h requires (nvml.rs).
        unsafe { put(is_active, state) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkVersion(
    device: *mut c_void,
    link: c_uint,
    version: *mut c_uint,
) -> NvmlReturn {
    // SAFETY: pointers from the caller, valid as nvml.h requires (nvml.rs).
    link_call(device, link, |_, n| unsafe { put(version, n.version) })
}

/// nvml.h's nvmlPciInfo_t.
#[repr(C)]
pub struct PciInfo {
    bus_id_legacy: [c_char; 16],
    domain: c_uint,
    bus: c_uint,
    device: c_uint,
    pci_device_id: c_uint,
    pci_sub_system_id: c_uint,
    bus_id: [c_char; 32],
}

/// "00000000:C1:00.0" as nvmlPciInfo_t: the 32-byte bus id, and the legacy
/// one with a 4-digit domain.
fn pci_info(bus_id: &str) -> PciInfo {
    let mut info = PciInfo {
        bus_id_legacy: [0; 16],
        domain: 0,
        bus: 0,
        device: 0,
        pci_device_id: 0,
        pci_sub_system_id: 0,
        bus_id: [0; 32],
    };
    let mut parts = bus_id.split([':', '.']);
    let mut hex = || {
        parts
            .next()
            .and_then(|p| u32::from_str_radix(p, 16).ok())
            .unwrap_or(0)
    };
    (info.domain, info.bus, info.device) = (hex(), hex(), hex());
    let legacy = format!("{:04x}:{:02x}:{:02x}.0", info.domain, info.bus, info.device);
    for (dst, src) in info.bus_id.iter_mut().zip(bus_id.bytes().take(31)) {
        *dst = src as c_char;
    }
    for (dst, src) in info.bus_id_legacy.iter_mut().zip(legacy.bytes().take(15)) {
        *dst = src as c_char;
    }
    info
}

/// The remote end of an active link; an inactive link has none to name
/// (answered NOT_SUPPORTED here; what a real GPU answers for a link that
/// is down is unconfirmed, docs/gpu-validation.md).
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkRemotePciInfo_v2(
    device: *mut c_void,
    link: c_uint,
    pci: *mut PciInfo,
) -> NvmlReturn {
    link_call(device, link, |_, n| {
        if !n.active(link) {
            return NOT_SUPPORTED;
        }
        // SAFETY: pointers from the caller, valid as nvml.h requires (nvml.rs).
        unsafe { put(pci, pci_info(&n.remote_bus_id(link))) }
    })
}

/// nvmlIntNvLinkDeviceType_t of the remote end: UNKNOWN for an inactive
/// link.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkRemoteDeviceType(
    device: *mut c_void,
    link: c_uint,
    kind: *mut c_uint,
) -> NvmlReturn {
    link_call(device, link, |_, n| {
        let value = if n.active(link) {
            n.remote.value()
        } else {
            DEVICE_TYPE_UNKNOWN
        };
        // SAFETY: pointers from the caller, valid as nvml.h requires (nvml.rs).
        unsafe { put(kind, value) }
    })
}

/// nvmlNvLinkErrorCounter_t 0-3 (replay, recovery, CRC flit, CRC data),
/// grown by the GPU's work so far (crate::rm); ECC_DATA (4) is not
/// modelled (NOT_SUPPORTED), and anything else is no counter.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetNvLinkErrorCounter(
    device: *mut c_void,
    link: c_uint,
    counter: c_uint,
    value: *mut c_ulonglong,
) -> NvmlReturn {
    link_call(device, link, |index, n| {
        let worked = crate::rm::read(index).worked_ms;
        match (counter, n.counter(link, counter, worked)) {
            // SAFETY: pointers from the caller, valid as nvml.h requires (nvml.rs).
            (_, Some(v)) => unsafe { put(value, v) },
            (4, None) => NOT_SUPPORTED,
            _ => INVALID_ARGUMENT,
        }
    })
}

/// NVML_FI_DEV_NVLINK_SPEED_MBPS_L0..L5 (84-89) and L6..L11 (132-137).
fn per_link_speed_field(field: c_uint) -> Option<u32> {
    match field {
        84..=89 => Some(field - 84),
        132..=137 => Some(field - 132 + 6),
        _ => None,
    }
}

/// NVML_FI_DEV_NVLINK_GET_SPEED (nvml.h of CUDA 12.0, the R525 drivers):
/// the speed of the link in the field's `scopeId`.
pub(super) const FI_NVLINK_GET_SPEED: c_uint = 164;

/// A field value's answer for an NVLink speed field, when `field` is one:
/// (NVML return, value). `branch` is the driver's: GET_SPEED is unknown
/// before R525. A GPU without NVLink, or a link it lacks, answers
/// NOT_SUPPORTED; an inactive link reads 0.
pub(super) fn speed_field(
    links: Option<&NvLinks>,
    field: c_uint,
    scope: c_uint,
    branch: u32,
) -> Option<(NvmlReturn, u64)> {
    let link = match field {
        FI_NVLINK_GET_SPEED if branch >= 525 => scope,
        FI_NVLINK_GET_SPEED => return Some((NOT_SUPPORTED, 0)),
        other => per_link_speed_field(other)?,
    };
    Some(match links {
        Some(n) if n.has(link) => (
            SUCCESS,
            if n.active(link) {
                u64::from(n.speed_mbps)
            } else {
                0
            },
        ),
        _ => (NOT_SUPPORTED, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bus_id_reads_back_as_nvml_writes_it() {
        let info = pci_info("00000000:C1:00.0");
        assert_eq!((info.domain, info.bus, info.device), (0, 0xC1, 0));
        // SAFETY: both arrays end in a NUL (zeroed, and written short).
        let bus = unsafe { std::ffi::CStr::from_ptr(info.bus_id.as_ptr()) };
        assert_eq!(bus.to_str().unwrap(), "00000000:C1:00.0");
        // SAFETY: as above.
        let legacy = unsafe { std::ffi::CStr::from_ptr(info.bus_id_legacy.as_ptr()) };
        assert_eq!(legacy.to_str().unwrap(), "0000:c1:00.0");
    }
}
