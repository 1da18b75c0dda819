//! MIG devices as NVML answers them: a MIG device handle for a MIG UUID,
//! the few readings such a handle answers for its instance, its parent GPU,
//! and what a GPU in MIG mode no longer answers itself. Its `unsafe`
//! blocks write out-parameters the caller passed, as nvml.rs's (see there).
use std::ffi::c_void;

use super::{
    handle, put, read_state, with_state, Field, NvmlReturn, GPU_IS_LOST, INVALID_ARGUMENT,
    NOT_FOUND, UNINITIALIZED, UNKNOWN,
};
use crate::scenario::{Device, Scenario};

/// The handle of GPU `index`'s MIG device `mig` (an index into its
/// `mig_instances`, at most 7 of them: MIG User Guide, "Supported GPUs"):
/// the GPU's handle with `mig + 1` in the low four bits.
pub(super) fn mig_handle(index: usize, mig: usize) -> *mut c_void {
    (((index + 1) << 4) | (mig + 1)) as *mut c_void
}

/// A handle's GPU and, for a MIG device handle, its MIG device: unchecked
/// against the scenario.
pub(super) fn decode(device: *mut c_void) -> Option<(usize, Option<usize>)> {
    let bits = device as usize;
    let gpu = (bits >> 4).checked_sub(1)?;
    Some((gpu, (bits & 0xF).checked_sub(1)))
}

/// The MIG device of GPU `gpu` that this process's CUDA enumerates, if
/// any: the kernel module knows which instance holds this process's
/// context, and CUDA enumerates one MIG device per process at most (MIG
/// User Guide, "CUDA Device Enumeration"), so this process's memory on a
/// MIG GPU is that instance's.
fn own_instance(scenario: &Scenario, gpu: usize) -> Option<usize> {
    crate::cuda::visible_devices(scenario, std::env::var("CUDA_VISIBLE_DEVICES").ok())
        .into_iter()
        .find(|t| t.gpu == gpu)
        .and_then(|t| t.mig)
}

/// `own_instance` of the GPU of `device`, a handle.
pub(super) fn own_instance_of(device: *mut c_void) -> Option<usize> {
    read_state(|s| decode(device).and_then(|(gpu, _)| own_instance(&s.scenario, gpu)))
        .ok()
        .flatten()
}

/// The readings a MIG device handle answers for itself: its UUID, its
/// memory ("Per-instance information can be queried by using specific MIG
/// device handles", NVML reference, nvmlDeviceGetMemoryInfo) and its
/// processes (nvmlDeviceGetComputeRunningProcesses: on MIG, per-instance
/// lists through MIG device handles). Sensors, clocks, power, the PCIe
/// link, ECC and the modes belong to the GPU, which the instance shares:
/// on a MIG handle their getters answer NVML_ERROR_NOT_SUPPORTED and the
/// parent's handle (nvmlDeviceGetDeviceHandleFromMigDeviceHandle) answers
/// them (../shared/FACTS.md section 12: many getters are NOT_SUPPORTED on
/// MIG handles; which exactly is to be confirmed on a real MIG GPU,
/// docs/gpu-validation.md, "Item 9").
pub(super) const MIG_HANDLE_FIELDS: &[Field] =
    &[Field::Uuid, Field::Memory, Field::ComputeProcesses];

/// What a GPU in MIG mode no longer answers even on its own handle:
/// utilization ("On MIG-enabled GPUs, querying device utilization rates is
/// not currently supported", NVML reference, nvmlDeviceGetUtilizationRates;
/// nvidia-smi prints N/A for GPU-Util) and, with instances made, remapped
/// rows (../shared/FACTS.md section 12: "not supported on MIG-enabled GPUs
/// with active instances").
pub(super) fn mig_gpu_lacks(gpu: &Device, field: Field) -> bool {
    match field {
        Field::Utilization => gpu.nvml.mig_mode,
        Field::RemappedRows => gpu.nvml.mig_mode && !gpu.mig_instances.is_empty(),
        _ => false,
    }
}

/// nvmlDeviceGetHandleByUUID of a MIG device: "The UUID of the target GPU
/// or MIG instance", returning a MIG device handle (NVML reference), in
/// either form CUDA_VISIBLE_DEVICES takes, `MIG-<uuid>` and the older
/// `MIG-GPU-<gpu uuid>/<gi>/<ci>` (../shared/FACTS.md section 12;
/// NVIDIA/go-nvml#57), on a GPU in MIG mode.
pub(super) fn find_mig_device(out: *mut *mut c_void, wanted: &str) -> NvmlReturn {
    with_state(|s| {
        if !s.initialized {
            return UNINITIALIZED;
        }
        let legacy = wanted.strip_prefix("MIG-GPU-").map(|rest| {
            let mut parts = rest.split('/');
            (
                format!("GPU-{}", parts.next().unwrap_or("")),
                parts.next().and_then(|p| p.parse::<u32>().ok()),
                parts.next().and_then(|p| p.parse::<u32>().ok()),
            )
        });
        for (i, d) in s.scenario.devices.iter().enumerate() {
            if !d.nvml.mig_mode {
                continue;
            }
            let found = d.mig_instances.iter().position(|m| match &legacy {
                Some((gpu, gi, ci)) => {
                    d.uuid.eq_ignore_ascii_case(gpu)
                        && *gi == Some(m.gpu_instance_id)
                        && *ci == Some(m.compute_instance_id)
                }
                None => m.uuid.eq_ignore_ascii_case(wanted),
            });
            if let Some(m) = found {
                // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
                return unsafe { put(out, mig_handle(i, m)) };
            }
        }
        NOT_FOUND
    })
    .unwrap_or(UNKNOWN)
}

/// nvmlDeviceGetDeviceHandleFromMigDeviceHandle: the GPU of a MIG device
/// handle; a GPU's own handle is no MIG device (INVALID_ARGUMENT).
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig: *mut c_void,
    out: *mut *mut c_void,
) -> NvmlReturn {
    let Some((gpu, Some(m))) = decode(mig) else {
        return INVALID_ARGUMENT;
    };
    with_state(|s| {
        if !s.initialized {
            return UNINITIALIZED;
        }
        match s.scenario.devices.get(gpu) {
            Some(d) if m < d.mig_instances.len() => {
                if d.nvml.lost {
                    GPU_IS_LOST
                } else {
                    // SAFETY: pointers from the caller, valid as nvml.h requires (module doc).
                    unsafe { put(out, handle(gpu)) }
                }
            }
            _ => INVALID_ARGUMENT,
        }
    })
    .unwrap_or(UNKNOWN)
}
