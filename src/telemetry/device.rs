//! Which NVML handles stand for one CUDA device: the GPU's, or for a MIG
//! device its own handle and its GPU's, and which of them answers a reading.
use nvml_wrapper::{Device, Nvml};

use crate::report::{Reading, Unavailable};

/// The NVML handles behind one CUDA device. Off MIG, the GPU's. For a MIG
/// device (a CUDA UUID `MIG-…`), its own MIG device handle, which answers
/// for what is the instance's (its memory, its processes), and its GPU's,
/// which answers what the instance shares with the GPU: sensors, clocks,
/// power, the PCIe link, ECC and the modes, which NVML answers
/// NOT_SUPPORTED on a MIG device handle (../shared/FACTS.md section 12).
pub struct NvmlDevice<'n> {
    gpu: Device<'n>,
    /// The MIG device's handle (nvmlDeviceGetHandleByUUID with its
    /// `MIG-…` UUID); `None` off MIG.
    mig: Option<Device<'n>>,
    /// Whether CUDA's device is a MIG device, with or without a handle
    /// of its own from this NVML.
    is_mig: bool,
}

impl<'n> NvmlDevice<'n> {
    /// The GPU, or the GPU the MIG device is part of: for what a MIG device
    /// shares with its GPU.
    #[must_use]
    pub fn gpu(&self) -> &Device<'n> {
        &self.gpu
    }

    /// The handle for what is this CUDA device's own (memory, processes):
    /// the MIG device's on MIG, the GPU's off it; `None` for a MIG device
    /// NVML gives no handle of its own (an NVML older than MIG), whose
    /// GPU's memory is not the instance's.
    #[must_use]
    pub fn own(&self) -> Option<&Device<'n>> {
        match (&self.mig, self.is_mig) {
            (Some(mig), _) => Some(mig),
            (None, false) => Some(&self.gpu),
            (None, true) => None,
        }
    }

    /// A reading of the device's own handle, or of its GPU's where a MIG
    /// device handle answers NOT_SUPPORTED (a reading the instance shares
    /// with its GPU). Off MIG, the GPU's.
    pub(super) fn reading<T>(&self, read: impl Fn(&Device<'n>) -> Reading<T>) -> Reading<T> {
        match self.mig.as_ref().map(&read) {
            Some(Reading::Unavailable(Unavailable::NotSupported)) | None => read(&self.gpu),
            Some(own) => own,
        }
    }
}

/// The NVML device behind a CUDA device: by UUID, then by PCI bus id. A
/// MIG device's UUID gives a MIG device handle (nvmlDeviceGetHandleByUUID
/// takes "the UUID of the target GPU or MIG instance", NVML reference), and
/// its GPU by nvmlDeviceGetDeviceHandleFromMigDeviceHandle or, failing
/// that, by the PCI bus id CUDA gives the instance (its GPU's).
#[must_use]
pub fn find<'n>(
    nvml: &'n Nvml,
    uuid: Option<&str>,
    pci_bus_id: Option<&str>,
) -> Option<NvmlDevice<'n>> {
    let by_pci = || pci_bus_id.and_then(|p| nvml.device_by_pci_bus_id(p).ok());
    if let Some(mig_uuid) = uuid.filter(|u| u.starts_with("MIG-")) {
        let mig = nvml.device_by_uuid(mig_uuid).ok();
        let gpu = mig
            .as_ref()
            .and_then(|m| m.mig_parent_device().ok())
            .or_else(by_pci)?;
        return Some(NvmlDevice {
            gpu,
            mig,
            is_mig: true,
        });
    }
    let gpu = uuid
        .and_then(|u| nvml.device_by_uuid(u).ok())
        .or_else(by_pci)?;
    Some(NvmlDevice {
        gpu,
        mig: None,
        is_mig: false,
    })
}
