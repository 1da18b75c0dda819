//! What the driver says before any context: its version, cuInit, the
//! devices and each one's name, UUID (and MIG parent), PCI bus id,
//! attributes and memory.
//! Its SAFETY comments cite the facts listed in cuda/mod.rs: (fn), (out),
//! (handle).
use std::ffi::{c_char, c_int};
use std::fmt::Write as _;

use cudarc::driver::sys::{CUdevice_attribute, CUuuid};

use super::driver::{CuDevice, Driver};
use super::CudaError;

impl Driver {
    /// cuDriverGetVersion: 1000 * major + 10 * minor.
    pub fn version(&self) -> Result<i32, CudaError> {
        let mut v = 0;
        // SAFETY: (fn), (out).
        self.call("cuDriverGetVersion", || unsafe {
            (self.api.cuDriverGetVersion)(&raw mut v)
        })?;
        Ok(v)
    }

    pub fn init(&self) -> Result<(), CudaError> {
        // SAFETY: (fn); flags must be 0 (CUDA driver API, cuInit).
        self.call("cuInit", || unsafe { (self.api.cuInit)(0) })
    }

    pub fn device_count(&self) -> Result<u32, CudaError> {
        let mut n = 0;
        // SAFETY: (fn), (out).
        self.call("cuDeviceGetCount", || unsafe {
            (self.api.cuDeviceGetCount)(&raw mut n)
        })?;
        Ok(n.max(0) as u32)
    }

    pub fn device(&self, ordinal: u32) -> Result<CuDevice, CudaError> {
        let mut d = 0;
        // SAFETY: (fn), (out); a bad ordinal is an error the driver returns.
        self.call("cuDeviceGet", || unsafe {
            (self.api.cuDeviceGet)(&raw mut d, ordinal as c_int)
        })?;
        Ok(d)
    }

    pub fn device_name(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut buf = [0 as c_char; 256];
        // SAFETY: (fn); the driver writes at most `len` bytes into `buf`.
        self.call("cuDeviceGetName", || unsafe {
            (self.api.cuDeviceGetName)(buf.as_mut_ptr(), buf.len() as c_int, dev)
        })?;
        Ok(c_buffer_to_string(&buf))
    }

    /// The device's UUID as nvidia-smi and NVIDIA_VISIBLE_DEVICES spell it,
    /// and whether it is a MIG instance.
    ///
    /// cuDeviceGetUuid_v2 (CUDA 11.4) gives a MIG instance's own UUID ("If
    /// the device is in MIG mode, returns its MIG UUID which uniquely
    /// identifies the subscribed MIG compute instance", CUDA driver API),
    /// which nvidia-smi writes `MIG-…` from driver 470 on; the older
    /// cuDeviceGetUuid gives the parent GPU's, the gap _v2 was added to
    /// close. So a device whose two UUIDs differ is a MIG instance, and the
    /// first is its parent GPU. Without _v2 (a driver before 11.4) a MIG
    /// instance cannot be told from its GPU and shows the GPU's UUID.
    pub fn device_uuid(&self, dev: CuDevice) -> Result<DeviceUuid, CudaError> {
        let mut gpu = CUuuid { bytes: [0; 16] };
        // SAFETY: (fn), (out).
        self.call("cuDeviceGetUuid", || unsafe {
            (self.api.cuDeviceGetUuid)(&raw mut gpu, dev)
        })?;
        let gpu = gpu.bytes.map(|b| b as u8);
        let Some(v2) = self.api.cuDeviceGetUuid_v2 else {
            return Ok(DeviceUuid {
                uuid: format_uuid("GPU", &gpu),
                mig_parent: None,
            });
        };
        let mut own = CUuuid { bytes: [0; 16] };
        // SAFETY: (fn), (out).
        self.call("cuDeviceGetUuid_v2", || unsafe { v2(&raw mut own, dev) })?;
        let own = own.bytes.map(|b| b as u8);
        Ok(if own == gpu {
            DeviceUuid {
                uuid: format_uuid("GPU", &gpu),
                mig_parent: None,
            }
        } else {
            DeviceUuid {
                uuid: format_uuid("MIG", &own),
                mig_parent: Some(format_uuid("GPU", &gpu)),
            }
        })
    }

    pub fn device_pci_bus_id(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut buf = [0 as c_char; 64];
        // SAFETY: (fn); the driver writes at most `len` bytes into `buf`.
        self.call("cuDeviceGetPCIBusId", || unsafe {
            (self.api.cuDeviceGetPCIBusId)(buf.as_mut_ptr(), buf.len() as c_int, dev)
        })?;
        Ok(c_buffer_to_string(&buf))
    }

    pub fn device_attribute(
        &self,
        dev: CuDevice,
        attr: CUdevice_attribute,
    ) -> Result<i32, CudaError> {
        let mut v = 0;
        // SAFETY: (fn), (out); an attribute this driver does not know is an
        // error it returns.
        self.call("cuDeviceGetAttribute", || unsafe {
            (self.api.cuDeviceGetAttribute)(&raw mut v, attr, dev)
        })?;
        Ok(v)
    }

    pub fn device_total_memory(&self, dev: CuDevice) -> Result<u64, CudaError> {
        let mut bytes = 0usize;
        // SAFETY: (fn), (out).
        self.call("cuDeviceTotalMem_v2", || unsafe {
            (self.api.cuDeviceTotalMem_v2)(&raw mut bytes, dev)
        })?;
        Ok(bytes as u64)
    }
}

fn c_buffer_to_string(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A device's identity: its UUID, and its GPU's when it is a MIG instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUuid {
    /// `GPU-…`, or `MIG-…` for a MIG instance.
    pub uuid: String,
    /// The parent GPU's `GPU-…` UUID when this is a MIG instance.
    pub mig_parent: Option<String>,
}

/// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (or "MIG-…" with that prefix).
#[must_use]
pub fn format_uuid(prefix: &str, bytes: &[u8; 16]) -> String {
    let hex = bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    format!(
        "{prefix}-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
