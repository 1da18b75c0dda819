//! Initialisation and the devices CUDA enumerates: cuInit, the driver
//! version, CUDA_VISIBLE_DEVICES (indices, UUIDs, MIG instances), and each
//! device's name, UUID, PCI bus id, memory and attributes.

use std::ffi::{c_char, c_int, c_uint};

use super::context::call;
use super::{
    write, write_c_string, CUresult, Call, State, INVALID_DEVICE, INVALID_VALUE, NO_DEVICE,
    SUCCESS, SYSTEM_NOT_READY,
};
use crate::scenario::parse_uuid;
use crate::scenario::{Device, Scenario};

/// A device CUDA can enumerate: a GPU, or one MIG instance of a GPU in MIG
/// mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Index into the scenario's devices.
    pub gpu: usize,
    /// Index into that GPU's `mig_instances`.
    pub mig: Option<usize>,
}

impl Target {
    /// What this target answers as a CUDA device.
    pub(super) fn device(self, scenario: &Scenario) -> Device {
        let gpu = &scenario.devices[self.gpu];
        let Some(m) = self.mig else {
            return gpu.clone();
        };
        let instance = &gpu.mig_instances[m];
        Device {
            name: instance.name.clone(),
            uuid: instance.uuid.clone(),
            multiprocessors: instance.multiprocessors,
            memory_bytes: instance.memory_bytes,
            memory_used_bytes: 0,
            mig_instances: Vec::new(),
            mig_parent_uuid: Some(gpu.uuid.clone()),
            ..gpu.clone()
        }
    }
}

/// Every device CUDA could enumerate, in order: each GPU, or its MIG
/// instances when it has MIG mode on.
fn targets(scenario: &Scenario) -> Vec<Target> {
    let mut out = Vec::new();
    for (gpu, d) in scenario.devices.iter().enumerate() {
        if d.mig_instances.is_empty() {
            out.push(Target { gpu, mig: None });
        } else {
            out.extend((0..d.mig_instances.len()).map(|m| Target { gpu, mig: Some(m) }));
        }
    }
    out
}

/// CUDA_VISIBLE_DEVICES as the CUDA driver reads it: a comma list of
/// indices, UUID prefixes (`GPU-…`, `MIG-…`) or MIG instances in the older
/// `MIG-GPU-<gpu uuid>/<gi>/<ci>` form (NVIDIA MIG User Guide, "CUDA Device
/// Enumeration": both forms are accepted, the latter from the R450 and R460
/// drivers); the list ends at the first entry that names no device. A
/// process enumerates one MIG device at most (same section: with CUDA 11 and
/// 12, a CUDA process can enumerate only a single MIG device), so later MIG
/// devices are dropped.
///
/// An index counts GPUs in nvidia-smi's order, never MIG instances (CUDA
/// Programming Guide, "CUDA Environment Variables": integer indices
/// "correspond to the ordinal number of the GPU in the system, as
/// determined by nvidia-smi"; ../shared/FACTS.md section 12); an index of a
/// GPU in MIG mode gives its first MIG device, which is how CUDA reaches a
/// MIG GPU named as a whole (Datadog's agent models CUDA so:
/// DataDog/datadog-agent#36377, "selecting a parent device when there are
/// MIG children just returns the first MIG child").
pub fn visible_devices(scenario: &Scenario, var: Option<String>) -> Vec<Target> {
    let all = targets(scenario);
    let mut out: Vec<Target> = Vec::new();
    let one_mig =
        |out: &[Target], t: &Target| t.mig.is_none() || out.iter().all(|o| o.mig.is_none());
    let Some(var) = var else {
        for t in &all {
            if one_mig(&out, t) {
                out.push(*t);
            }
        }
        return out;
    };
    for entry in var.split(',').map(str::trim) {
        let found = if let Ok(i) = entry.parse::<usize>() {
            all.iter().copied().find(|t| t.gpu == i)
        } else if let Some(legacy) = entry.strip_prefix("MIG-GPU-") {
            let mut parts = legacy.split('/');
            let (parent, gi, ci) = (parts.next(), parts.next(), parts.next());
            all.iter().copied().find(|t| {
                let d = &scenario.devices[t.gpu];
                t.mig.is_some_and(|m| {
                    let inst = &d.mig_instances[m];
                    parent.is_some_and(|p| d.uuid.strip_prefix("GPU-") == Some(p))
                        && gi == Some(inst.gpu_instance_id.to_string().as_str())
                        && ci == Some(inst.compute_instance_id.to_string().as_str())
                })
            })
        } else if entry.starts_with("GPU-") {
            // A GPU by its UUID, as by its index: a MIG GPU's first MIG
            // device.
            let gpus: Vec<usize> = (0..scenario.devices.len())
                .filter(|g| scenario.devices[*g].uuid.starts_with(entry))
                .collect();
            match gpus.as_slice() {
                [g] => all.iter().copied().find(|t| t.gpu == *g),
                _ => None,
            }
        } else if entry.starts_with("MIG-") {
            let matches: Vec<_> = all
                .iter()
                .copied()
                .filter(|t| t.mig.is_some() && t.device(scenario).uuid.starts_with(entry))
                .collect();
            (matches.len() == 1).then(|| matches[0])
        } else {
            None
        };
        match found {
            Some(t) if !out.contains(&t) => {
                if one_mig(&out, &t) {
                    out.push(t);
                }
            }
            _ => break,
        }
    }
    out
}

#[no_mangle]
pub extern "C" fn cuInit(flags: c_uint) -> CUresult {
    call(Call::cuInit, None, false, |state| {
        if flags != 0 {
            return INVALID_VALUE;
        }
        if state.scenario.host.runs_as_root {
            create_control_node();
        }
        if state.visible.is_empty() {
            return NO_DEVICE;
        }
        // An NVSwitch system whose fabric manager has not registered every
        // GPU with the fabric (scenario::DeviceNvml::fabric).
        let fabric_ready = state
            .scenario
            .devices
            .iter()
            .all(|d| d.nvml.fabric.is_none_or(|f| f.ready()));
        if !fabric_ready {
            return SYSTEM_NOT_READY;
        }
        // The first cuInit of a process starts the GPUs the driver has not
        // kept initialised (`Scenario::cu_init_ms`); later ones find them
        // started.
        if !state.initialized {
            let ms = state.scenario.cu_init_ms();
            if ms > 0.0 {
                std::thread::sleep(std::time::Duration::from_secs_f64(ms / 1e3));
            }
        }
        state.initialized = true;
        SUCCESS
    })
}

/// What NVIDIA's libcuda does in cuInit when run as root and /dev/nvidiactl
/// is missing: it creates the node (character device 195:255, mode 0666),
/// whether or not a kernel driver is there to answer it (seen with the 470,
/// 535 and 550 drivers on a machine without the kernel module).
#[cfg(unix)]
fn create_control_node() {
    let Some(root) = std::env::var_os("FAKEGPU_ROOT") else {
        return;
    };
    let path = std::path::Path::new(&root).join("dev/nvidiactl");
    if !path.exists() {
        let _ = crate::nodes::driverless(&path, 255);
    }
}

/// Windows has no device nodes.
#[cfg(not(unix))]
fn create_control_node() {}

#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> CUresult {
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    call(Call::cuDriverGetVersion, None, false, |state| unsafe {
        write(version, state.scenario.driver_version)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> CUresult {
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    call(Call::cuDeviceGetCount, None, true, |state| unsafe {
        write(count, state.visible.len() as c_int)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> CUresult {
    call(
        Call::cuDeviceGet,
        usize::try_from(ordinal).ok(),
        true,
        |state| {
            if ordinal < 0 || ordinal as usize >= state.visible.len() {
                return INVALID_DEVICE;
            }
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            unsafe { write(device, ordinal) }
        },
    )
}

/// Validates a CUdevice handle (here the ordinal itself).
pub(super) fn ordinal(state: &State, dev: c_int) -> Option<usize> {
    usize::try_from(dev)
        .ok()
        .filter(|d| *d < state.visible.len())
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: c_int) -> CUresult {
    call(
        Call::cuDeviceGetName,
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            Some(d) => unsafe { write_c_string(name, len, &state.device(d).name) },
        },
    )
}

#[repr(C)]
pub struct CUuuid {
    bytes: [u8; 16],
}

/// `v2`: cuDeviceGetUuid_v2, which gives a MIG instance's own UUID; the
/// older cuDeviceGetUuid gives its parent GPU's (CUDA 11.4 added _v2 for
/// this: "If the device is in MIG mode, returns its MIG UUID", CUDA driver
/// API, cuDeviceGetUuid_v2).
fn get_uuid(name: Call, uuid: *mut CUuuid, dev: c_int, v2: bool) -> CUresult {
    call(
        name,
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            Some(d) => {
                let device = state.device(d);
                let text = match &device.mig_parent_uuid {
                    Some(parent) if !v2 => parent,
                    _ => &device.uuid,
                };
                let bytes = parse_uuid(text).unwrap_or_default();
                // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
                unsafe { write(uuid, CUuuid { bytes }) }
            }
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid(uuid: *mut CUuuid, dev: c_int) -> CUresult {
    get_uuid(Call::cuDeviceGetUuid, uuid, dev, false)
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid_v2(uuid: *mut CUuuid, dev: c_int) -> CUresult {
    get_uuid(Call::cuDeviceGetUuid_v2, uuid, dev, true)
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetPCIBusId(id: *mut c_char, len: c_int, dev: c_int) -> CUresult {
    call(
        Call::cuDeviceGetPCIBusId,
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // CUDA writes a 4-digit domain ("0000:18:00.0", as
            // cudaDeviceGetPCIBusId and nvidia-smi -q's "Bus Id" in CUDA's
            // listing); NVML an 8-digit one ("00000000:18:00.0"): the same
            // address, which a reader matches by value.
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            Some(d) => unsafe {
                write_c_string(id, len, &cuda_bus_id(&state.device(d).pci_bus_id))
            },
        },
    )
}

/// `bus` (a scenario's NVML-style "00000000:18:00.0") in CUDA's form, with
/// a 4-digit domain: "0000:18:00.0".
fn cuda_bus_id(bus: &str) -> String {
    let mut parts = bus.splitn(2, ':');
    match (parts.next(), parts.next()) {
        (Some(domain), Some(rest)) => match u32::from_str_radix(domain, 16) {
            Ok(d) => format!("{d:04x}:{rest}"),
            Err(_) => bus.to_string(),
        },
        _ => bus.to_string(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: c_int) -> CUresult {
    call(
        Call::cuDeviceTotalMem_v2,
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            Some(d) => unsafe { write(bytes, state.device(d).memory_bytes as usize) },
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(
    value: *mut c_int,
    attrib: c_int,
    dev: c_int,
) -> CUresult {
    call(
        Call::cuDeviceGetAttribute,
        usize::try_from(dev).ok(),
        true,
        |state| {
            let Some(d) = ordinal(state, dev) else {
                return INVALID_DEVICE;
            };
            let device = state.device(d);
            let bus: Vec<i32> = device
                .pci_bus_id
                .split([':', '.'])
                .map(|p| i32::from_str_radix(p, 16).unwrap_or(0))
                .collect();
            // Attribute numbers: CUdevice_attribute in cuda.h.
            let v = match attrib {
                1 => 1024,                              // MAX_THREADS_PER_BLOCK
                8 => 48 * 1024,                         // MAX_SHARED_MEMORY_PER_BLOCK
                10 => 32,                               // WARP_SIZE
                13 => device.clock_mhz * 1000,          // CLOCK_RATE (kHz)
                16 => device.multiprocessors,           // MULTIPROCESSOR_COUNT
                33 => bus.get(1).copied().unwrap_or(0), // PCI_BUS_ID
                34 => bus.get(2).copied().unwrap_or(0), // PCI_DEVICE_ID
                // MEMORY_CLOCK_RATE (kHz) and GLOBAL_MEMORY_BUS_WIDTH: the
                // peak memory clock and the bus NVML reports too (one
                // reading of the scenario for both libraries).
                36 => to_int(device.nvml.memory_clock_max_mhz.saturating_mul(1000)),
                37 => to_int(device.nvml.memory_bus_width_bits),
                50 => bus.first().copied().unwrap_or(0), // PCI_DOMAIN_ID
                75 => device.compute_capability[0],      // COMPUTE_CAPABILITY_MAJOR
                76 => device.compute_capability[1],      // COMPUTE_CAPABILITY_MINOR
                17 => i32::from(device.kernel_exec_timeout), // KERNEL_EXEC_TIMEOUT
                // COMPUTE_MODE: CUcomputemode, the same numbers as NVML's.
                20 => device.nvml.compute_mode as i32,
                _ => return INVALID_VALUE,
            };
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            unsafe { write(value, v) }
        },
    )
}

/// An NVML reading as a CUDA attribute's int.
fn to_int(v: u32) -> c_int {
    c_int::try_from(v).unwrap_or(c_int::MAX)
}
