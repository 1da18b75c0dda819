//! The error counters NVML keeps for a GPU, read before and after
//! gpuprobe's work on it (`DeviceReport::counters`): what the run itself
//! added to the PCIe replay counter and to the ECC counts, over how long.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Reading;

/// The counters over one run on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunCounters {
    /// Seconds between the reading before the GPU's work and the one after.
    pub seconds: f64,
    /// PCIe replays (nvmlDeviceGetPcieReplayCounter): packets the link
    /// layer resent after a failed CRC or a missing acknowledgement.
    pub pcie_replays: CounterChange,
    /// Correctable ECC errors in device memory, volatile
    /// (nvmlDeviceGetTotalEccErrors).
    pub ecc_corrected: CounterChange,
    /// Uncorrectable ECC errors in device memory, volatile.
    pub ecc_uncorrected: CounterChange,
    /// Correctable ECC errors in on-chip SRAM (caches, register files),
    /// volatile (nvmlDeviceGetSramEccErrorStatus, drivers from R535:
    /// `not_supported` from older ones).
    pub sram_corrected: CounterChange,
    /// Uncorrectable ECC errors in on-chip SRAM, volatile (parity and
    /// SEC-DED errors together).
    pub sram_uncorrected: CounterChange,
}

/// One counter before and after the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CounterChange {
    /// The counter before the GPU's work, or why NVML gave none.
    pub before: Reading<u64>,
    /// The counter after it.
    pub after: Reading<u64>,
    /// `after` less `before`; null when either is not a value, or when the
    /// counter went down (a driver reload or GPU reset cleared it between
    /// the readings).
    pub delta: Option<u64>,
}

impl CounterChange {
    /// The change between two readings.
    #[must_use]
    pub fn new(before: Reading<u64>, after: Reading<u64>) -> CounterChange {
        let delta = match (before.value(), after.value()) {
            (Some(b), Some(a)) => a.checked_sub(*b),
            _ => None,
        };
        CounterChange {
            before,
            after,
            delta,
        }
    }
}

impl RunCounters {
    /// Each counter with its name as in the report, in report order.
    #[must_use]
    pub fn named(&self) -> [(&'static str, &CounterChange); 5] {
        [
            ("pcie_replays", &self.pcie_replays),
            ("ecc_corrected", &self.ecc_corrected),
            ("ecc_uncorrected", &self.ecc_uncorrected),
            ("sram_corrected", &self.sram_corrected),
            ("sram_uncorrected", &self.sram_uncorrected),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Unavailable;

    #[test]
    fn a_delta_needs_two_values_that_did_not_go_down() {
        let v = Reading::Value;
        assert_eq!(CounterChange::new(v(3), v(10)).delta, Some(7));
        assert_eq!(CounterChange::new(v(10), v(3)).delta, None);
        let none = Reading::Unavailable(Unavailable::NotSupported);
        assert_eq!(CounterChange::new(none.clone(), v(3)).delta, None);
        assert_eq!(CounterChange::new(v(3), none).delta, None);
    }
}
