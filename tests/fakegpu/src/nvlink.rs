//! A GPU's NVLinks as a scenario states them (`devices[].nvml.nvlink`) and
//! as the fake NVML answers them (nvml/nvlink.rs): how many links the GPU
//! has, their version, where they go (NVSwitches or a peer GPU), their
//! speed, which are down, and error counters that may grow while the GPU
//! works.
//!
//! What real GPUs report, and the defaults by model (`crate::models`):
//! - A PCIe-only GPU (T4, L4, an H100 PCIe without its bridge) answers
//!   NVML_ERROR_NOT_SUPPORTED for its links (NVIDIA/NVSentinel#1481:
//!   "PCIe GPUs … all return NOT_SUPPORTED" from nvmlDeviceGetNvLinkState,
//!   SXM/NVL parts SUCCESS "even if links are down").
//! - An H100 SXM on an HGX board has 18 NVLink 4 links, all to the board's
//!   four NVSwitches; an A100 SXM 12 NVLink 3 links to six (NVIDIA DGX
//!   H100 / DGX A100 user guides; NVIDIA's health-validation NVLink checks
//!   expect 18 links and no inactive one on H100, none inactive on A100).
//! - A link index past the GPU's links answers NVML_ERROR_INVALID_ARGUMENT
//!   ("if device or link is invalid", nvml.h).
//! - Per-link speed as NVML's field values give it: 26562 MB/s per H100
//!   NVLink 4 link (NVIDIA health validation, nvlink_bandwidth_count_speed:
//!   H100 26562 MB/s), 25781 MB/s per NVLink 2 link as `nvidia-smi nvlink
//!   -s` prints it on a V100 (Azure/azhpc-diagnostics#73); the A100's
//!   NVLink 3 figure, 25000 MB/s (50 Gbit/s x 4 pairs), is unconfirmed.
use serde::Deserialize;

/// `DeviceNvml::nvlink`: the GPU's NVLinks. Absent on a model without
/// NVLink (and a model not in the table): every NVLink call answers
/// NVML_ERROR_NOT_SUPPORTED, as on a PCIe-only GPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvLinks {
    /// The links the GPU has: nvmlDeviceGetNvLinkState answers for indices
    /// below this (NVML_NVLINK_MAX_LINKS is 18).
    pub links: u32,
    /// nvmlDeviceGetNvLinkVersion: 2 Volta, 3 Ampere, 4 Hopper.
    pub version: u32,
    /// Where the active links go.
    pub remote: Remote,
    /// The remote end's PCI bus id, by link index: the NVSwitch's or the
    /// peer GPU's. A link past the list reads a switch of its own
    /// (`default_remote_bus_id`).
    #[serde(default)]
    pub remote_pci_bus_ids: Vec<String>,
    /// MB/s of one active link (NVML_FI_DEV_NVLINK_SPEED_MBPS_L*,
    /// NVML_FI_DEV_NVLINK_GET_SPEED); an inactive link reads 0.
    pub speed_mbps: u32,
    /// Links that answer inactive (NVML_FEATURE_DISABLED): a link down, or
    /// one no bridge connects.
    #[serde(default)]
    pub inactive: Vec<u32>,
    /// Error counters of the links that have any.
    #[serde(default)]
    pub errors: Vec<LinkErrors>,
}

/// nvmlIntNvLinkDeviceType_t of the remote end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remote {
    /// NVML_NVLINK_DEVICE_TYPE_SWITCH (2): an NVSwitch (HGX boards).
    Nvswitch,
    /// NVML_NVLINK_DEVICE_TYPE_GPU (0): a peer GPU (a bridge, or GPUs wired
    /// to each other on the board).
    Gpu,
}

impl Remote {
    /// nvmlIntNvLinkDeviceType_t's value.
    #[must_use]
    pub fn value(self) -> u32 {
        match self {
            Remote::Gpu => 0,
            Remote::Nvswitch => 2,
        }
    }
}

/// One link's error counters (nvmlDeviceGetNvLinkErrorCounter): what they
/// read before the GPU has worked, and how many more each second of its
/// work adds. Errors happen as traffic crosses a link; gpuprobe's own work
/// puts none on NVLink yet (a stand-in for the link's traffic: on a real
/// link the counters grow with its use and its flow-control traffic;
/// unconfirmed on a real faulty link, docs/gpu-validation.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkErrors {
    pub link: u32,
    #[serde(default)]
    pub at_start: Counters,
    #[serde(default)]
    pub per_busy_second: Counters,
}

/// The four data-link-layer counters of nvmlNvLinkErrorCounter_t.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Counters {
    /// NVML_NVLINK_ERROR_DL_REPLAY (0): flits the receiver asked again.
    pub replay: f64,
    /// NVML_NVLINK_ERROR_DL_RECOVERY (1): the link retrained.
    pub recovery: f64,
    /// NVML_NVLINK_ERROR_DL_CRC_FLIT (2).
    pub crc_flit: f64,
    /// NVML_NVLINK_ERROR_DL_CRC_DATA (3).
    pub crc_data: f64,
}

impl Counters {
    /// The counter nvmlNvLinkErrorCounter_t `counter` names, or `None` for
    /// one the fake does not model (ECC_DATA, 4) or no counter at all.
    fn get(&self, counter: u32) -> Option<f64> {
        match counter {
            0 => Some(self.replay),
            1 => Some(self.recovery),
            2 => Some(self.crc_flit),
            3 => Some(self.crc_data),
            _ => None,
        }
    }
}

/// NVML_NVLINK_MAX_LINKS (nvml.h).
pub const MAX_LINKS: u32 = 18;

impl NvLinks {
    /// The NVSwitch count of an HGX board: four on HGX H100 (NVLink 4),
    /// six on HGX A100 (NVLink 3) (NVIDIA DGX H100 / DGX A100 user
    /// guides); links are spread over them in order.
    fn switches(&self) -> u32 {
        if self.version >= 4 {
            4
        } else {
            6
        }
    }

    /// Whether link `link` is one the GPU has.
    #[must_use]
    pub fn has(&self, link: u32) -> bool {
        link < self.links.min(MAX_LINKS)
    }

    #[must_use]
    pub fn active(&self, link: u32) -> bool {
        self.has(link) && !self.inactive.contains(&link)
    }

    /// The remote end's PCI bus id of an active link.
    #[must_use]
    pub fn remote_bus_id(&self, link: u32) -> String {
        self.remote_pci_bus_ids
            .get(link as usize)
            .cloned()
            .unwrap_or_else(|| {
                let switch = link * self.switches() / self.links.max(1);
                format!("00000000:{:02X}:00.0", 0xC0 + switch)
            })
    }

    /// Counter `counter` of link `link` once the GPU has worked
    /// `worked_ms`; `None` for a counter not modelled.
    #[must_use]
    pub fn counter(&self, link: u32, counter: u32, worked_ms: f64) -> Option<u64> {
        let zero = Counters::default().get(counter)?;
        let Some(e) = self.errors.iter().find(|e| e.link == link) else {
            return Some(zero as u64);
        };
        let start = e.at_start.get(counter)?;
        let rate = e.per_busy_second.get(counter)?;
        Some((start + rate * worked_ms.max(0.0) / 1e3).floor() as u64)
    }

    /// What `fakegpu check` rejects: links NVML cannot number, a link
    /// listed that the GPU does not have, a count that is not one.
    pub fn validate(&self) -> Result<(), String> {
        if self.links == 0 || self.links > MAX_LINKS {
            return Err(format!(
                "nvlink.links: {} is not 1 to {MAX_LINKS} (NVML_NVLINK_MAX_LINKS)",
                self.links
            ));
        }
        for link in self
            .inactive
            .iter()
            .copied()
            .chain(self.errors.iter().map(|e| e.link))
        {
            if !self.has(link) {
                return Err(format!(
                    "nvlink: link {link} is not one of the GPU's {} links",
                    self.links
                ));
            }
        }
        for e in &self.errors {
            for c in [e.at_start, e.per_busy_second] {
                for v in [c.replay, c.recovery, c.crc_flit, c.crc_data] {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(format!("nvlink.errors, link {}: {v} is no count", e.link));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hgx() -> NvLinks {
        NvLinks {
            links: 18,
            version: 4,
            remote: Remote::Nvswitch,
            remote_pci_bus_ids: Vec::new(),
            speed_mbps: 26562,
            inactive: vec![7],
            errors: vec![LinkErrors {
                link: 3,
                at_start: Counters {
                    replay: 2.0,
                    ..Counters::default()
                },
                per_busy_second: Counters {
                    replay: 1000.0,
                    ..Counters::default()
                },
            }],
        }
    }

    #[test]
    fn links_spread_over_the_switches_and_counters_grow_with_work() {
        let n = hgx();
        assert!(n.active(0) && !n.active(7) && !n.active(18));
        assert_eq!(n.remote_bus_id(0), "00000000:C0:00.0");
        assert_eq!(n.remote_bus_id(17), "00000000:C3:00.0");
        assert_eq!(n.counter(3, 0, 0.0), Some(2));
        assert_eq!(n.counter(3, 0, 10.0), Some(12));
        assert_eq!(n.counter(4, 0, 10.0), Some(0));
        assert_eq!(n.counter(3, 4, 10.0), None);
        assert!(n.validate().is_ok());
        let mut bad = hgx();
        bad.inactive.push(18);
        assert!(bad.validate().is_err());
    }
}
