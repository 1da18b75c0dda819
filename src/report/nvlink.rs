//! A GPU's NVLinks (`DeviceReport::nvlink`): each link's state, version,
//! remote end and speed, and its error counters read before the run's work
//! and after it. Not the NVLink *fabric* (`NvmlInfo::fabric`: the fabric
//! manager's registration of a GPU on an NVSwitch system, GP038).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Reading;

/// The NVLinks of one GPU, as NVML reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NvLink {
    /// Every link the GPU answers for (nvmlDeviceGetNvLinkState, links 0
    /// to 17, until one answers NOT_SUPPORTED or INVALID_ARGUMENT), or why
    /// there are none: `not_supported` on a GPU without NVLink (a PCIe-only
    /// part: NVML answers NOT_SUPPORTED at link 0) and from a driver
    /// without the calls; `no_permission`, `gpu_lost` or `error` when NVML
    /// could not say.
    pub links: Reading<Vec<NvLinkLink>>,
    /// Whether the GPU's links go to NVSwitches (an HGX board): a link's
    /// remote end was an NVSwitch while it was up. Every link of such a
    /// GPU is cabled to a switch, so every one is expected up. A GPU with
    /// no link up says nothing of where they go (an HGX GPU passed alone
    /// to a VM has its NVLinks off by design) and expects none.
    pub nvswitch: bool,
    /// Milliseconds between the reading before the run's work and the one
    /// after it; null when the links were read once (`list`,
    /// `health --no-context`), and then no counter has a `before`.
    pub window_ms: Option<f64>,
}

/// One link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NvLinkLink {
    /// NVML's link index, 0 to 17.
    pub link: u32,
    /// Its state at the last reading.
    pub state: NvLinkState,
    /// Its state at the reading before the run's work; null when read once.
    pub state_before: Option<NvLinkState>,
    /// Whether the GPU's own report says this link should be up: every
    /// link of a GPU on NVSwitches (`nvswitch`), and any link that was
    /// active at either reading. An inactive link of a GPU wired GPU to
    /// GPU (a PCIe card's bridge) is no fault: the bridge may not be
    /// fitted, or may not wire every link (Azure's H100 PCIe VMs use 12 of
    /// the 18: Azure/azurehpc-health-checks#162).
    pub expected: bool,
    /// nvmlDeviceGetNvLinkVersion (3 on Ampere, 4 on Hopper); null for an
    /// inactive link, or when NVML could not say.
    pub version: Option<u32>,
    /// What the link connects to; null for an inactive link, or when NVML
    /// could not say.
    pub remote: Option<NvLinkRemote>,
    /// The link's speed in MB/s (NVML_FI_DEV_NVLINK_GET_SPEED, or
    /// NVML_FI_DEV_NVLINK_SPEED_MBPS_L<n> from drivers before R525); null
    /// for an inactive link, or when NVML could not say.
    pub speed_mbps: Option<u32>,
    /// The error counters before the run's work; null when read once.
    pub counters_before: Option<NvLinkCounters>,
    /// The error counters at the last reading.
    pub counters_after: NvLinkCounters,
}

/// nvmlEnableState_t of nvmlDeviceGetNvLinkState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NvLinkState {
    /// NVML_FEATURE_ENABLED: the link is up.
    Active,
    /// NVML_FEATURE_DISABLED: the link is down, or not connected.
    Inactive,
}

/// The far end of a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NvLinkRemote {
    pub kind: NvLinkRemoteKind,
    /// The remote device's PCI bus id (nvmlDeviceGetNvLinkRemotePciInfo_v2),
    /// e.g. "00000000:C1:00.0"; null when NVML could not say.
    pub pci_bus_id: Option<String>,
}

/// nvmlIntNvLinkDeviceType_t (nvmlDeviceGetNvLinkRemoteDeviceType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NvLinkRemoteKind {
    /// NVML_NVLINK_DEVICE_TYPE_GPU: a peer GPU (a bridge, or a board that
    /// wires GPUs to each other).
    Gpu,
    /// NVML_NVLINK_DEVICE_TYPE_SWITCH: an NVSwitch.
    Nvswitch,
    /// NVML_NVLINK_DEVICE_TYPE_IBMNPU: a POWER9 CPU's NVLink.
    Ibmnpu,
    /// NVML_NVLINK_DEVICE_TYPE_UNKNOWN, a value this release does not
    /// name, or a driver that does not say.
    Unknown,
}

impl NvLinkRemoteKind {
    /// The word used in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NvLinkRemoteKind::Gpu => "gpu",
            NvLinkRemoteKind::Nvswitch => "nvswitch",
            NvLinkRemoteKind::Ibmnpu => "ibmnpu",
            NvLinkRemoteKind::Unknown => "unknown",
        }
    }
}

/// A link's data-link-layer error counters (nvmlDeviceGetNvLinkErrorCounter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NvLinkCounters {
    /// NVML_NVLINK_ERROR_DL_CRC_FLIT: flits received with a CRC error.
    pub crc_flit: Reading<u64>,
    /// NVML_NVLINK_ERROR_DL_CRC_DATA: data received with a CRC error.
    pub crc_data: Reading<u64>,
    /// NVML_NVLINK_ERROR_DL_REPLAY: transmissions the link replayed.
    pub replay: Reading<u64>,
    /// NVML_NVLINK_ERROR_DL_RECOVERY: times the link retrained.
    pub recovery: Reading<u64>,
}

/// Which counter, in words (`NvLinkCounters`' field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvLinkCounter {
    CrcFlit,
    CrcData,
    Replay,
    Recovery,
}

impl NvLinkCounter {
    pub const ALL: [NvLinkCounter; 4] = [
        NvLinkCounter::CrcFlit,
        NvLinkCounter::CrcData,
        NvLinkCounter::Replay,
        NvLinkCounter::Recovery,
    ];

    /// Its name on the wire and in metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NvLinkCounter::CrcFlit => "crc_flit",
            NvLinkCounter::CrcData => "crc_data",
            NvLinkCounter::Replay => "replay",
            NvLinkCounter::Recovery => "recovery",
        }
    }
}

impl NvLinkCounters {
    /// One counter's reading.
    #[must_use]
    pub fn get(&self, counter: NvLinkCounter) -> &Reading<u64> {
        match counter {
            NvLinkCounter::CrcFlit => &self.crc_flit,
            NvLinkCounter::CrcData => &self.crc_data,
            NvLinkCounter::Replay => &self.replay,
            NvLinkCounter::Recovery => &self.recovery,
        }
    }
}

impl NvLinkLink {
    /// How much `counter` grew between the two readings; `None` when read
    /// once or when either reading has no value. A counter that went down
    /// (reset by `nvidia-smi nvlink -re` meanwhile) grew by nothing known.
    #[must_use]
    pub fn growth(&self, counter: NvLinkCounter) -> Option<u64> {
        let before = *self.counters_before.as_ref()?.get(counter).value()?;
        let after = *self.counters_after.get(counter).value()?;
        after.checked_sub(before)
    }

    /// Expected up, and down at the last reading.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.expected && self.state == NvLinkState::Inactive
    }
}

impl NvLink {
    /// The links NVML listed; none where it listed none.
    #[must_use]
    pub fn listed(&self) -> &[NvLinkLink] {
        self.links.value().map_or(&[], Vec::as_slice)
    }

    /// Links active at the last reading.
    #[must_use]
    pub fn active(&self) -> usize {
        self.listed()
            .iter()
            .filter(|l| l.state == NvLinkState::Active)
            .count()
    }

    /// Links expected up.
    #[must_use]
    pub fn expected(&self) -> usize {
        self.listed().iter().filter(|l| l.expected).count()
    }

    /// `counter`'s growth over every link, where any link's is known.
    #[must_use]
    pub fn growth(&self, counter: NvLinkCounter) -> Option<u64> {
        self.listed()
            .iter()
            .filter_map(|l| l.growth(counter))
            .reduce(u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Unavailable;

    fn counters(replay: u64) -> NvLinkCounters {
        NvLinkCounters {
            crc_flit: Reading::Value(0),
            crc_data: Reading::Unavailable(Unavailable::NotSupported),
            replay: Reading::Value(replay),
            recovery: Reading::Value(0),
        }
    }

    #[test]
    fn growth_needs_both_readings_and_never_goes_negative() {
        let mut link = NvLinkLink {
            link: 3,
            state: NvLinkState::Active,
            state_before: Some(NvLinkState::Active),
            expected: true,
            version: Some(4),
            remote: None,
            speed_mbps: Some(26562),
            counters_before: Some(counters(2)),
            counters_after: counters(7),
        };
        assert_eq!(link.growth(NvLinkCounter::Replay), Some(5));
        assert_eq!(link.growth(NvLinkCounter::CrcData), None);
        link.counters_before = Some(counters(9));
        assert_eq!(link.growth(NvLinkCounter::Replay), None);
        link.counters_before = None;
        assert_eq!(link.growth(NvLinkCounter::CrcFlit), None);
        for kind in [
            NvLinkRemoteKind::Gpu,
            NvLinkRemoteKind::Nvswitch,
            NvLinkRemoteKind::Ibmnpu,
            NvLinkRemoteKind::Unknown,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let json = serde_json::to_string(&link).unwrap();
        let back: NvLinkLink = serde_json::from_str(&json).unwrap();
        assert_eq!(back, link);
    }
}
